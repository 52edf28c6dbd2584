'use strict'
// Slow consumers: clients that stop reading beside clients that read.
//
//   node tests/slow-consumers.js [--long] [--target addon|daemon]
//
// Readers and stalled clients are loadgen processes (stalled ones hold
// their sockets with a 4 KiB receive buffer and never read), so neither
// slows the server's event loop. Checks: every reader receives every
// event, with a bounded latency; every stalled client is closed as slow
// once its queue passes the limit; no reader is; the server's memory
// grows by less than the limit times the stalled clients; afterwards no
// client is left. Short (npm test): 50 + 50 clients. --long: 1000 + 1000.
const http = require('node:http')
const net = require('node:net')
const lib = require('./lib')
const { check } = lib

const long = process.argv.includes('--long')
const target = process.argv.includes('daemon') ? 'daemon' : 'addon'
const READERS = long ? 1000 : 50
const STALLED = long ? 1000 : 50
// 6.4 MB per client: past what the kernel buffers for a stalled socket
// (about 2-3 MB here with a 4 KiB receive buffer) plus the limit.
const EVENTS = 400
const SIZE = 16 * 1024
// The daemon's hub default is 1 MiB; the addon's is set, smaller when
// short so the stalled clients fill sooner, yet 32 events deep, so that a
// reader on a busy 2-core machine is not taken for a stalled one.
const LIMIT = target === 'addon' && !long ? 512 * 1024 : 1 << 20
const SLACK = 96 << 20 // allocator and runtime noise

async function addonServer() {
  const SSE = require('..')
  const server = http.createServer((req, res) => res.end())
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const sse = new SSE(server, { heartbeat: 0, maxQueueBytes: LIMIT })
  const closes = { read: {}, stall: {} }
  sse.on('connection', (client) => {
    const kind = client.req.url.includes('stall') ? 'stall' : 'read'
    client.on('close', (reason) => { closes[kind][reason] = (closes[kind][reason] || 0) + 1 })
  })
  return {
    port: server.address().port,
    paths: { read: '/sse?read', stall: '/sse?stall' },
    pid: process.pid,
    clients: async () => sse.clients,
    publish: async (i) => { sse.broadcast({ data: lib.stamped(i, SIZE) }) },
    droppedSlow: async () => closes.stall.slow || 0,
    readersClosed: async () => Object.values(closes.read).reduce((a, b) => a + b, 0),
    stop: async () => { await sse.close(); server.close() },
  }
}

async function daemonServer() {
  const { start, raw, split } = require('../__test__/helpers/daemon')
  const [port, ctlPort, metrics] = [await lib.freePort(), await lib.freePort(), await lib.freePort()]
  // The log goes to /dev/null: SSE-Server's format logs every delivery
  // with its data, hundreds of MB here.
  const d = start(['channels', '-n', '-l', '/dev/null', '-p', `127.0.0.1:${port}`, '-P', String(ctlPort),
    '--metrics', String(metrics), '--heartbeat', '0', '--max-clients', '0'], { env: { SSEHUB_THREADS: '2' } })
  const status = async () => JSON.parse(split(await raw(metrics, 'GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n',
    { until: (t) => t.trimEnd().endsWith('}') })).body)
  await lib.until(() => status().then(() => true, () => false), 10000, 'the daemon to listen')
  const ctl = net.connect(ctlPort, '127.0.0.1')
  await new Promise((r) => ctl.on('connect', r))
  return {
    port,
    paths: { read: '/', stall: '/' },
    pid: d.child.pid,
    clients: async () => (await status()).connected_clients,
    // Both kinds subscribe to every channel; one line reaches them all.
    publish: (i) => new Promise((r) => ctl.write(`news = ${lib.stamped(i, SIZE)}\n`, r)),
    droppedSlow: async () => (await status()).clients_dropped_slow_total,
    // Once the stalled clients are gone, every reader must still be there.
    readersClosed: async () => READERS - (await status()).connected_clients,
    stop: async () => { ctl.destroy(); await d.stop() },
  }
}

async function main() {
  lib.buildLoadgen()
  const server = target === 'addon' ? await addonServer() : await daemonServer()
  const common = ['--port', String(server.port), '--connections', '0', '--max-runtime', '600']
  const readers = lib.loadgen([...common, '--path', server.paths.read, '--threads', long ? '2' : '1'])
  const stalled = lib.loadgen([...common, '--path', server.paths.stall, '--stall', '--recv-buffer', '4096'])
  try {
    const r = await lib.connect(readers, READERS)
    const s = await lib.connect(stalled, STALLED)
    check(r.established === READERS && s.established === STALLED, `${READERS} readers and ${STALLED} stalled clients connected (${target})`)
    await lib.until(async () => (await server.clients()) === READERS + STALLED, 10000, 'every client registered')
    const baseline = lib.rss(server.pid)
    let peak = baseline
    readers.cmd(`arm live ${EVENTS} ${long ? 300 : 60}`)
    await readers.next((x) => x.armed === 'live')
    const started = Date.now()
    for (let i = 0; i < EVENTS; i++) {
      await server.publish(i)
      if (i % 4 === 3) {
        peak = Math.max(peak, lib.rss(server.pid))
        // ~2 MB/s per client short, 160 KB/s long (160 MB/s in all): what
        // loadgen reads for every reader at once on 2 shared cores; the
        // stalled ones fill up all the same.
        await lib.sleep(long ? 400 : 30)
      }
    }
    const sendMs = Date.now() - started
    const live = await readers.next((x) => x.phase === 'live')
    peak = Math.max(peak, lib.rss(server.pid))
    check(live.completed === READERS && !live.timed_out, `every reader received all ${EVENTS} events (${live.completed}/${READERS})`)
    const p99ms = live.latency_us.p99 / 1000
    check(p99ms < (long ? 5000 : 2000), `reader latency p99 ${p99ms.toFixed(1)} ms; sending took ${sendMs} ms`)
    await lib.until(async () => (await server.droppedSlow()) >= STALLED, 20000, 'the stalled clients to be dropped').catch(() => {})
    const dropped = await server.droppedSlow()
    check(dropped === STALLED, `every stalled client was closed as slow (${dropped}/${STALLED})`)
    check((await server.readersClosed()) === 0, 'no reader was closed')
    const grew = peak - baseline
    check(grew < STALLED * LIMIT + SLACK, `server memory grew ${(grew / 2 ** 20).toFixed(1)} MiB, under ${STALLED} x ${LIMIT / 1024} KiB + ${SLACK / 2 ** 20} MiB`)
  } finally {
    await Promise.all([readers.quit(), stalled.quit()])
  }
  await lib.until(async () => (await server.clients()) === 0, 10000, 'every client to be gone').then(
    () => check(true, 'no client left afterwards'),
    () => check(false, 'no client left afterwards'))
  await server.stop()
}

main().catch((e) => {
  console.log(`not ok - ${e.stack}`)
  process.exitCode = 1
})
