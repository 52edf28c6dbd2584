'use strict'
// Nothing a client or the environment does crashes, wedges or leaks the
// process: failed takeovers, pipelined fallback streams, a worker torn
// down, refusals before any head, bounded history, and refusal by retry.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const https = require('node:https')
const net = require('node:net')
const tls = require('node:tls')
const { spawn } = require('node:child_process')
const { Worker } = require('node:worker_threads')
const { startSse, get, nextConnection, eventually, SSE } = require('../helpers/addon')

const tick = (ms) => new Promise((r) => setTimeout(r, ms))
const key = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'test-key.pem'))
const cert = fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'test-cert.pem'))

const RESETTER = `
const net = require('node:net')
const { parentPort, workerData } = require('node:worker_threads')
async function main() {
  for (let i = 0; i < workerData.count; i++) {
    await new Promise((resolve) => {
      const socket = net.connect(workerData.port, '127.0.0.1', () => {
        socket.write('GET /sse HTTP/1.1\\r\\nHost: x\\r\\nX-Reset: 1\\r\\n\\r\\n')
        setTimeout(() => { socket.resetAndDestroy(); setTimeout(resolve, 200) }, 30)
      })
      socket.on('error', () => {})
    })
  }
  parentPort.postMessage('done')
}
main()
`

test('clients that reset right after their request (ENOTCONN at takeover) are counted; the process serves on', async (t) => {
  const sleeper = new Int32Array(new SharedArrayBuffer(4))
  const { sse, port, stop } = await startSse({
    verifyRequest(req) {
      if (req.headers['x-reset'] === undefined) return true
      void req.socket.remoteAddress // cached now, as a logging middleware would
      Atomics.wait(sleeper, 0, 0, 400) // the reset lands meanwhile
      return true
    },
  })
  t.after(stop)
  const unhandled = []
  const onUnhandled = (err) => unhandled.push(err)
  process.on('unhandledRejection', onUnhandled)
  t.after(() => process.off('unhandledRejection', onUnhandled))
  // The resetting clients run on another thread: the server's is asleep.
  const resetter = new Worker(RESETTER, { eval: true, workerData: { port, count: 4 } })
  await new Promise((resolve, reject) => resetter.once('message', resolve).once('error', reject))
  await eventually(() => sse.stats().takeoverFailures + sse.stats().connectedTotal >= 4, 3000, 'every reset request handled')
  assert.ok(sse.stats().takeoverFailures >= 1, JSON.stringify(sse.stats()))
  assert.deepEqual(unhandled, [])
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  client.send('alive')
  await raw.bodyIncludes('data: alive')
  raw.destroy()
})

test('under ulimit -n 64 with more clients than fds, a failed dup (EMFILE) falls back; the process serves on', async () => {
  const fixture = path.join(__dirname, '..', 'fixtures', 'low-fd-server.js')
  const child = spawn('sh', ['-c', `ulimit -n 64 && exec "${process.execPath}" "${fixture}"`], { stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const sockets = []
  try {
    await eventually(() => out.includes('\n'), 10000, 'the fixture to listen')
    const { port } = JSON.parse(out.split('\n')[0])
    let streams = 0
    for (let i = 0; i < 80; i++) {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /sse HTTP/1.1\r\nHost: x\r\n\r\n'))
      socket.on('data', (d) => /hello/.test(d) && streams++)
      socket.on('error', () => {})
      sockets.push(socket)
      await tick(5)
    }
    await tick(300)
    child.stdin.write('stats\n')
    const { code, signal } = await Promise.race([exited, tick(10000).then(() => ({ code: 'hung' }))])
    assert.equal(code, 0, `exit ${code} ${signal}; stderr: ${err}`)
    const stats = JSON.parse(out.split('\n')[1])
    assert.ok(stats.takeoverFailures >= 1, `no dup failed: ${out}`)
    assert.ok(stats.fallbackClients >= 1, out)
    assert.ok(streams >= 20, `only ${streams} streams`)
  } finally {
    sockets.forEach((s) => s.destroy())
    child.kill()
  }
})

async function httpsSse(options) {
  const server = https.createServer({ key, cert }, (req, res) => res.end('app'))
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const sse = new SSE(server, options)
  const stop = async () => {
    await sse.close()
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  }
  return { server, sse, port: server.address().port, stop }
}

test('TLS: two stream requests pipelined on one connection both end when the peer leaves', async (t) => {
  const { sse, port, stop } = await httpsSse({ heartbeat: 0 })
  t.after(stop)
  for (let round = 0; round < 5; round++) {
    const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () =>
      socket.write('GET /sse HTTP/1.1\r\nHost: x\r\n\r\nGET /sse HTTP/1.1\r\nHost: x\r\n\r\n')
    )
    socket.on('error', () => {})
    await eventually(() => sse.clients === 2, 3000, 'both requests accepted')
    socket.destroy()
    await eventually(() => sse.clients === 0, 3000, 'every hub client closed')
  }
  assert.equal(sse.stats().clients, 0)
})

test('fallback: a reader that stops is held to maxQueueBytes in the hub and closed as slow', async (t) => {
  const { sse, port, stop } = await httpsSse({ heartbeat: 0, maxQueueBytes: 64 * 1024 })
  t.after(stop)
  const connected = nextConnection(sse)
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => socket.write('GET /sse HTTP/1.1\r\nHost: x\r\n\r\n'))
  socket.on('error', () => {})
  const { client } = await connected
  socket.pause()
  const reason = new Promise((resolve) => client.on('close', resolve))
  const chunk = 'x'.repeat(1000)
  let most = 0
  for (let i = 0; i < 20000 && !client.closed; i++) {
    client.send(chunk)
    most = Math.max(most, client.queuedBytes)
    if (i % 50 === 0) await tick(1)
  }
  assert.equal(await reason, 'slow')
  assert.ok(most > 0, 'the backlog waited in the hub, not in copies toward JS')
  assert.ok(most <= 64 * 1024 + 1100, `the hub queue stayed bounded (${most})`)
  socket.destroy()
})

for (const transport of ['auto', 'fallback']) {
  test(`past maxClients the refusal is a 503 with no 200 head before it (${transport})`, async (t) => {
    const { sse, port, stop } = await startSse({ maxClients: 1, transport })
    t.after(stop)
    const first = get(port, '/sse')
    await first.bodyIncludes(':ok')
    const refused = get(port, '/sse')
    await refused.until((r) => r.head !== null)
    assert.match(refused.head, /^HTTP\/1\.1 503/)
    assert.doesNotMatch(refused.text, /200 OK/)
    assert.match(refused.head, /Retry-After: 5/i)
    first.destroy()
    refused.destroy()
    assert.equal(sse.clients <= 1, true)
  })

  test(`refuse: 'retry' answers 200 with a retry: hint and ends, past maxClients and during close (${transport})`, async (t) => {
    const { sse, port, stop } = await startSse({ maxClients: 1, transport, refuse: 'retry', retryAfter: 7000 })
    t.after(stop)
    const first = get(port, '/sse')
    await first.bodyIncludes(':ok')
    const refused = get(port, '/sse')
    await refused.closed()
    assert.match(refused.head, /^HTTP\/1\.1 200/)
    assert.match(refused.head, /Content-Type: text\/event-stream/)
    assert.equal(refused.body, 'retry: 7000\n\n')
    first.destroy()
    await eventually(() => sse.clients === 0)
    sse.close()
    const late = get(port, '/sse')
    await late.closed()
    assert.equal(late.body, 'retry: 7000\n\n')
  })
}

test('handleRequest never returns null: HEAD and past maxClients give a closed client (the README snippet is safe)', async (t) => {
  const sse = new SSE(null, { maxClients: 1 })
  const returned = []
  const server = require('node:http').createServer((req, res) => {
    const client = sse.handleRequest(req, res)
    client.join(`user:${returned.length}`) // the README's Express snippet
    client.send('welcome')
    returned.push(client)
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  t.after(async () => {
    await sse.close()
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })
  const port = server.address().port
  const head = get(port, '/sse', {}, '1.1', 'HEAD')
  await head.until((r) => r.head !== null)
  const ok = get(port, '/sse')
  await ok.bodyIncludes('data: welcome')
  const over = get(port, '/sse')
  await over.until((r) => r.head !== null)
  assert.equal(returned.length, 3)
  assert.equal(returned[0].closed, true)
  assert.equal(returned[0].closeReason, 'refused')
  assert.equal(returned[2].closed, true)
  assert.equal(returned[2].send('x'), false)
  const reason = await new Promise((resolve) => {
    const c = sse.handleRequest({ method: 'HEAD', headers: {}, url: '/sse' }, { writeHead() {}, end() {}, getHeaderNames: () => [], hasHeader: () => false })
    c.on('close', resolve)
  })
  assert.equal(reason, 'refused')
  ok.destroy()
  head.destroy()
  over.destroy()
})

for (const transport of ['auto', 'fallback']) {
  test(`worker.terminate() with the client outside the worker closes its streams (${transport})`, async () => {
    const worker = new Worker(path.join(__dirname, '..', 'fixtures', 'worker-server.js'), { env: { ...process.env, SSEHUB_TEST_TRANSPORT: transport } })
    const port = await new Promise((resolve) => worker.once('message', (m) => resolve(m.port)))
    const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /sse HTTP/1.1\r\nHost: x\r\n\r\n'))
    socket.on('error', () => {})
    let text = ''
    socket.on('data', (d) => (text += d))
    const closed = new Promise((resolve) => socket.on('close', resolve))
    try {
      await eventually(() => text.includes('from worker'), 5000, 'the stream')
      await worker.terminate()
      const result = await Promise.race([closed.then(() => 'closed'), tick(3000).then(() => 'still open')])
      assert.equal(result, 'closed')
    } finally {
      socket.destroy()
    }
  })
}

test('history is bounded in bytes too: events past historyBytes are forgotten', async (t) => {
  const { sse, port, stop } = await startSse({ history: 100, historyBytes: 200 })
  t.after(stop)
  for (let n = 1; n <= 10; n++) sse.broadcast({ id: String(n), data: 'x'.repeat(40) })
  const raw = get(port, '/sse', { 'Last-Event-ID': '1' })
  await raw.bodyIncludes('id: 10')
  assert.match(raw.body, /event: ssehub-gap/, 'id 1 was dropped to stay within the bytes')
  assert.doesNotMatch(raw.body, /id: 2\n/)
  raw.destroy()
  assert.throws(() => new SSE(null, { historyBytes: -1 }), TypeError)
})

test('errors from the hub carry a stable code', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  assert.throws(() => client.send('bad\nevent', 'x'), { name: 'TypeError', code: 'ERR_SSEHUB_INVALID_FIELD' })
  assert.throws(() => sse.broadcast({ id: 'a\rb', data: 'x' }), { code: 'ERR_SSEHUB_INVALID_FIELD' })
  const source = fs.readFileSync(path.join(__dirname, '..', '..', 'lib', 'sse.js'), 'utf8') + fs.readFileSync(path.join(__dirname, '..', '..', 'lib', 'message.js'), 'utf8')
  assert.doesNotMatch(source, /\/client limit\/|\/hub is closed\/|\/line break\//, 'lib/ matches codes, not messages')
  raw.destroy()
})

test('every napi entry point catches panics (none can cross into Node)', () => {
  const dir = path.join(__dirname, '..', '..', 'crates', 'node', 'src')
  let entries = 0
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.rs'))) {
    const source = fs.readFileSync(path.join(dir, file), 'utf8')
    // Each #[napi...] attribute on a function (a method, a constructor, a
    // free function); those on structs, impls and objects carry no code.
    for (const match of source.matchAll(/#\[(?:napi_derive::)?napi([^\]]*)\]\s*(?:\/\/\/[^\n]*\s*)*(pub\s+)?(fn|struct|impl)/g)) {
      if (match[3] !== 'fn') continue
      entries++
      assert.match(match[1], /catch_unwind/, `${file}: #[napi${match[1]}] fn`)
    }
  }
  assert.ok(entries >= 20, `${entries} entry points found`)
})
