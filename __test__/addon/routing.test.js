'use strict'
// Path matching, fall-through to the app's own listeners, verifyRequest in
// its sync, async, throwing and rejecting forms, HEAD, handleRequest.

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { startSse, get, nextConnection, RawClient, SSE } = require('../helpers/addon')

test('matchesPath follows sse 0.0.8: first * is a wildcard, anchored, case-sensitive', () => {
  const sse = new SSE(null)
  assert.equal(sse.matchesPath('/ev/a/b', '/ev/*'), true)
  assert.equal(sse.matchesPath('/ev/a/xQy', '/ev/*/x*y'), false, 'second * is literal')
  assert.equal(sse.matchesPath('/ev/a/x*y', '/ev/*/x*y'), true)
  assert.equal(sse.matchesPath('/SSE', '/sse'), false)
  assert.equal(sse.matchesPath('/sse/', '/sse'), false)
  assert.equal(sse.matchesPath('/a.b', '/a.b'), true)
  assert.equal(sse.matchesPath('/aXb', '/a.b'), false, 'dots are literal')
  sse.close()
})

test('matching requests stream; others and rejected ones reach the old listeners', async (t) => {
  const { sse, port, stop } = await startSse({ path: '/ev/*', verifyRequest: (req) => !req.url.includes('deny') })
  t.after(stop)
  const queries = []
  sse.on('connection', (client, query) => {
    queries.push(query)
    client.send('hi')
  })
  const streamed = get(port, '/ev/a?a=1&a=2&b')
  await streamed.bodyIncludes('data: hi')
  assert.deepEqual({ ...queries[0] }, { a: ['1', '2'], b: '' })
  assert.equal(Object.getPrototypeOf(queries[0]), null, 'a querystring object, as in sse')
  const collapsed = get(port, '//ev/z')
  await collapsed.bodyIncludes('data: hi')
  for (const path of ['/other', '/ev', '/ev/a?deny=1']) {
    const other = get(port, path)
    await other.bodyIncludes(`fallback GET ${path}`)
    assert.match(other.head, /^HTTP\/1\.1 404/)
    other.destroy()
  }
  streamed.destroy()
  collapsed.destroy()
})

test('existing request listeners are taken over, all of them called on fall-through', async (t) => {
  const server = http.createServer()
  const calls = []
  server.on('request', () => calls.push('first'))
  server.on('request', (req, res) => {
    calls.push('second')
    res.end('app')
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const sse = new SSE(server)
  t.after(async () => {
    await sse.close()
    await new Promise((r) => server.close(r))
  })
  assert.equal(server.listenerCount('request'), 1)
  const raw = get(server.address().port, '/')
  await raw.bodyIncludes('app')
  assert.deepEqual(calls, ['first', 'second'])
  raw.destroy()
})

test('async verifyRequest: resolve true streams, false or rejection falls through', async (t) => {
  const errors = []
  const { sse, port, stop } = await startSse({
    verifyRequest: async (req) => {
      await new Promise((r) => setTimeout(r, 5))
      if (req.headers['x-mode'] === 'reject') throw new Error('auth backend down')
      return req.headers['x-mode'] === 'ok'
    },
  })
  t.after(stop)
  sse.on('error', (err) => errors.push(err.message))
  sse.on('connection', (client) => client.send('in'))
  const ok = get(port, '/sse', { 'x-mode': 'ok' })
  await ok.bodyIncludes('data: in')
  const denied = get(port, '/sse', { 'x-mode': 'no' })
  await denied.bodyIncludes('fallback')
  const rejected = get(port, '/sse', { 'x-mode': 'reject' })
  await rejected.bodyIncludes('fallback')
  assert.deepEqual(errors, ['auth backend down'])
  for (const c of [ok, denied, rejected]) c.destroy()
})

test('a throwing verifyRequest falls through and the server lives', async (t) => {
  const { sse, port, stop } = await startSse({
    verifyRequest: () => {
      throw new Error('boom')
    },
  })
  t.after(stop)
  const raw = get(port, '/sse')
  await raw.bodyIncludes('fallback GET /sse')
  assert.equal(sse.clients, 0)
  raw.destroy()
})

test('HEAD gets the stream headers and an empty body, no connection event', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  let connections = 0
  sse.on('connection', () => connections++)
  const raw = get(port, '/sse', {}, '1.1', 'HEAD')
  await raw.until((r) => r.head !== null)
  assert.match(raw.head, /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/event-stream/)
  assert.equal(connections, 0)
  raw.destroy()
})

test('handleRequest from a route handler keeps headers set by middleware', async (t) => {
  const sse = new SSE(null)
  const server = http.createServer((req, res) => {
    // What auth/CORS middleware does before the route runs.
    res.setHeader('X-Powered-By', 'Express')
    res.setHeader('Access-Control-Allow-Origin', 'https://app.example')
    if (req.url.startsWith('/events')) sse.handleRequest(req, res)
    else res.end('page')
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  t.after(async () => {
    await sse.close()
    await new Promise((r) => server.close(r))
  })
  const connected = nextConnection(sse)
  const raw = get(server.address().port, '/events?room=7')
  const { client, query } = await connected
  assert.deepEqual({ ...query }, { room: '7' })
  client.send('x')
  await raw.bodyIncludes('data: x')
  assert.match(raw.head, /\r\nx-powered-by: Express\r\n/i)
  assert.match(raw.head, /\r\naccess-control-allow-origin: https:\/\/app\.example\r\n/i)
  assert.match(raw.head, /\r\nContent-Type: text\/event-stream\r\n/)
  raw.destroy()
})

test('requests with a body use the fallback transport, same API', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = new RawClient(port, 'POST /sse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}')
  const { client } = await connected
  assert.equal(client.transport, 'fallback')
  client.send('posted')
  await raw.bodyIncludes('data: posted\n\n')
  raw.destroy()
})
