'use strict'
// ssehub with sse.broadcast(): one call frames the event once and the
// Rust hub fans it out to every client off the JS thread.
const { runHttpServer } = require('./common')
const { loadSsehub } = require('./ssehub-module')

runHttpServer((server) => {
  const SSE = loadSsehub()
  const sse = new SSE(server, { path: '/sse' })
  return {
    broadcast: (data) => sse.broadcast(data),
    clients: () => sse.clients,
    stop: () => sse.close(),
  }
})
