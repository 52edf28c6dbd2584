// Fastify: `reply.hijack()` tells Fastify the route answers by itself, then
// the hub takes the raw request and response.
// Run: node examples/fastify.js, then open http://127.0.0.1:3000/
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const Fastify = require('fastify')
const SSE = require('ssehub')

const sse = new SSE(null, { history: 100, heartbeat: 15000 })
const app = Fastify()
const page = fs.readFileSync(path.join(__dirname, 'page.html'))
let lastId = 0

app.get('/', (request, reply) => reply.type('text/html; charset=utf-8').send(page))

app.get('/events', (request, reply) => {
  reply.hijack()
  const client = sse.handleRequest(request.raw, reply.raw)
  client.send('welcome', `you are client ${client.id}`) // a refused client is closed: send() is a no-op
})

app.post('/say', async (request) => {
  const text = String(request.query.text || '')
  return { delivered: sse.broadcast({ id: ++lastId, data: text }) }
})

// Streams end before Fastify closes the server (else close waits for them).
app.addHook('preClose', () => sse.close())

app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST || '127.0.0.1' }).then(() => {
  const { address, port } = app.server.address()
  console.log(`fastify example listening on http://${address}:${port}/`)
})

process.once('SIGTERM', () => app.close())
