#!/usr/bin/env node
'use strict'
// `npm run bench`: runs every server under test side by side against the
// Rust load client, on 127.0.0.1 only, and writes bench/RESULTS.md,
// bench/results.json and bench/chart.svg. See bench/README.md.
//
//   node bench/run.js [--quick] [--clients=1000,10000] [--servers=a,b]
//                     [--burst=1000] [--paced-seconds=10] [--rate=10]
//                     [--size=100] [--idle-clients=19000] [--no-idle]
//                     [--burst-timeout=60] [--loadgen-threads=1] [--repeat=1]
//                     [--scale-clients=2000] [--no-scale] [--no-bus]
//                     [--growth=1000,5000,10000,19000] [--no-growth] [--out=DIR]
//   node bench/run.js --render=bench/results.json   (rewrite the report only)

const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { JsonChild, sample, adopt, killOwned } = require('./lib/proc')
const { writeReport } = require('./lib/report')
const { runScaleOut } = require('./lib/scale')
const { runBus } = require('./lib/bus')

const BENCH = __dirname
const LOADGEN_DIR = path.join(BENCH, 'loadgen')
const LOADGEN = path.join(LOADGEN_DIR, 'target', 'release', 'loadgen')

/** The servers under test, in table order. `js`: has a JS event loop to measure. */
const SERVERS = [
  { name: 'ssehub-broadcast', label: 'ssehub addon, sse.broadcast()', js: true },
  { name: 'ssehub-dropin', label: 'ssehub addon, client.send loop (drop-in)', js: true },
  { name: 'sse-008', label: 'sse 0.0.8, client.send loop', js: true },
  { name: 'better-sse', label: 'better-sse 0.16.1, channel.broadcast', js: true },
  { name: 'plain-node', label: 'plain Node http, res.write loop', js: true },
  { name: 'channels', label: 'ssehub daemon (channels, control port)', js: false },
  { name: 'ceiling', label: 'ceiling: minimal Rust fan-out (same bytes)', js: false },
]

const DEFAULTS = {
  clients: [1000, 10000],
  burst: 1000,
  pacedSeconds: 10,
  rate: 10,
  size: 100,
  idleClients: 19000,
  idle: true,
  burstTimeout: 60,
  loadgenThreads: 1,
  concurrency: 256,
  servers: SERVERS.map((s) => s.name),
  out: BENCH,
  suiteTimeout: 40 * 60,
  repeat: 1,
  scaleClients: 2000,
  scale: true,
  bus: true,
  quickBus: false,
  growth: [1000, 5000, 10000, 19000],
  baseline: null,
}

/**
 * `--baseline=DIR`: another checkout of ssehub, built (its addon and daemon
 * beside its index.js): its addon and daemon servers run in the same
 * sequence as this tree's, so a change is measured side by side.
 */
const BASELINE_OF = ['ssehub-broadcast', 'ssehub-dropin', 'channels']

function baselineServers(dir) {
  // The platform naming moved from scripts/ to lib/; a baseline may predate that.
  const platform = ['lib', 'scripts'].map((d) => path.join(dir, d, 'platform.js')).find((f) => fs.existsSync(f))
  const { localDaemonPath } = require(platform)
  return SERVERS.filter((s) => BASELINE_OF.includes(s.name)).map((s) => ({
    ...s,
    name: `${s.name}@baseline`,
    script: s.name,
    label: `${s.label}, baseline`,
    env: { SSEHUB_BENCH_ROOT: dir, SSEHUB_BENCH_BIN: localDaemonPath() },
  }))
}

/** The servers of the "cost as work grows" table. */
const GROWTH_SERVERS = ['ssehub-broadcast', 'ssehub-dropin', 'channels', 'ceiling']

const QUICK = { clients: [1000], burst: 200, pacedSeconds: 5, idleClients: 2000, burstTimeout: 20, scaleClients: 500, growth: [1000, 2000], quickBus: true }

function parseArgs(argv) {
  const options = { ...DEFAULTS }
  const given = {}
  for (const arg of argv) {
    const [, key, value] = /^--([a-z-]+)(?:=(.*))?$/.exec(arg) || []
    if (!key) throw new Error(`bad argument ${arg}`)
    given[key.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = value === undefined ? true : value
  }
  if (given.quick) Object.assign(options, QUICK)
  if (given.noIdle) options.idle = false
  if (given.noScale) options.scale = false
  if (given.noBus) options.bus = false
  if (given.noGrowth) options.growth = []
  for (const [key, value] of Object.entries(given)) {
    if (key === 'quick' || key === 'noIdle' || key === 'noScale' || key === 'noBus' || key === 'noGrowth') continue
    if (!(key in DEFAULTS)) throw new Error(`unknown option --${key}`)
    options[key] = convert(key, value)
  }
  if (options.baseline) {
    const added = baselineServers(options.baseline)
    SERVERS.push(...added)
    for (const server of added) if (options.servers.includes(server.script)) options.servers.push(server.name)
    GROWTH_SERVERS.push(...added.map((s) => s.name))
  }
  const unknown = options.servers.filter((name) => !SERVERS.some((s) => s.name === name))
  if (unknown.length) throw new Error(`unknown server(s): ${unknown.join(', ')}`)
  return { options, command: argv.join(' ') }
}

function convert(key, value) {
  if (key === 'servers') return String(value).split(',')
  if (key === 'out' || key === 'baseline') return path.resolve(String(value))
  if (key === 'clients' || key === 'growth') {
    const list = String(value).split(',').map(Number)
    if (value === true || list.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`--${key} needs client counts, e.g. --${key}=1000,10000`)
    return list
  }
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${key} needs a positive number`)
  return n
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const log = (...args) => console.log('[bench]', ...args)

/** Builds the load client (a no-op when it is up to date). */
function ensureLoadgen() {
  try {
    execFileSync('cargo', ['build', '--release', '--quiet', '--manifest-path', path.join(LOADGEN_DIR, 'Cargo.toml')], {
      stdio: 'inherit',
    })
  } catch (err) {
    if (!fs.existsSync(LOADGEN)) throw new Error(`cannot build the load client (${err.message}); is cargo installed?`)
    log('cargo failed; using the existing load client build')
  }
}

/** Builds the ceiling server before any start-up is timed (a cold build takes ~11 s). */
function buildCeiling() {
  try {
    require('./servers/ceiling').ensureCeiling()
  } catch (err) {
    // Its wrapper then answers `skip` with the same reason, and the suite goes on without it.
    log(`ceiling: ${err.message}`)
  }
}

/** Starts one server; resolves to it, or to `{ skip }` if it cannot run here. */
async function startServer(server) {
  const script = path.join(BENCH, 'servers', `${server.script || server.name}.js`)
  const child = new JsonChild(process.execPath, [script], { env: { ...process.env, ...server.env } })
  let hello
  try {
    hello = await child.next((m) => m.ready || m.skip, 30_000)
  } catch (err) {
    await child.stop()
    return { skip: `did not start: ${err.message}` }
  }
  if (hello.skip) {
    await child.stop()
    return { skip: hello.skip }
  }
  adopt(hello.pid)
  return { child, port: hello.port, path: hello.path, pid: hello.pid }
}

function startLoadgen(port, urlPath, clients, options) {
  const args = [
    `--port=${port}`,
    `--path=${urlPath}`,
    `--connections=${clients}`,
    `--concurrency=${options.concurrency}`,
    `--threads=${options.loadgenThreads}`,
    '--establish-timeout=15',
    '--connect-timeout=120',
    `--max-runtime=${options.suiteTimeout}`,
    '--control',
  ]
  return new JsonChild(LOADGEN, args)
}

/** Clients connected first, so that one-time costs (code loaded on the
 * first request, JIT, runtime threads) stay out of the per-connection RSS. */
const warmupClients = (clients) => Math.min(100, Math.ceil(clients / 10))

/**
 * Connects `clients` clients in two batches (warm-up, then the rest) and
 * measures what the second batch costs: accepts per second and the RSS
 * per idle connection. Returns the load client (still connected) and the
 * connect figures.
 */
async function connectClients(running, clients, options) {
  const warmup = warmupClients(clients)
  const loadgen = startLoadgen(running.port, running.path, warmup, options)
  const first = await loadgen.next((m) => m.phase === 'connect', 60_000)
  await sleep(500)
  const before = sample(running.pid)
  loadgen.send(`connect ${clients - warmup}`)
  const report = await loadgen.next((m) => m.phase === 'connect', 180_000)
  await sleep(1000) // let allocations settle before reading RSS
  const idle = sample(running.pid)
  const connect = {
    requested: clients,
    established: first.established + report.established,
    failed: first.failed + report.failed,
    errors: report.errors,
    nofileLimit: report.nofile_limit,
    connectMs: report.connect_ms,
    acceptsPerSec: report.accepts_per_s,
    clientCpuMs: report.client_cpu_ms,
    rssBaseKiB: before && before.rssKiB,
    rssIdleKiB: idle && idle.rssKiB,
    rssPerConnKiB: before && idle && report.established > 0 ? (idle.rssKiB - before.rssKiB) / report.established : null,
    threads: idle && idle.threads,
  }
  return { loadgen, connect }
}

/**
 * One measured phase: arm the load client, tell the server to send, wait
 * for the client's report (bounded), and take the server's CPU time over it.
 */
async function measurePhase(running, loadgen, phase) {
  loadgen.send(`arm ${phase.name} ${phase.expectedPerConn} ${phase.timeoutS}`)
  await loadgen.next((m) => m.armed === phase.name, 10_000)
  const cpu0 = sample(running.pid)
  running.child.send(phase.command)
  const report = await loadgen.next((m) => m.phase === phase.name, (phase.timeoutS + 30) * 1000)
  const cpu1 = sample(running.pid)
  // A server still sending after the deadline will not answer in time.
  const served = await running.child
    .next((m) => m.done === phase.name, report.timed_out ? 2000 : 20_000)
    .catch(() => null)
  const cpuSeconds = cpu0 && cpu1 ? cpu1.cpuSeconds - cpu0.cpuSeconds : null
  return { report, served, cpuSeconds }
}

function burstPhase(options) {
  return {
    name: 'burst',
    expectedPerConn: options.burst,
    timeoutS: options.burstTimeout,
    command: { cmd: 'burst', count: options.burst, size: options.size },
  }
}

function pacedPhase(options) {
  return {
    name: 'paced',
    expectedPerConn: Math.round(options.rate * options.pacedSeconds),
    timeoutS: options.pacedSeconds + 10,
    command: { cmd: 'paced', rate: options.rate, seconds: options.pacedSeconds, size: options.size },
  }
}

/** The figures of one phase, as the report tables use them. */
function phaseFigures(clients, phase, measured) {
  const { report, served, cpuSeconds } = measured
  const expected = clients * phase.expectedPerConn
  return {
    timedOut: report.timed_out,
    delivered: report.events,
    expected,
    incomplete: report.incomplete,
    deliveriesPerSec: report.deliveries_per_s,
    spanMs: report.span_ms,
    clientCpuMs: report.client_cpu_ms,
    latencyUs: report.latency_us,
    serverCpuSeconds: cpuSeconds,
    cpuUsPerDelivery: cpuSeconds !== null && report.events > 0 ? (cpuSeconds * 1e6) / report.events : null,
    elu: served ? served.elu : null,
    loopDelayP99Ms: served ? served.loopDelayP99Ms : null,
    sendMs: served ? served.sendMs : null,
    worstSendLateMs: served ? served.worstSendLateMs : null,
    serverFinished: Boolean(served),
  }
}

/** One server, one client count, one scenario, in fresh processes. */
async function runCase(server, clients, phase, options, skipped) {
  if (skipped.has(server.name)) return { skip: skipped.get(server.name) }
  const running = await startServer(server)
  if (running.skip) {
    skipped.set(server.name, running.skip)
    log(`${server.name}: skipped: ${running.skip}`)
    return { skip: running.skip }
  }
  let loadgen = null
  try {
    const connected = await connectClients(running, clients, options)
    loadgen = connected.loadgen
    const result = { connect: connected.connect }
    if (connected.connect.established === 0) return { ...result, error: 'no connection established' }
    const measured = await measurePhase(running, loadgen, phase)
    return { ...result, ...phaseFigures(connected.connect.established, phase, measured) }
  } catch (err) {
    return { error: err.message }
  } finally {
    if (loadgen) await loadgen.stop(1000)
    await running.child.stop(1000)
    if (running.pid !== running.child.pid) await killPid(running.pid)
  }
}

async function killPid(pid) {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    return
  }
  await sleep(200)
}

function describeCase(result) {
  if (result.skip) return `skipped (${result.skip})`
  if (result.error) return `error: ${result.error}`
  const rate = `${Math.round(result.deliveriesPerSec).toLocaleString('en-US')} deliveries/s`
  const lat = result.latencyUs ? `p50 ${result.latencyUs.p50 / 1000} ms p99 ${result.latencyUs.p99 / 1000} ms` : ''
  return `${result.delivered}/${result.expected} delivered, ${rate}, ${lat}${result.timedOut ? ' (TIMED OUT)' : ''}`
}

/** The daemon alone: as many idle connections as asked, and their RSS. */
async function runIdle(options, skipped) {
  const server = SERVERS.find((s) => s.name === 'channels')
  if (skipped.has(server.name)) return { skip: skipped.get(server.name) }
  const running = await startServer(server)
  if (running.skip) return { skip: running.skip }
  let loadgen = null
  try {
    const connected = await connectClients(running, options.idleClients, { ...options, concurrency: 512 })
    loadgen = connected.loadgen
    return { connect: connected.connect }
  } catch (err) {
    return { error: err.message }
  } finally {
    if (loadgen) await loadgen.stop(1000)
    await running.child.stop(1000)
    await killPid(running.pid)
  }
}

function machine() {
  const cpus = os.cpus()
  return {
    cores: cpus.length,
    cpuModel: cpus[0] ? cpus[0].model.trim() : 'unknown',
    memoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadAvgStart: os.loadavg(),
  }
}

/** The headline figure of a scenario, to rank repeated runs by. */
const headline = {
  burst: (r) => r.deliveriesPerSec,
  paced: (r) => (r.latencyUs ? r.latencyUs.p99 : null),
}

/** Of repeated runs, the median one by the headline figure, with the spread. */
function medianRun(runs, key) {
  const measured = runs.filter((r) => !r.skip && !r.error && headline[key](r) !== null)
  if (measured.length === 0) return runs[0]
  measured.sort((a, b) => headline[key](a) - headline[key](b))
  const median = measured[Math.floor((measured.length - 1) / 2)]
  if (runs.length === 1) return median
  return { ...median, repeats: measured.map(headline[key]), failedRepeats: runs.length - measured.length }
}

async function runScenario(key, phase, clients, servers, options, skipped) {
  const runs = new Map(servers.map((server) => [server.name, []]))
  for (let round = 1; round <= options.repeat; round++) {
    for (const server of servers) {
      const of = options.repeat > 1 ? ` (run ${round}/${options.repeat})` : ''
      log(`${key}, ${clients} clients, ${server.name}${of} ...`)
      const load1 = os.loadavg()[0]
      const result = { ...(await runCase(server, clients, phase, options, skipped)), load1 }
      runs.get(server.name).push(result)
      log(`  ${describeCase(result)}`)
    }
  }
  return Object.fromEntries([...runs].map(([name, list]) => [name, medianRun(list, key)]))
}

async function runSuite(options) {
  const skipped = new Map()
  const servers = SERVERS.filter((s) => options.servers.includes(s.name))
  const results = { burst: {}, paced: {}, idle: null }
  for (const clients of options.clients) {
    results.burst[clients] = await runScenario('burst', burstPhase(options), clients, servers, options, skipped)
    results.paced[clients] = await runScenario('paced', pacedPhase(options), clients, servers, options, skipped)
  }
  if (options.idle && options.servers.includes('channels')) {
    log(`daemon, ${options.idleClients} idle connections ...`)
    results.idle = await runIdle(options, skipped)
    log(`  ${JSON.stringify(results.idle.connect || results.idle)}`)
  }
  results.growth = await runGrowth(options, servers, results, skipped)
  if (options.scale) {
    results.scale = await runScaleOut({ options, log, startServer, connectClients, burstPhase, pacedPhase })
  }
  if (options.bus) results.bus = await runBus({ options, log })
  return results
}

/**
 * Burst deliveries/s and CPU per delivery as the client count grows, for
 * the hub's three ways in and the ceiling. Counts the main scenarios ran
 * are reused; the others run burst only (19,000 is near the open-file cap
 * of one process, so the load client connects 512 at a time).
 */
async function runGrowth(options, servers, results, skipped) {
  const chosen = servers.filter((s) => GROWTH_SERVERS.includes(s.name))
  const growth = {}
  for (const clients of options.growth) {
    if (results.burst[clients]) {
      growth[clients] = Object.fromEntries(chosen.map((s) => [s.name, results.burst[clients][s.name]]))
      continue
    }
    const wide = { ...options, concurrency: Math.max(options.concurrency, 512) }
    growth[clients] = await runScenario('burst', burstPhase(options), clients, chosen, wide, skipped)
  }
  return growth
}

/** `--render=results.json`: rewrites the report files from saved results. */
function renderSaved(file, out) {
  const report = JSON.parse(fs.readFileSync(file, 'utf8'))
  const written = writeReport(report, out)
  log(`wrote ${written.map((f) => path.relative(process.cwd(), f)).join(', ')}`)
}

async function main() {
  const argv = process.argv.slice(2)
  const render = argv.find((a) => a.startsWith('--render='))
  if (render) {
    const file = path.resolve(render.slice('--render='.length))
    return renderSaved(file, path.dirname(file))
  }
  const { options, command } = parseArgs(argv)
  const watchdog = setTimeout(() => {
    console.error(`[bench] the suite ran past ${options.suiteTimeout} s: stopping`)
    killOwned()
    process.exit(2)
  }, options.suiteTimeout * 1000)
  ensureLoadgen()
  if (options.servers.includes('ceiling')) buildCeiling()
  const started = new Date()
  const info = machine()
  log(`${info.cores} cores, ${(info.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${info.node}; clients ${options.clients.join(', ')}`)
  const results = await runSuite(options)
  info.loadAvgEnd = os.loadavg()
  const run = { command: `npm run bench${command ? ' -- ' + command : ''}`, started: started.toISOString(), seconds: (Date.now() - started) / 1000 }
  const written = writeReport({ machine: info, options, run, servers: SERVERS, results }, options.out)
  log(`wrote ${written.map((f) => path.relative(process.cwd(), f)).join(', ')}`)
  clearTimeout(watchdog)
}

main().catch((err) => {
  console.error(`[bench] ${err.stack || err}`)
  killOwned()
  process.exit(1)
})
