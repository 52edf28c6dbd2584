'use strict'
// Side by side with the real `sse` 0.0.8: the same program, unchanged, with
// only the require line swapped, puts the same bytes on the wire.

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { get } = require('../helpers/addon')

// Calls that `sse` 0.0.8 handles without crashing (its crashes are fixed
// in ssehub and tested in send.test.js).
const PROGRAM = [
  (c) => c.send('hello'),
  (c) => c.send('evt', 'd1\nd2'),
  (c) => c.send('evt', 'd', 7),
  (c) => c.send({ data: 'x' }),
  (c) => c.send({ data: 'y', retry: 1500 }),
  (c) => c.send({ data: 'foo', event: 'bar', id: 1, retry: 6000 }),
  (c) => c.send('foo\rbar\r\nbaz'),
  (c) => c.send('foobar', 'somedata', 100),
  (c) => c.send(),
]

async function run(SSE, httpVersion) {
  const server = http.createServer((req, res) => res.end('app'))
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const sse = new SSE(server, { path: '/stream' })
  sse.on('connection', (client) => {
    for (const step of PROGRAM) step(client)
    client.close()
  })
  const raw = get(server.address().port, '/stream', {}, httpVersion)
  await raw.until((r) => r.ended || r.text.endsWith('0\r\n\r\n'), 3000).catch(() => {})
  raw.destroy()
  if (typeof sse.close === 'function' && SSE !== require('sse')) await sse.close()
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
  return { head: raw.head, body: raw.body }
}

function headerNames(head) {
  return head
    .split('\r\n')
    .slice(1)
    .map((line) => line.split(':')[0])
    .filter((name) => name !== 'Date')
}

for (const version of ['1.1', '1.0']) {
  test(`the same program gives the same bytes as sse 0.0.8 (HTTP/${version})`, async () => {
    const original = await run(require('sse'), version)
    const ours = await run(require('../..'), version)
    assert.ok(original.body.length > 100, 'the original produced a stream')
    assert.equal(ours.body, original.body)
    assert.equal(ours.head.split('\r\n')[0], original.head.split('\r\n')[0])
    assert.deepEqual(headerNames(ours.head), headerNames(original.head))
  })
}
