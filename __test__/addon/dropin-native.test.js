'use strict'
// Code written for `sse` 0.0.8 that looks past `client.send` (req.socket,
// res.write/end, 'close' on req and res, server.close(), pipelining,
// middleware headers) gives the same result on ssehub, native transport
// included. Side by side with the real `sse` where it can run the program.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const http = require('node:http')
const https = require('node:https')
const http2 = require('node:http2')
const net = require('node:net')
const tls = require('node:tls')
const { get, startSse, nextConnection, eventually, RawClient, SSE } = require('../helpers/addon')

const tick = (ms) => new Promise((r) => setTimeout(r, ms))

/** What a typical `sse` user does in a connection handler, and what it saw. */
async function runProgram(Impl, options = {}) {
  const server = http.createServer((req, res) => res.end('app'))
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const port = server.address().port
  const sse = new Impl(server, { path: '/stream', ...options })
  const seen = []
  const done = new Promise((resolve) => {
    sse.on('connection', (client) => {
      const socket = client.req.socket
      socket.setTimeout(0)
      socket.setNoDelay(true)
      socket.setKeepAlive(true, 1000)
      client.req.connection.setNoDelay(true)
      seen.push(`addresses ${socket.remoteAddress} ${typeof socket.remotePort} ${socket.localAddress} ${socket.localPort === port}`)
      client.req.on('close', () => seen.push('req close'))
      client.res.on('close', () => seen.push('res close'))
      client.on('close', () => {
        seen.push('client close')
        setTimeout(resolve, 50)
      })
      client.res.write(': my own comment\n\n')
      client.send('a')
      client.res.write('data: written raw\n\n')
      client.send('b')
      seen.push(`writableEnded ${client.res.writableEnded}`)
      setTimeout(() => {
        seen.push('later')
        client.res.end()
        seen.push(`writableEnded ${client.res.writableEnded}`)
      }, 80)
    })
  })
  const raw = get(port, '/stream')
  await done
  // sse keeps the connection open for more requests after res.end(); ssehub
  // closes it (see README): both end the chunked body.
  await raw.until((r) => r.ended || r.text.endsWith('0\r\n\r\n'))
  raw.destroy()
  if (Impl === SSE) await sse.close()
  server.closeAllConnections()
  await new Promise((r) => server.close(r))
  return { body: raw.body, seen }
}

for (const transport of ['auto', 'fallback']) test(`a handler using req.socket, res.write and res.end: same bytes and events as sse 0.0.8 (${transport})`, async () => {
  const original = await runProgram(require('sse'))
  const ours = await runProgram(SSE, { transport })
  assert.match(original.body, /written raw/)
  assert.equal(ours.body, original.body)
  const upToLater = (seen) => seen.slice(0, seen.indexOf('later') + 2)
  assert.deepEqual(upToLater(ours.seen), upToLater(original.seen), 'no close before the stream ends')
  assert.deepEqual([...ours.seen].sort(), [...original.seen].sort())
})

test('native: res.writableLength counts what is queued; writes after the end are refused, not kept', async (t) => {
  const { sse, port, stop } = await startSse({ heartbeat: 0 })
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  assert.equal(client.transport, 'native')
  assert.equal(client.res.headersSent, true)
  assert.throws(() => client.res.setHeader('X-Late', '1'), { code: 'ERR_HTTP_HEADERS_SENT' })
  client.res.write(Buffer.alloc(1000, 'x'))
  assert.equal(client.res.writableLength, 1000, 'queued, not yet written (the writer wakes after this tick)')
  await raw.until((r) => r.body.length >= 1005)
  await eventually(() => client.res.writableLength === 0, 3000, 'the queue drained')
  const closed = new Promise((resolve) => client.on('close', resolve))
  client.res.end('data: last\n\n')
  assert.equal(client.res.writableEnded, true)
  const late = await new Promise((resolve) => assert.equal(client.res.write('more', resolve), false))
  assert.equal(late.code, 'ERR_STREAM_WRITE_AFTER_END')
  assert.equal(await closed, 'server')
  await raw.closed()
  assert.ok(raw.body.endsWith('data: last\n\n'))
  assert.equal(client.res.writableLength, 0)
})

for (const how of ['req.socket.destroy()', 'req.destroy()', 'res.destroy()']) {
  test(`native: ${how} ends the stream and fires 'close' everywhere`, async (t) => {
    const { sse, port, stop } = await startSse({ heartbeat: 0 })
    t.after(stop)
    const connected = nextConnection(sse)
    const raw = get(port, '/sse')
    const { client } = await connected
    await raw.bodyIncludes(':ok')
    const events = []
    client.req.socket.on('close', () => events.push('socket'))
    client.req.on('close', () => events.push('req'))
    client.res.on('close', () => events.push('res'))
    const closed = new Promise((resolve) => client.on('close', resolve))
    if (how === 'req.socket.destroy()') client.req.socket.destroy()
    else if (how === 'req.destroy()') client.req.destroy()
    else client.res.destroy()
    await closed
    await raw.closed()
    await eventually(() => events.length === 3, 2000, 'close on socket, req and res')
    assert.equal(client.req.socket.destroyed, true)
  })
}

test('pipelining: a stream request behind an unfinished response waits for it; bytes after the head are fine', async (t) => {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '9' })
    setTimeout(() => res.end('slow body'), 100)
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const sse = new SSE(server, { heartbeat: 0 })
  t.after(async () => {
    await sse.close()
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })
  const port = server.address().port
  sse.on('connection', (client) => client.send('streamed'))
  const raw = new RawClient(port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /sse HTTP/1.1\r\nHost: x\r\n\r\n')
  await raw.until((r) => r.text.includes('data: streamed'))
  const text = raw.text
  assert.ok(text.indexOf('slow body') !== -1, 'the first response is whole')
  assert.ok(text.indexOf('slow body') < text.indexOf('text/event-stream'), 'and comes before the stream head')
  raw.destroy()

  const again = get(port, '/sse')
  await again.bodyIncludes('data: streamed')
  again.socket.write('GET /next HTTP/1.1\r\nHost: x\r\n\r\n' + 'x'.repeat(64 * 1024))
  await tick(50)
  assert.equal(sse.broadcast('after junk'), 1)
  await again.bodyIncludes('data: after junk')
  assert.equal(again.ended, false)
  again.destroy()

  // Requests pipelined behind the stream's, in the same packet: never answered
  // (the stream never ends), never in the way.
  const behind = new RawClient(port, 'GET /sse HTTP/1.1\r\nHost: x\r\n\r\nGET /other HTTP/1.1\r\nHost: x\r\n\r\nGET /sse HTTP/1.1\r\nHost: x\r\n\r\n')
  await behind.bodyIncludes('data: streamed')
  await tick(50)
  assert.equal(sse.clients, 1)
  assert.equal(sse.broadcast('still one'), 1)
  await behind.bodyIncludes('data: still one')
  assert.doesNotMatch(behind.text, /slow body/)
  behind.destroy()
})

for (const transport of ['auto', 'fallback']) {
  test(`headers from middleware: Set-Cookie arrays stay separate lines, Content-Length and Transfer-Encoding are dropped (${transport})`, async (t) => {
    const sse = new SSE(null, { transport })
    const server = http.createServer((req, res) => {
      res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/'])
      res.setHeader('Content-Length', '10')
      res.setHeader('X-Request-Id', 'r1')
      sse.handleRequest(req, res).send('hi')
    })
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    t.after(async () => {
      await sse.close()
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    })
    const raw = get(server.address().port, '/sse')
    await raw.bodyIncludes('data: hi')
    const lines = raw.head.split('\r\n').map((l) => l.toLowerCase())
    assert.ok(lines.includes('set-cookie: a=1; path=/'), raw.head)
    assert.ok(lines.includes('set-cookie: b=2; path=/'), raw.head)
    assert.ok(lines.includes('x-request-id: r1'))
    assert.equal(lines.filter((l) => l.startsWith('content-length')).length, 0, raw.head)
    assert.equal(lines.filter((l) => l.startsWith('transfer-encoding')).length, 1, raw.head)
    raw.destroy()
  })
}

test('with no app request listener, a request that is not a stream gets a 404', async (t) => {
  const server = http.createServer()
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const sse = new SSE(server)
  t.after(async () => {
    await sse.close()
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })
  const raw = get(server.address().port, '/other')
  await raw.until((r) => r.head !== null)
  assert.match(raw.head, /^HTTP\/1\.1 404/)
  raw.destroy()
})

const key = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'test-key.pem'))
const cert = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'test-cert.pem'))

for (const kind of ['https', 'http2']) {
  test(`server.close() on ${kind}: streams go on, then sse.close() ends them and the server finishes closing`, async () => {
    const server = kind === 'https' ? https.createServer({ key, cert }, (req, res) => res.end('app')) : http2.createSecureServer({ key, cert })
    await new Promise((r) => server.listen(0, '127.0.0.1', r))
    const sse = new SSE(server, { heartbeat: 0 })
    const connected = nextConnection(sse)
    let received = ''
    let session = null
    let socket = null
    if (kind === 'https') {
      socket = tls.connect({ port: server.address().port, host: '127.0.0.1', rejectUnauthorized: false }, () => socket.write('GET /sse HTTP/1.1\r\nHost: x\r\n\r\n'))
      socket.on('data', (d) => (received += d))
      socket.on('error', () => {})
    } else {
      session = http2.connect(`https://127.0.0.1:${server.address().port}`, { rejectUnauthorized: false })
      session.on('error', () => {})
      const stream = session.request({ ':path': '/sse' })
      stream.on('data', (d) => (received += d))
      stream.on('error', () => {})
    }
    const { client } = await connected
    assert.equal(client.transport, 'fallback')
    let finished = false
    const closing = new Promise((resolve) => server.close(() => resolve((finished = true))))
    await tick(50)
    assert.equal(finished, false)
    client.send('after server.close')
    await eventually(() => received.includes('after server.close'), 3000, 'a live stream')
    await sse.close()
    await Promise.race([closing, tick(3000)])
    if (socket) socket.destroy()
    if (session) session.destroy()
    assert.equal(finished, true, 'server.close() finished once the streams ended')
  })
}

test('the connection count Node reports includes native streams', async (t) => {
  const { sse, port, server, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  await connected
  const count = await new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))))
  assert.equal(count, 1)
  raw.destroy()
  await eventually(() => sse.clients === 0)
  assert.equal(server._connections, 0)
})

test('socket options on the native transport return the socket and never throw', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  const s = client.req.socket
  assert.equal(s.setNoDelay(false), s)
  assert.equal(s.setKeepAlive(true, 30000), s)
  assert.equal(s.setTimeout(1000, () => {}), s)
  assert.equal(s.timeout, 1000)
  assert.equal(client.req.setTimeout(0), client.req)
  assert.deepEqual(s.address(), { address: '127.0.0.1', family: 'IPv4', port })
  assert.ok(s instanceof require('node:events').EventEmitter)
  assert.ok(!(s instanceof net.Socket))
  raw.destroy()
})

/** The timer field of the kernel's entry for one loopback TCP connection. */
function tcpTimer(localPort, remotePort) {
  const hex = (n) => ':' + n.toString(16).toUpperCase().padStart(4, '0')
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/)
    if (fields.length > 5 && fields[1].endsWith(hex(localPort)) && fields[2].endsWith(hex(remotePort))) return fields[5]
  }
  return null
}

test('native: setKeepAlive reaches the Rust-owned socket (the kernel arms a keepalive timer)', { skip: !fs.existsSync('/proc/net/tcp') }, async (t) => {
  const { sse, port, stop } = await startSse({ heartbeat: 0 })
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  await raw.bodyIncludes(':ok')
  const socket = client.req.socket
  assert.match(tcpTimer(port, socket.remotePort), /^00:/, 'no timer before')
  socket.setKeepAlive(true, 60000)
  const [kind, jiffies] = tcpTimer(port, socket.remotePort).split(':')
  assert.equal(kind, '02', 'a keepalive timer')
  assert.ok(parseInt(jiffies, 16) > 1000, 'about a minute away')
  socket.setKeepAlive(false)
  assert.match(tcpTimer(port, socket.remotePort), /^00:/)
  raw.destroy()
})

test('native: binding req and res adds no per-client dictionary (they stay fast-mode objects)', async (t) => {
  require('node:v8').setFlagsFromString('--allow-natives-syntax')
  const hasFastProperties = new Function('o', 'return %HasFastProperties(o)')
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  assert.equal(client.transport, 'native')
  assert.equal(hasFastProperties(client.res), true, 'res')
  assert.equal(hasFastProperties(client.req), true, 'req')
  assert.ok(client.res instanceof http.ServerResponse)
  // An idle client keeps no listener table it does not use (each is a
  // dictionary of about 190 bytes), and one made later still works.
  assert.equal(client.req.socket, client.res.socket)
  for (const emitter of [client, client.req.socket, client.res]) assert.equal(emitter._events, undefined)
  const heard = []
  client.on('close', (reason) => heard.push(`client ${reason}`))
  client.req.socket.on('close', () => heard.push('socket'))
  client.res.on('close', () => heard.push('res'))
  assert.equal(client.listenerCount('close'), 1)
  raw.destroy()
  await eventually(() => heard.length === 3, 5000, 'every close listener')
  assert.deepEqual(heard.sort(), ['client client', 'res', 'socket'])
})
