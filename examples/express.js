// Express: the stream is a route, after any middleware (auth, CORS, cookies).
// Run: node examples/express.js, then open http://127.0.0.1:3000/
'use strict'
const path = require('node:path')
const express = require('express')
const SSE = require('ssehub')

const sse = new SSE(null, { history: 100, heartbeat: 15000 })
const app = express()
let lastId = 0

app.get('/', (req, res) => res.sendFile(path.join(__dirname, 'page.html')))

app.get('/events', (req, res) => {
  const client = sse.handleRequest(req, res)
  client.send('welcome', `you are client ${client.id}`) // a refused client is closed: send() is a no-op
})

app.post('/say', (req, res) => {
  const text = String(req.query.text || '')
  res.json({ delivered: sse.broadcast({ id: ++lastId, data: text }) })
})

const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address()
  console.log(`express example listening on http://${address}:${port}/`)
})

process.once('SIGTERM', () => sse.close().then(() => server.close()))
