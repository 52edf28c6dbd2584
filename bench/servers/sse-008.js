'use strict'
// The npm package `sse` 0.0.8: a JS loop of client.send.
const { runHttpServer } = require('./common')
const { sseLoopAdapter } = require('./sse-loop')

runHttpServer((server) => sseLoopAdapter(require('sse'), server))
