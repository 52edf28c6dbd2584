'use strict'
// Every `send` form, byte for byte, on both transports: the wire must be
// what `sse` 0.0.8 writes (after dechunking), minus its defects.

const test = require('node:test')
const assert = require('node:assert/strict')
const { startSse, get, nextConnection } = require('../helpers/addon')

const CASES = [
  ['data only', (c) => c.send('hello'), 'data: hello\n\n'],
  ['event and multi-line data', (c) => c.send('evt', 'd1\nd2'), 'event: evt\ndata: d1\ndata: d2\n\n'],
  ['event, data and id', (c) => c.send('foobar', 'somedata', 100), 'event: foobar\nid: 100\ndata: somedata\n\n'],
  ['object form, field order', (c) => c.send({ data: 'foo', event: 'bar', id: 1, retry: 6000 }), 'event: bar\nretry: 6000\nid: 1\ndata: foo\n\n'],
  ['CR splits lines', (c) => c.send('foo\rbar'), 'data: foo\ndata: bar\n\n'],
  ['CRLF splits lines', (c) => c.send('a\r\nb\nc'), 'data: a\ndata: b\ndata: c\n\n'],
  ['empty string is an empty data line', (c) => c.send(''), 'data: \n\n'],
  ['zero is stringified', (c) => c.send(0), 'data: 0\n\n'],
  ['number data with an event', (c) => c.send('e', 42), 'event: e\ndata: 42\n\n'],
  ['object data is JSON', (c) => c.send({ data: { a: [1, 2] } }), 'data: {"a":[1,2]}\n\n'],
  ['fields without data end the frame', (c) => c.send({ event: 'onlyevent', id: 'i1' }), 'event: onlyevent\nid: i1\n\n'],
  ['id zero is kept', (c) => c.send('e', 'd', 0), 'event: e\nid: 0\ndata: d\n\n'],
  ['null sends nothing', (c) => c.send(null), ''],
  ['no arguments send nothing', (c) => c.send(), ''],
  ['Buffer data', (c) => c.send(Buffer.from('bytes')), 'data: bytes\n\n'],
  ['unicode', (c) => c.send('héllo ✓'), 'data: héllo ✓\n\n'],
]

for (const transport of ['native', 'fallback']) {
  test(`send forms on the ${transport} transport`, async (t) => {
    const { sse, port, stop } = await startSse({ path: '/sse', transport: transport === 'native' ? 'auto' : 'fallback' })
    t.after(stop)
    for (const [name, act, expected] of CASES) {
      const connected = nextConnection(sse)
      const raw = get(port, '/sse')
      const { client } = await connected
      assert.equal(client.transport, transport)
      assert.equal(act(client), true, name)
      client.send('END')
      await raw.bodyIncludes('data: END\n\n')
      const wire = Buffer.from(raw.body, 'latin1').toString('utf8')
      assert.equal(wire, ':ok\n\n' + expected + 'data: END\n\n', name)
      raw.destroy()
    }
  })
}

test('response head matches sse 0.0.8', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  await connected
  await raw.bodyIncludes(':ok\n\n')
  assert.match(
    raw.head,
    /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/event-stream\r\nCache-Control: no-cache, no-transform\r\nConnection: keep-alive\r\nDate: [^\r]+ GMT\r\nTransfer-Encoding: chunked$/
  )
  raw.destroy()
})

test('HTTP/1.0 gets an unchunked body', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse', {}, '1.0')
  const { client } = await connected
  client.send('x')
  await raw.until((r) => r.text.endsWith(':ok\n\ndata: x\n\n'))
  assert.doesNotMatch(raw.head, /Transfer-Encoding/)
  raw.destroy()
})

test('line breaks in event, id or retry throw a TypeError and write nothing', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  assert.throws(() => client.send('a\nb', 'x'), TypeError)
  assert.throws(() => client.send('e', 'x', 'i\rj'), TypeError)
  assert.throws(() => client.send({ data: 'x', retry: '1\n2' }), TypeError)
  assert.throws(() => client.send({ data: 'x', retry: -1 }), TypeError)
  assert.throws(() => client.send({ data: 'x', event: { nested: true } }), TypeError)
  assert.throws(() => client.send(Symbol('s')), TypeError)
  assert.throws(() => sse.broadcast({ event: 'x\ny', data: 'z' }), TypeError)
  client.send('after')
  await raw.bodyIncludes('data: after\n\n')
  assert.equal(raw.body, ':ok\n\ndata: after\n\n')
  raw.destroy()
})

test('send after close returns false and does not throw', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  const reason = new Promise((resolve) => client.on('close', resolve))
  client.close()
  assert.equal(await reason, 'server')
  assert.equal(client.send('late'), false)
  assert.equal(client.send({ data: 'late' }), false)
  await raw.closed()
  assert.ok(raw.text.endsWith('0\r\n\r\n'), 'the chunked body is terminated')
})

test('retry option is sent at connect', async (t) => {
  const { sse, port, stop } = await startSse({ retry: 2500 })
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  await connected
  await raw.bodyIncludes('retry: 2500\n\n')
  assert.equal(raw.body, ':ok\n\nretry: 2500\n\n')
  raw.destroy()
})

test('custom headers are added and validated', async (t) => {
  const { sse, port, stop } = await startSse({ headers: { 'Access-Control-Allow-Origin': '*', 'X-Accel-Buffering': 'no' } })
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  await connected
  await raw.bodyIncludes(':ok')
  assert.match(raw.head, /\r\nAccess-Control-Allow-Origin: \*\r\nX-Accel-Buffering: no\r\n/)
  raw.destroy()
  const { SSE } = require('../helpers/addon')
  assert.throws(() => new SSE(null, { headers: { 'X-Bad': 'a\r\nInjected: 1' } }), TypeError)
  assert.throws(() => new SSE(null, { heartbeat: -5 }), TypeError)
})
