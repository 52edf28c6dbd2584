'use strict'
// The addon under bad input and faults: every JS type given to `send`,
// huge events, clients that vanish mid-write (RST), shutdown with a
// backlog, hubs in worker_threads, process exit with open streams.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { Worker } = require('node:worker_threads')
const { startSse, get, nextConnection, eventually } = require('../helpers/addon')

test('send with every JS type: a frame or a TypeError, never half a frame', async (t) => {
  const { sse, port, stop } = await startSse({ heartbeat: 0 })
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  const circular = {}
  circular.self = circular
  const good = [
    [[true], 'data: true\n\n'],
    [[NaN], 'data: NaN\n\n'],
    [[-0], 'data: 0\n\n'],
    [[1n], 'data: 1\n\n'],
    [[[1, 'a']], 'data: [1,"a"]\n\n'],
    [[{ data: new Uint8Array([104, 105]) }], 'data: hi\n\n'],
    [[{ data: 'x', retry: '10' }], 'retry: 10\ndata: x\n\n'],
    [['e', undefined], 'event: e\n\n'],
  ]
  const bad = [
    [Symbol('s')],
    [() => 1],
    [{ data: Symbol('s') }],
    [{ data: circular }],
    [{ data: { big: 1n } }],
    [{ event: {} }],
    [{ event: 'a\nb', data: 'x' }],
    [{ id: 'a\0b', data: 'x' }],
    [{ id: 'a\rb', data: 'x' }],
    [{ retry: -1 }],
    [{ retry: 1.5 }],
    [{ retry: '1\n2' }],
    ['e', 'd', { id: 1 }],
  ]
  let expected = ':ok\n\n'
  for (const [args, wire] of good) {
    assert.equal(client.send(...args), true, String(args[0]))
    expected += wire
  }
  for (const args of bad) {
    assert.throws(() => client.send(...args), TypeError, String(args[0]?.toString?.()))
    assert.throws(() => sse.broadcast(...args), TypeError)
  }
  client.send('END')
  await raw.bodyIncludes('data: END\n\n')
  assert.equal(raw.body, expected + 'data: END\n\n')
  raw.destroy()
})

for (const transport of ['auto', 'fallback']) {
  test(`a single event bigger than maxQueueBytes reaches a reader intact (${transport})`, async (t) => {
    const { sse, port, stop } = await startSse({ heartbeat: 0, maxQueueBytes: 64 * 1024, transport })
    t.after(stop)
    const connected = nextConnection(sse)
    const raw = get(port, '/sse')
    const { client } = await connected
    const reasons = []
    client.on('close', (r) => reasons.push(r))
    const big = 'y'.repeat(3 << 20)
    assert.equal(client.send(big), true)
    client.send('after')
    await raw.bodyIncludes('data: after\n\n', 10000)
    assert.equal(raw.body, `:ok\n\ndata: ${big}\n\ndata: after\n\n`)
    assert.deepEqual(reasons, [])
    assert.equal(sse.stats().droppedSlow, 0)
    raw.destroy()
  })
}

test('clients reset mid-write (RST) are closed as client; the others receive everything', async (t) => {
  const { sse, port, stop } = await startSse({ heartbeat: 0, maxQueueBytes: 64 << 20 })
  t.after(stop)
  const clients = []
  sse.on('connection', (c) => clients.push(c))
  const raws = Array.from({ length: 6 }, () => get(port, '/sse'))
  await eventually(() => clients.length === 6)
  const reasons = new Map()
  clients.forEach((c, i) => c.on('close', (r) => reasons.set(i, r)))
  const chunk = 'z'.repeat(64 * 1024)
  for (let i = 0; i < 200; i++) {
    sse.broadcast({ id: i, data: chunk })
    if (i === 20) raws.slice(0, 3).forEach((r) => r.socket.resetAndDestroy())
    if (i % 10 === 0) await new Promise((r) => setImmediate(r))
  }
  for (const raw of raws.slice(3)) {
    await raw.bodyIncludes('id: 199\n', 15000)
    assert.equal((raw.body.match(/^id: \d+$/gm) || []).length, 200)
  }
  await eventually(() => reasons.size === 3, 5000, 'the reset clients to close')
  assert.deepEqual([...reasons.values()], ['client', 'client', 'client'])
  assert.equal(sse.clients, 3)
  raws.forEach((r) => r.destroy())
  await eventually(() => sse.clients === 0, 5000, 'every client to be gone')
})

test('sse.close() with a backlog: a reader that was paused still gets every event, then the end', async (t) => {
  const { sse, port, server } = await startSse({ heartbeat: 0, maxQueueBytes: 32 << 20 })
  t.after(() => new Promise((r) => server.close(r)))
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  await connected
  await raw.bodyIncludes(':ok')
  raw.socket.pause()
  const payload = 'p'.repeat(16 * 1024)
  for (let i = 0; i < 600; i++) sse.broadcast({ id: i, data: payload }) // ~10 MB: past the socket buffers
  const closed = sse.close()
  assert.equal(sse.close(), closed, 'close twice is the same promise')
  assert.equal(sse.broadcast('after close'), 0)
  await new Promise((r) => setTimeout(r, 200))
  raw.socket.resume()
  await closed
  await raw.closed(10000)
  const ids = raw.body.match(/^id: \d+$/gm) || []
  assert.equal(ids.length, 600)
  assert.equal(ids[599], 'id: 599')
  assert.ok(raw.text.endsWith('0\r\n\r\n'), 'the chunked body was terminated')
  assert.doesNotMatch(raw.body, /after close/)
})

test('one hub per worker_thread: streams work, terminate() with open streams does not crash', async () => {
  const worker = path.join(__dirname, '..', 'fixtures', 'worker-hub.js')
  const run = () => new Promise((resolve, reject) => {
    const w = new Worker(worker)
    w.once('error', reject)
    w.once('message', (m) => resolve({ w, m }))
  })
  const [a, b] = await Promise.all([run(), run()])
  for (const { m } of [a, b]) {
    assert.equal(m.received, 'data: from worker\n\n')
    assert.equal(m.transport, 'native')
  }
  const codes = await Promise.all([a.w.terminate(), b.w.terminate()])
  assert.deepEqual(codes, [1, 1])
  // The process and a hub on the main thread are unaffected.
  const { sse, port, stop } = await startSse({ heartbeat: 0 })
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  client.send('main still fine')
  await raw.bodyIncludes('data: main still fine\n\n')
  raw.destroy()
  await stop()
})

/** Runs a child script; resolves {code, signal, stderr} or rejects on a hang. */
function runChild(mode, ms = 10000) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'exit-with-streams.js'), mode])
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${mode}: hung`)) }, ms)
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stderr }) })
  })
}

test('process exit with open streams: no crash, no hang', async () => {
  assert.deepEqual(await runChild('exit'), { code: 0, signal: null, stderr: '' })
  assert.deepEqual(await runChild('drain'), { code: 0, signal: null, stderr: '' })
  const thrown = await runChild('throw')
  assert.equal(thrown.code, 1)
  assert.equal(thrown.signal, null)
  assert.match(thrown.stderr, /boom with open streams/)
})
