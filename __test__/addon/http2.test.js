'use strict'
// HTTP/2 (the compatibility API of node:http2) streams through the JS
// fallback, without the connection-specific headers HTTP/2 forbids.

const test = require('node:test')
const assert = require('node:assert/strict')
const http2 = require('node:http2')
const { SSE } = require('../helpers/addon')

test('an http2 server streams events through the fallback', async (t) => {
  const server = http2.createServer()
  server.on('request', (req, res) => res.end('app'))
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const sse = new SSE(server, { heartbeat: 0 })
  let session = null
  t.after(async () => {
    await sse.close()
    if (session) session.close() // server.close waits for open sessions
    await new Promise((r) => server.close(r))
  })
  sse.on('connection', (client) => {
    assert.equal(client.transport, 'fallback')
    client.send('over h2')
    sse.broadcast({ event: 'e', data: 'all', id: 1 })
  })
  session = http2.connect(`http://127.0.0.1:${server.address().port}`)
  const stream = session.request({ ':path': '/sse' })
  const headers = await new Promise((resolve) => stream.on('response', resolve))
  assert.equal(headers[':status'], 200)
  assert.equal(headers['content-type'], 'text/event-stream')
  assert.equal(headers.connection, undefined)
  let body = ''
  stream.setEncoding('utf8')
  await new Promise((resolve) => {
    stream.on('data', (chunk) => {
      body += chunk
      if (body.includes('data: all\n\n')) resolve()
    })
  })
  assert.equal(body, ':ok\n\ndata: over h2\n\nevent: e\nid: 1\ndata: all\n\n')
  stream.close()
})
