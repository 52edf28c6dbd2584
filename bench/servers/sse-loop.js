'use strict'
// The fan-out an app written for the npm package `sse` 0.0.8 does: keep
// the clients from 'connection', drop them on 'close', and loop
// `client.send(data)`. The same code runs against `sse` and against
// ssehub as a drop-in (only the require differs).

function sseLoopAdapter(SSE, server) {
  const sse = new SSE(server, { path: '/sse' })
  const clients = new Set()
  sse.on('connection', (client) => {
    clients.add(client)
    client.on('close', () => clients.delete(client))
  })
  return {
    broadcast(data) {
      for (const client of clients) client.send(data)
    },
    clients: () => clients.size,
  }
}

module.exports = { sseLoopAdapter }
