'use strict'
// client.send in a loop with the same arguments reuses the last frame
// (framed once, like a broadcast); a changed argument of any kind always
// gets a fresh frame: the bytes on the wire are those of framing each send.
const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const net = require('node:net')
const SSE = require('../..')

function open(port, path) {
  const s = net.connect(port, '127.0.0.1')
  const c = { s, text: '' }
  s.on('data', (d) => { c.text += d.toString('latin1') })
  s.on('connect', () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`))
  return c
}

/** The SSE body of a chunked response, with the `:ok` preamble removed. */
function body(text) {
  const raw = text.slice(text.indexOf('\r\n\r\n') + 4)
  let out = ''
  for (let at = 0; at < raw.length;) {
    const nl = raw.indexOf('\r\n', at)
    if (nl < 0) break
    const len = parseInt(raw.slice(at, nl), 16)
    if (!len) break
    out += raw.slice(nl + 2, nl + 2 + len)
    at = nl + 2 + len + 2
  }
  return out.replace(/^:ok\n\n/, '')
}

async function until(fn, ms = 5000) {
  const end = Date.now() + ms
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}

for (const transport of ['auto', 'fallback']) {
  test(`a changed argument is never served a stale frame (${transport})`, async () => {
    const server = http.createServer((req, res) => res.end())
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    const sse = new SSE(server, { heartbeat: 0, transport })
    const clients = []
    sse.on('connection', (c) => clients.push(c))
    const N = 6
    const peers = Array.from({ length: N }, () => open(server.address().port, '/sse'))
    try {
      await until(() => clients.length === N)
      await until(() => peers.every((p) => p.text.includes(':ok\n\n')))
      const obj = { event: 'e', data: 'x', id: '1' }
      // One round per client, in the order a loop would: each line is what
      // every client gets, the same arguments for all, changed between rounds.
      const rounds = [
        ['a'],
        ['a'],
        ['b'],
        [1],
        ['1'],
        ['ev', 'a'],
        ['ev', 'a', 'id1'],
        ['ev', 'a', 'id2'],
        [obj],
        [{ ...obj, id: '2' }],
        [{ ...obj, retry: 5 }],
        [{ data: { n: 1 } }],
        [{ data: { n: 2 } }],
      ]
      const sentObj = []
      for (const args of rounds) for (const c of clients) c.send(...args)
      // The same object mutated between two sends.
      for (const c of clients) { obj.data = `m${c.id}`; c.send(obj); sentObj.push(obj.data) }
      const expected = [
        'data: a\n\n', 'data: a\n\n', 'data: b\n\n', 'data: 1\n\n', 'data: 1\n\n',
        'event: ev\ndata: a\n\n', 'event: ev\nid: id1\ndata: a\n\n', 'event: ev\nid: id2\ndata: a\n\n',
        'event: e\nid: 1\ndata: x\n\n', 'event: e\nid: 2\ndata: x\n\n', 'event: e\nretry: 5\nid: 1\ndata: x\n\n',
        'data: {"n":1}\n\n', 'data: {"n":2}\n\n',
      ].join('')
      await until(() => peers.every((p) => body(p.text).length >= expected.length + 20)).catch(() => {})
      for (const [i, p] of peers.entries()) {
        const mine = `event: e\nid: 1\ndata: ${sentObj[i]}\n\n`
        assert.equal(body(p.text), expected + mine, `client ${i}`)
      }
    } finally {
      peers.forEach((p) => p.s.destroy())
      await sse.close()
      server.close()
    }
  })
}

for (const transport of ['auto', 'fallback']) {
  test(`gathered sends keep their place among writes, broadcasts and the close (${transport})`, async () => {
    const server = http.createServer((req, res) => res.end())
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    const sse = new SSE(server, { heartbeat: 0, transport })
    const clients = []
    sse.on('connection', (c) => clients.push(c))
    const peers = Array.from({ length: 3 }, () => open(server.address().port, '/sse'))
    try {
      await until(() => clients.length === 3 && peers.every((p) => p.text.includes(':ok\n\n')))
      // All in one tick: the repeated sends are gathered (lib/engine.js), and
      // each call after them must still come after them on the wire.
      for (const c of clients) c.send('same')
      for (const c of clients) c.send('same')
      clients[0].res.write(': raw\n\n')
      sse.broadcast('everyone')
      for (const c of clients) c.send('same')
      assert.equal(clients[1].res.writableLength >= 0, true)
      clients[2].close()
      for (const c of clients) c.send('after')
      const open_ = 'data: same\n\ndata: same\n\n'
      const want = [
        open_ + ': raw\n\ndata: everyone\n\ndata: same\n\ndata: after\n\n',
        open_ + 'data: everyone\n\ndata: same\n\ndata: after\n\n',
        open_ + 'data: everyone\n\ndata: same\n\n',
      ]
      await until(() => peers.every((p, i) => body(p.text).length >= want[i].length)).catch(() => {})
      for (const [i, p] of peers.entries()) assert.equal(body(p.text), want[i], `client ${i}`)
    } finally {
      peers.forEach((p) => p.s.destroy())
      await sse.close()
      server.close()
    }
  })
}
