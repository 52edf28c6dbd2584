'use strict'
// The JS fallback under https (same API, same bytes) and a real
// EventSource client (the `eventsource` npm package) on both transports.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const https = require('node:https')
const path = require('node:path')
const tls = require('node:tls')
const { EventSource } = require('eventsource')
const { startSse, nextConnection, dechunk, eventually, SSE } = require('../helpers/addon')

const cert = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'test-cert.pem'))
const key = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'test-key.pem'))

function readTls(port, request, until) {
  return new Promise((resolve, reject) => {
    let text = ''
    const socket = tls.connect({ port, host: '127.0.0.1', ca: cert, servername: 'localhost' }, () => socket.write(request))
    socket.on('data', (d) => {
      text += d.toString('latin1')
      if (until(text)) {
        socket.destroy()
        resolve(text)
      }
    })
    socket.on('error', reject)
  })
}

test('https: streams through the fallback with the same bytes', async (t) => {
  const server = https.createServer({ cert, key }, (req, res) => res.end('app'))
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const sse = new SSE(server, { path: '/sse' })
  t.after(async () => {
    await sse.close()
    await new Promise((r) => server.close(r))
  })
  sse.on('connection', (client) => {
    assert.equal(client.transport, 'fallback')
    client.send('hello')
    client.send({ event: 'e', data: 'a\nb', id: 3 })
    sse.broadcast('to all')
  })
  const text = await readTls(server.address().port, 'GET /sse HTTP/1.1\r\nHost: x\r\n\r\n', (s) => s.includes('to all\n\n'))
  const [head, body] = text.split('\r\n\r\n')
  assert.match(head, /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/event-stream\r\nCache-Control: no-cache, no-transform\r\nConnection: keep-alive\r\n/)
  assert.equal(dechunk(body + '\r\n'), ':ok\n\ndata: hello\n\nevent: e\nid: 3\ndata: a\ndata: b\n\ndata: to all\n\n')
})

function collect(es, type, n) {
  const got = []
  return new Promise((resolve, reject) => {
    es.addEventListener(type, (ev) => {
      got.push({ data: ev.data, id: ev.lastEventId })
      if (got.length === n) resolve(got)
    })
    es.onerror = (err) => {
      if (es.readyState === EventSource.CLOSED) reject(err)
    }
  })
}

for (const transport of ['auto', 'fallback']) {
  test(`a real EventSource receives events and resumes after a reconnect (${transport})`, async (t) => {
    const { sse, port, stop } = await startSse({ history: 10, heartbeat: 0, retry: 50, transport })
    t.after(stop)
    const es = new EventSource(`http://127.0.0.1:${port}/sse`)
    t.after(() => es.close())
    const first = nextConnection(sse)
    const messages = collect(es, 'message', 4)
    const { client } = await first
    sse.broadcast({ id: 1, data: 'one' })
    client.send({ event: 'custom', data: 'typed' })
    sse.broadcast({ id: 2, data: 'two\nlines' })
    // Drop the connection server-side: the EventSource reconnects on its
    // own with Last-Event-ID 2 and must get only what came after.
    await eventually(() => client.queuedBytes === 0)
    await new Promise((r) => setTimeout(r, 50))
    const second = nextConnection(sse)
    client.close()
    sse.broadcast({ id: 3, data: 'missed while away' })
    const { client: again } = await second
    assert.equal(again.lastEventId, '2')
    sse.broadcast({ id: 4, data: 'live' })
    assert.deepEqual(await messages, [
      { data: 'one', id: '1' },
      { data: 'two\nlines', id: '2' },
      { data: 'missed while away', id: '3' },
      { data: 'live', id: '4' },
    ])
  })
}
