'use strict'
// Heartbeats on idle streams; Last-Event-ID replay after a reconnect.

const test = require('node:test')
const assert = require('node:assert/strict')
const { startSse, get, nextConnection } = require('../helpers/addon')

test('an idle stream gets heartbeat comments; a busy one does not', async (t) => {
  const { sse, port, stop } = await startSse({ heartbeat: 40 })
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  await connected
  await raw.until((r) => r.body.split(':\n\n').length >= 3, 2000)
  assert.match(raw.body, /^:ok\n\n(:\n\n)+$/)
  raw.destroy()
})

test('heartbeat 0 turns them off', async (t) => {
  const { sse, port, stop } = await startSse({ heartbeat: 0 })
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  await connected
  await new Promise((r) => setTimeout(r, 150))
  assert.equal(raw.body, ':ok\n\n')
  raw.destroy()
})

test('a reconnecting client gets the events it missed, in order, before live ones', async (t) => {
  const { sse, port, stop } = await startSse({ history: 50, heartbeat: 0 })
  t.after(stop)
  sse.on('connection', (client) => {
    if (client.req.url.includes('room')) client.join('room')
  })
  for (let i = 1; i <= 10; i++) sse.broadcast({ id: i, data: `e${i}` })
  sse.publish('room', { id: 'r1', data: 'room only' })
  sse.publish('elsewhere', { id: 'x1', data: 'not for us' })
  const connected = nextConnection(sse)
  const raw = get(port, '/sse?room=1', { 'Last-Event-ID': '7' })
  const { client } = await connected
  assert.equal(client.lastEventId, '7')
  sse.broadcast({ id: 11, data: 'live' })
  await raw.bodyIncludes('data: live\n\n')
  assert.equal(
    raw.body,
    ':ok\n\nid: 8\ndata: e8\n\nid: 9\ndata: e9\n\nid: 10\ndata: e10\n\nid: r1\ndata: room only\n\nid: 11\ndata: live\n\n'
  )
  raw.destroy()
})

test('the lastEventId query parameter works for polyfills', async (t) => {
  const { sse, port, stop } = await startSse({ history: 5, heartbeat: 0 })
  t.after(stop)
  for (let i = 1; i <= 3; i++) sse.broadcast({ id: i, data: `e${i}` })
  const connected = nextConnection(sse)
  const raw = get(port, '/sse?lastEventId=2')
  await connected
  await raw.bodyIncludes('data: e3\n\n')
  assert.equal(raw.body, ':ok\n\nid: 3\ndata: e3\n\n')
  raw.destroy()
})

test('an id older than the history is reported with an ssehub-gap event', async (t) => {
  const { sse, port, stop } = await startSse({ history: 3, heartbeat: 0 })
  t.after(stop)
  for (let i = 1; i <= 6; i++) sse.broadcast({ id: i, data: `e${i}` })
  const connected = nextConnection(sse)
  const raw = get(port, '/sse', { 'Last-Event-ID': '1' })
  await connected
  await raw.bodyIncludes('data: e6\n\n')
  assert.equal(raw.body, ':ok\n\nevent: ssehub-gap\ndata: 1\n\nid: 4\ndata: e4\n\nid: 5\ndata: e5\n\nid: 6\ndata: e6\n\n')
  raw.destroy()
})
