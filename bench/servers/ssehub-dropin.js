'use strict'
// ssehub as a drop-in for `sse`: the same JS loop of client.send as
// sse-008.js, each send framed and queued by the Rust hub.
const { runHttpServer } = require('./common')
const { sseLoopAdapter } = require('./sse-loop')
const { loadSsehub } = require('./ssehub-module')

runHttpServer((server) => sseLoopAdapter(loadSsehub(), server))
