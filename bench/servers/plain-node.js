'use strict'
// The baseline: a plain Node http server, a Set of responses, and a loop
// of res.write with the frame built once per event.
const { runHttpServer, notFound } = require('./common')

const HEADERS = {
  'Content-Type': 'text/event-stream',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
}

runHttpServer((server) => {
  const streams = new Set()
  server.removeAllListeners('request')
  server.on('request', (req, res) => {
    if (req.url !== '/sse') return notFound(req, res)
    req.socket.setNoDelay(true)
    res.writeHead(200, HEADERS)
    res.write(':ok\n\n')
    streams.add(res)
    res.on('close', () => streams.delete(res))
  })
  return {
    broadcast(data) {
      const frame = `data: ${data}\n\n`
      for (const res of streams) res.write(frame)
    },
    clients: () => streams.size,
  }
})
