'use strict'
// Churn: many connects and disconnects, then nothing may be left behind.
//
//   node tests/churn.js [--long] [--target addon|daemon]
//
// tests/churner.js (its own process) opens and drops connections in four
// ways (clean close or RST after the head, close after the request, close
// without one). Afterwards: no client is left, every stream the server
// opened was closed by it, and the server's open descriptors, RSS (and,
// for the addon, its JS heap after a GC) are back near their baselines.
// Short (npm test): 2,000 connections. --long: 100,000.
const http = require('node:http')
const path = require('node:path')
const { spawn } = require('node:child_process')
const lib = require('./lib')
const { check } = lib

if (typeof global.gc !== 'function') {
  // Re-run with a GC we can call, so that the heap check means something.
  const child = spawn(process.execPath, ['--expose-gc', __filename, ...process.argv.slice(2)], { stdio: 'inherit' })
  child.on('exit', (code) => { process.exitCode = code ?? 1 })
  return
}

const long = process.argv.includes('--long')
const target = process.argv.includes('daemon') ? 'daemon' : 'addon'
const TOTAL = long ? 100000 : 2000
const WARMUP = 1000
const CONCURRENCY = 64

async function addonServer() {
  const SSE = require('..')
  const server = http.createServer((req, res) => res.end())
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const sse = new SSE(server, { heartbeat: 1000 })
  const live = new Set()
  let closed = 0
  sse.on('connection', (client) => {
    live.add(client)
    client.send('hello')
    client.on('close', () => { live.delete(client); closed++ })
  })
  return {
    port: server.address().port,
    path: '/sse',
    pid: process.pid,
    clients: async () => sse.clients + live.size,
    opened: async () => sse.stats().connectedTotal,
    closed: async () => closed,
    heap: () => { global.gc(); return process.memoryUsage().heapUsed },
    stop: async () => { await sse.close(); server.close() },
  }
}

async function daemonServer() {
  const { start, raw, split } = require('../__test__/helpers/daemon')
  const [port, metrics] = [await lib.freePort(), await lib.freePort()]
  const d = start(['channels', '-n', '-l', '/dev/null', '-p', `127.0.0.1:${port}`, '--metrics', String(metrics),
    '--heartbeat', '1'], { env: { SSEHUB_THREADS: '2' } })
  const status = async () => JSON.parse(split(await raw(metrics, 'GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n',
    { until: (t) => t.trimEnd().endsWith('}') })).body)
  await lib.until(() => status().then(() => true, () => false), 10000, 'the daemon to listen')
  return {
    port,
    path: '/news',
    pid: d.child.pid,
    clients: async () => (await status()).connected_clients,
    opened: async () => (await status()).connections_total,
    heap: () => 0,
    stop: () => d.stop(),
  }
}

/** Runs the churner; async, since the addon's server is this process. */
function churn(server, total) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath,
      [path.join(__dirname, 'churner.js'), String(server.port), server.path, String(total), String(CONCURRENCY)])
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill(), long ? 900000 : 120000)
    child.on('exit', () => {
      clearTimeout(timer)
      try { resolve(JSON.parse(out.trim().split('\n').pop())) } catch { reject(new Error(`churner failed: ${out}`)) }
    })
  })
}

async function settle(server) {
  await lib.until(async () => (await server.clients()) === 0, 10000, 'every client to be gone')
  await lib.sleep(200)
}

async function main() {
  const server = target === 'addon' ? await addonServer() : await daemonServer()
  await churn(server, WARMUP) // let allocators and pools reach their working size
  await settle(server)
  const base = { fds: lib.fds(server.pid), rss: lib.rss(server.pid), heap: server.heap(), opened: await server.opened() }
  const started = Date.now()
  const r = await churn(server, TOTAL)
  const secs = (Date.now() - started) / 1000
  check(r.done === TOTAL, `${TOTAL} connects and disconnects in ${secs.toFixed(1)} s (${target})`)
  check(r.lingered === 0, `the server closed every stream the client left cleanly (${r.lingered} lingered)`)
  await settle(server).catch(() => {})
  check((await server.clients()) === 0, 'no client is left')
  const opened = (await server.opened()) - base.opened
  check(opened >= r.heads, `every stream that got a head was registered (${opened} >= ${r.heads})`)
  if (target === 'addon') {
    const [closed, all] = [await server.closed(), await server.opened()]
    check(closed === all, `every client got its 'close' event (${closed} of ${all})`)
  }
  const fds = lib.fds(server.pid)
  check(fds <= base.fds + 2, `open descriptors back to the baseline (${fds}, baseline ${base.fds})`)
  const rssGrowth = (lib.rss(server.pid) - base.rss) / 2 ** 20
  const rssLimit = long ? 48 : 24
  check(rssGrowth < rssLimit, `RSS grew ${rssGrowth.toFixed(1)} MiB (limit ${rssLimit} MiB)`)
  if (target === 'addon') {
    const heapGrowth = (server.heap() - base.heap) / 2 ** 20
    check(heapGrowth < 4, `JS heap after GC grew ${heapGrowth.toFixed(2)} MiB (no leaked clients)`)
  }
  await server.stop()
}

main().catch((e) => {
  console.log(`not ok - ${e.stack}`)
  process.exitCode = 1
})
