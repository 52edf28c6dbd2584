// Plain node:http2 over TLS: browsers speak HTTP/2 only over TLS, and then
// every EventSource of a page shares one connection (no 6-per-origin limit).
// `allowHTTP1` keeps HTTP/1.1 clients working. The hub attaches to the
// server like to an http.Server and writes through the JS fallback.
// Run: TLS_CERT=cert.pem TLS_KEY=key.pem node examples/http2.js
// (a self-signed pair for a try: openssl req -x509 -newkey rsa:2048 -nodes
//  -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost)
'use strict'
const fs = require('node:fs')
const http2 = require('node:http2')
const path = require('node:path')
const SSE = require('ssehub')

if (!process.env.TLS_CERT || !process.env.TLS_KEY) {
  console.error('http2 example: set TLS_CERT and TLS_KEY to PEM files (see the comment at the top)')
  process.exit(64)
}

const page = fs.readFileSync(path.join(__dirname, 'page.html'))
let lastId = 0

const server = http2.createSecureServer(
  { cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY), allowHTTP1: true },
  (req, res) => {
    const url = new URL(req.url, 'https://x')
    if (req.method === 'GET' && url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(page)
    } else if (req.method === 'POST' && url.pathname === '/say') {
      const delivered = sse.broadcast({ id: ++lastId, data: url.searchParams.get('text') || '' })
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ delivered }))
    } else {
      res.writeHead(404)
      res.end()
    }
  }
)

// Requests for /events become streams; every other request goes to the handler above.
const sse = new SSE(server, { path: '/events', history: 100, heartbeat: 15000 })
sse.on('connection', (client) => client.send('welcome', `you are client ${client.id} (HTTP/${client.req.httpVersion})`))

server.listen(Number(process.env.PORT ?? 3443), process.env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address()
  console.log(`http2 example listening on https://${address}:${port}/`)
})

process.once('SIGTERM', () => sse.close().then(() => server.close()))
