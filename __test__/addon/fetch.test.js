'use strict'
// sse.fetch(request) -> Response: the hub behind a Web-standard handler,
// with Node's own Request, Response and ReadableStream. Same bytes as the
// other transports, channels, heartbeats, replay, closes both ways, limits.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')
const { Readable } = require('node:stream')
const { EventSource } = require('eventsource')
const { eventually, SSE } = require('../helpers/addon')

/** Reads a Response body; `.until(text)` waits for text, `.text` is all so far. */
function reader(response) {
  const r = { text: '', done: false, error: null }
  const stream = response.body.getReader()
  const decoder = new TextDecoder()
  r.reader = stream
  r.finished = (async () => {
    try {
      for (;;) {
        const { value, done } = await stream.read()
        if (done) break
        r.text += decoder.decode(value, { stream: true })
      }
    } catch (err) {
      r.error = err
    }
    r.done = true
  })()
  r.until = (text, ms = 3000) => eventually(() => r.text.includes(text), ms, `${JSON.stringify(text)} in ${JSON.stringify(r.text)}`)
  return r
}

// The hub reports to JS through a weak callback (an idle SSE does not keep
// Node alive); without a server here, a timer keeps the loop up while the
// test waits on those reports.
function keepAlive(t, sse) {
  const timer = setInterval(() => {}, 1000)
  t.after(async () => {
    await sse.close()
    clearInterval(timer)
  })
}

function hub(t, options) {
  const sse = new SSE(null, { heartbeat: 0, ...options })
  keepAlive(t, sse)
  return sse
}

const request = (url = 'http://localhost/sse', init) => new Request(url, init)

test('a Response with the stream headers and a ReadableStream body; every send form, same bytes', async (t) => {
  const sse = hub(t, { retry: 2000, headers: { 'X-Accel-Buffering': 'no' } })
  let connected
  sse.on('connection', (client, query) => (connected = { client, query }))
  const response = sse.fetch(request('http://localhost/sse?room=a&x=1'))
  assert.ok(response instanceof Response)
  assert.ok(response.body instanceof ReadableStream)
  assert.equal(response.status, 200)
  assert.equal(response.headers.get('content-type'), 'text/event-stream')
  assert.equal(response.headers.get('cache-control'), 'no-cache, no-transform')
  assert.equal(response.headers.get('x-accel-buffering'), 'no')
  assert.equal(response.headers.get('connection'), null, 'connection-specific headers are the server’s to set')

  const { client, query } = connected
  assert.deepEqual({ ...query }, { room: 'a', x: '1' })
  assert.equal(client.transport, 'fallback')
  assert.equal(client.res, response)
  assert.equal(client.lastEventId, null)
  assert.equal(sse.clients, 1)
  const body = reader(response)
  client.send('hello')
  client.send('named', 'with\r\nlines', 7)
  client.send({ event: 'obj', data: { a: 1 }, id: 'x', retry: 10 })
  assert.equal(sse.broadcast('to all'), 1)
  await body.until('data: to all\n\n')
  assert.equal(
    body.text,
    ':ok\n\nretry: 2000\n\ndata: hello\n\nevent: named\nid: 7\ndata: with\ndata: lines\n\n' +
      'event: obj\nretry: 10\nid: x\ndata: {"a":1}\n\ndata: to all\n\n'
  )
  assert.equal(sse.stats().fallbackClients, 1)
})

test('channels: publish reaches the members only', async (t) => {
  const sse = hub(t)
  sse.on('connection', (client, query) => client.join(query.room))
  const a = reader(sse.fetch(request('http://localhost/sse?room=a')))
  const b = reader(sse.fetch(request('http://localhost/sse?room=b')))
  assert.equal(sse.publish('a', 'for a'), 1)
  assert.equal(sse.publish(['a', 'b'], 'for both'), 2)
  await a.until('for both')
  await b.until('for both')
  assert.equal(a.text, ':ok\n\ndata: for a\n\ndata: for both\n\n')
  assert.equal(b.text, ':ok\n\ndata: for both\n\n')
})

test('heartbeats on an idle body', async (t) => {
  const sse = hub(t, { heartbeat: 30 })
  const body = reader(sse.fetch(request()))
  await eventually(() => body.text.split(':\n\n').length >= 3, 2000, 'two heartbeats')
  assert.match(body.text, /^:ok\n\n(:\n\n)+$/)
})

test('Last-Event-ID (header or query) replays what was missed; an unknown id gets ssehub-gap', async (t) => {
  const sse = hub(t, { history: 10 })
  for (let i = 1; i <= 4; i++) sse.broadcast({ id: i, data: `e${i}` })
  let last
  sse.on('connection', (client) => (last = client))
  const byHeader = reader(sse.fetch(request('http://localhost/sse', { headers: { 'Last-Event-ID': '2' } })))
  assert.equal(last.lastEventId, '2')
  const byQuery = reader(sse.fetch(request('http://localhost/sse?lastEventId=3')))
  const unknown = reader(sse.fetch(request('http://localhost/sse', { headers: { 'Last-Event-ID': 'nope' } })))
  sse.broadcast({ id: 5, data: 'live' })
  for (const body of [byHeader, byQuery, unknown]) await body.until('data: live\n\n')
  assert.equal(byHeader.text, ':ok\n\nid: 3\ndata: e3\n\nid: 4\ndata: e4\n\nid: 5\ndata: live\n\n')
  assert.equal(byQuery.text, ':ok\n\nid: 4\ndata: e4\n\nid: 5\ndata: live\n\n')
  assert.match(unknown.text, /^:ok\n\nevent: ssehub-gap\ndata: nope\n\nid: 1\ndata: e1\n\n/)
})

test('the reader cancelling, or the request aborting, closes the client as "client"', async (t) => {
  const sse = hub(t)
  const reasons = []
  sse.on('connection', (client) => client.on('close', (reason) => reasons.push(reason)))
  const body = reader(sse.fetch(request()))
  await body.until(':ok\n\n')
  await body.reader.cancel()
  const abort = new AbortController()
  reader(sse.fetch(request('http://localhost/sse', { signal: abort.signal })))
  abort.abort()
  await eventually(() => reasons.length === 2, 2000, 'two closes')
  assert.deepEqual(reasons, ['client', 'client'])
  assert.equal(sse.clients, 0)
  assert.equal(sse.broadcast('nobody'), 0)
})

test('client.close() and sse.close() end the body after what was sent; then 503', async (t) => {
  const sse = new SSE(null, { heartbeat: 0 })
  keepAlive(t, sse)
  const clients = []
  sse.on('connection', (client) => clients.push(client))
  const one = reader(sse.fetch(request()))
  const two = reader(sse.fetch(request()))
  clients[0].send('bye')
  clients[0].close()
  await one.finished
  assert.equal(one.error, null)
  assert.equal(one.text, ':ok\n\ndata: bye\n\n')
  assert.equal(clients[0].closeReason, 'server')

  sse.broadcast('last words')
  await sse.close()
  await two.finished
  assert.equal(two.text, ':ok\n\ndata: last words\n\n')
  assert.equal(clients[1].closeReason, 'shutdown')
  const refused = sse.fetch(request())
  assert.equal(refused.status, 503)
  assert.equal(refused.headers.get('retry-after'), '5')
  assert.equal(await refused.text(), 'SSE server is shutting down\n')
})

test('maxClients: past it a 503; HEAD gets the headers and no stream', async (t) => {
  const sse = hub(t, { maxClients: 1 })
  reader(sse.fetch(request()))
  const second = sse.fetch(request())
  assert.equal(second.status, 503)
  assert.equal(await second.text(), 'Too many SSE clients\n')
  const head = sse.fetch(request('http://localhost/sse', { method: 'HEAD' }))
  assert.equal(head.status, 200)
  assert.equal(head.headers.get('content-type'), 'text/event-stream')
  assert.equal(head.body, null)
  assert.equal(sse.clients, 1)
  assert.throws(() => sse.fetch({ url: 'http://x/' }), /takes a Fetch API Request/)
})

test('a Request that throws, before or after the stream opens, leaves no client slot taken', async (t) => {
  const sse = hub(t, { maxClients: 1 })
  const errorOf = (req) => {
    try {
      sse.fetch(req)
    } catch (err) {
      return err
    }
    return null
  }
  const badSignal = new Request('http://localhost/sse')
  Object.defineProperty(badSignal, 'signal', { get() { throw new Error('signal') } })
  const errors = [
    errorOf({ url: 'http://[::1', method: 'GET', headers: new Headers() }),
    errorOf({ url: 'http://localhost/sse', method: 'GET', headers: { get() { throw new Error('headers.get') } } }),
    errorOf(badSignal),
  ]
  // Once the stream is open: a 'connection' listener that throws.
  sse.once('connection', () => { throw new Error('listener') })
  errors.push(errorOf(request()))
  await eventually(() => sse.stats().clients === 0, 3000, 'the slots of the failed requests given back')
  const good = sse.fetch(request())
  assert.equal(good.status, 200, 'a slot is free')
  const body = reader(good)
  await body.until(':ok')
  assert.equal(sse.stats().clients, 1)
  assert.equal(sse.clients, 1)
  assert.ok(errors[0] instanceof TypeError, String(errors[0]))
  assert.deepEqual(errors.slice(1).map((e) => e && e.message), ['headers.get', 'signal', 'listener'])
})

test("refuse: 'retry': past maxClients a 200 that only says retry: and ends", async (t) => {
  const sse = hub(t, { maxClients: 1, refuse: 'retry', retryAfter: 1500 })
  reader(sse.fetch(request()))
  const second = sse.fetch(request())
  assert.equal(second.status, 200)
  assert.equal(second.headers.get('content-type'), 'text/event-stream')
  assert.equal(await second.text(), 'retry: 1500\n\n')
  assert.equal(sse.clients, 1)
})

test('a body nobody reads is closed as slow once its backlog passes maxQueueBytes; readers are unaffected', async (t) => {
  const sse = hub(t, { maxQueueBytes: 64 * 1024 })
  const closes = []
  sse.on('connection', (client) => client.on('close', (reason) => closes.push(reason)))
  const stalled = sse.fetch(request())
  const live = reader(sse.fetch(request()))
  const chunk = 'x'.repeat(8 * 1024)
  // The reader keeps up (each event is read before the next is sent); the
  // other body's backlog grows in the hub until it passes the limit.
  for (let i = 0; i < 20; i++) {
    sse.broadcast({ id: i, data: chunk })
    await live.until(`id: ${i}\n`)
  }
  await eventually(() => closes.includes('slow'), 3000, 'the stalled client to be dropped')
  assert.deepEqual(closes, ['slow'])
  await assert.rejects(stalled.text(), /slow/)
})

test('served by a Web-style adapter on node:http, a real EventSource gets events and replay', async (t) => {
  const sse = hub(t, { history: 10, retry: 50 })
  // The few lines a Fetch-based framework runs: IncomingMessage -> Request,
  // then Response -> res.
  const server = http.createServer(async (req, res) => {
    const abort = new AbortController()
    res.on('close', () => abort.abort())
    const response = sse.fetch(new Request(`http://${req.headers.host}${req.url}`, { headers: req.headers, signal: abort.signal }))
    res.writeHead(response.status, Object.fromEntries(response.headers))
    if (response.body) Readable.fromWeb(response.body).pipe(res)
    else res.end()
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => {
    server.closeAllConnections()
    return new Promise((r) => server.close(r))
  })
  const clients = []
  sse.on('connection', (client) => clients.push(client))
  const es = new EventSource(`http://127.0.0.1:${server.address().port}/sse`)
  t.after(() => es.close())
  const got = []
  es.addEventListener('message', (e) => got.push([e.lastEventId, e.data]))
  es.addEventListener('named', (e) => got.push([e.type, e.data]))
  await eventually(() => clients.length === 1, 3000, 'the EventSource to connect')
  sse.broadcast({ id: 1, data: 'one' })
  clients[0].send('named', 'typed')
  await eventually(() => got.length === 2, 3000, 'two events')
  clients[0].close()
  sse.broadcast({ id: 2, data: 'missed' })
  await eventually(() => clients.length === 2, 3000, 'the reconnect')
  assert.equal(clients[1].lastEventId, '1')
  await eventually(() => got.length === 3, 3000, 'the replayed event')
  assert.deepEqual(got, [['1', 'one'], ['named', 'typed'], ['2', 'missed']])
})

test('index.d.ts types sse.fetch(Request): Response under --strict', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-fetch-types-'))
  try {
    const root = path.join(__dirname, '..', '..').replace(/\\/g, '/')
    const file = path.join(dir, 'fetch.ts')
    fs.writeFileSync(
      file,
      `import SSE = require('${root}')\nconst sse = new SSE(null)\n` +
        `const response: Response = sse.fetch(new Request('http://localhost/sse'))\n` +
        `const body: ReadableStream<Uint8Array> | null = response.body\nvoid body\n` +
        `// @ts-expect-error not a Request\nsse.fetch('http://localhost/sse')\n`
    )
    const tsc = require.resolve('typescript/bin/tsc')
    const result = spawnSync(
      process.execPath,
      [tsc, '--strict', '--noEmit', '--module', 'commonjs', '--target', 'es2022', '--types', 'node', '--esModuleInterop', '--lib', 'es2022,dom', file],
      { encoding: 'utf8' }
    )
    assert.equal(result.status, 0, result.stdout + result.stderr)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
