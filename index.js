'use strict'
// ssehub: Server-Sent Events for Node.js with a Rust engine.
// `const SSE = require('ssehub')` is a drop-in for the npm package `sse`.
const SSE = require('./lib/sse')
const Client = require('./lib/client')

module.exports = SSE
module.exports.SSE = SSE
module.exports.Client = Client
module.exports.default = SSE
