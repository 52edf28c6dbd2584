// Koa: `ctx.respond = false` leaves the response to the hub.
// Run: node examples/koa.js, then open http://127.0.0.1:3000/
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const Koa = require('koa')
const SSE = require('ssehub')

const sse = new SSE(null, { history: 100, heartbeat: 15000 })
const app = new Koa()
const page = fs.readFileSync(path.join(__dirname, 'page.html'))
let lastId = 0

app.use((ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/') {
    ctx.type = 'html'
    ctx.body = page
  } else if (ctx.method === 'GET' && ctx.path === '/events') {
    ctx.respond = false
    const client = sse.handleRequest(ctx.req, ctx.res)
    client.send('welcome', `you are client ${client.id}`) // a refused client is closed: send() is a no-op
  } else if (ctx.method === 'POST' && ctx.path === '/say') {
    ctx.body = { delivered: sse.broadcast({ id: ++lastId, data: String(ctx.query.text || '') }) }
  }
})

const server = app.listen(Number(process.env.PORT ?? 3000), process.env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address()
  console.log(`koa example listening on http://${address}:${port}/`)
})

process.once('SIGTERM', () => sse.close().then(() => server.close()))
