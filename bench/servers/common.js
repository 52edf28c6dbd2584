'use strict'
// The part every benchmark server shares: an http.Server on 127.0.0.1, a
// control channel on stdin/stdout (one JSON object a line), and the two
// send scenarios. A server script only supplies an adapter:
//   { attach(httpServer), broadcast(data), clients() }
// (a daemon driver supplies `start()` instead of attach, see channels.js).
//
// Commands (stdin):  {"cmd":"burst","count":N,"size":B}
//                    {"cmd":"paced","rate":R,"seconds":S,"size":B}
//                    {"cmd":"clients"}   {"cmd":"quit"}
// Replies (stdout):  {"ready":true,"port":P,"path":"/sse","pid":PID}
//                    {"skip":"why"}  |  {"done":"burst",...}  |  ...

const http = require('node:http')
const readline = require('node:readline')
const { performance, monitorEventLoopDelay } = require('node:perf_hooks')

/**
 * The wall clock (CLOCK_REALTIME, which the load client reads) minus the
 * monotonic clock, in ns. Date.now() has only ms resolution, and
 * performance.timeOrigin can be off by a fraction of a ms, which would
 * bias sub-ms latencies; but at the instant Date.now() ticks over, the
 * wall clock is exactly on that ms, so catching the tick gives the offset
 * to within the cost of one loop turn (well under a µs).
 */
function realtimeOffsetNs() {
  let best = null
  for (let attempt = 0; attempt < 3; attempt++) {
    const start = Date.now()
    let before = process.hrtime.bigint()
    let ms = Date.now()
    while (ms === start) {
      before = process.hrtime.bigint()
      ms = Date.now()
    }
    const offset = BigInt(ms) * 1_000_000n - before
    // Each estimate is at least the true offset (the tick came after
    // `before`), so the smallest is the closest.
    if (best === null || offset < best) best = offset
  }
  return best
}

const OFFSET_NS = realtimeOffsetNs()

/** Wall-clock microseconds since the epoch, with µs resolution. */
function nowUs() {
  return Number((process.hrtime.bigint() + OFFSET_NS) / 1000n)
}

/**
 * An event's data: `t=<µs> n=<seq> ` padded with `x` to `size` bytes.
 * The load client reads `t` as the send time.
 */
function payload(sentUs, seq, size) {
  const head = `t=${sentUs} n=${seq} `
  return head.length >= size ? head.trimEnd() : head + 'x'.repeat(size - head.length)
}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

const nextTurn = () => new Promise((resolve) => setImmediate(resolve))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Sampling interval of the event-loop delay monitor, in ms. */
const DELAY_RESOLUTION_MS = 5

/** A delay sample in ns, less the sampling interval it includes, in ms. */
const delayMs = (ns) => Math.max(0, ns / 1e6 - DELAY_RESOLUTION_MS)

/** Measures the event loop (utilisation and delay) over a scenario. */
function loopMonitor() {
  const delay = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS })
  delay.enable()
  const elu0 = performance.eventLoopUtilization()
  return () => {
    delay.disable()
    const elu = performance.eventLoopUtilization(elu0)
    return {
      elu: elu.utilization,
      loopDelayP99Ms: delay.count > 0 ? delayMs(delay.percentile(99)) : null,
      loopDelayMaxMs: delay.count > 0 ? delayMs(delay.max) : null,
    }
  }
}

/**
 * `count` broadcasts as fast as the server takes them, one per event-loop
 * turn so that its I/O (writes draining, sockets closing) runs between.
 */
async function burst(adapter, { count, size }) {
  const stop = loopMonitor()
  const started = performance.now()
  for (let seq = 0; seq < count; seq++) {
    await adapter.broadcast(payload(nowUs(), seq, size))
    await nextTurn()
  }
  return { done: 'burst', sent: count, sendMs: performance.now() - started, ...stop() }
}

/**
 * `rate` events a second for `seconds`. Each event carries its scheduled
 * time, not the time it went out: a server that falls behind shows it in
 * the latency, and events are never skipped to catch up.
 */
async function paced(adapter, { rate, seconds, size }) {
  const stop = loopMonitor()
  const total = Math.round(rate * seconds)
  const intervalUs = 1e6 / rate
  const startUs = nowUs() + 50_000
  let worstLateUs = 0
  for (let seq = 0; seq < total; seq++) {
    const dueUs = Math.round(startUs + seq * intervalUs)
    const waitMs = (dueUs - nowUs()) / 1000
    if (waitMs > 0) await sleep(waitMs)
    worstLateUs = Math.max(worstLateUs, nowUs() - dueUs)
    await adapter.broadcast(payload(dueUs, seq, size))
  }
  return { done: 'paced', sent: total, worstSendLateMs: worstLateUs / 1000, ...stop() }
}

async function handle(adapter, command) {
  switch (command.cmd) {
    case 'burst':
      return burst(adapter, command)
    case 'paced':
      return paced(adapter, command)
    case 'clients':
      return { clients: adapter.clients() }
    case 'quit':
      await (adapter.stop ? adapter.stop() : null)
      process.exit(0)
      break
    default:
      return { error: `unknown command ${command.cmd}` }
  }
}

/** Commands run one at a time, in order. */
function serveCommands(adapter) {
  const lines = readline.createInterface({ input: process.stdin })
  let queue = Promise.resolve()
  lines.on('line', (line) => {
    if (!line.trim()) return
    queue = queue.then(async () => {
      try {
        reply(await handle(adapter, JSON.parse(line)))
      } catch (err) {
        reply({ error: String((err && err.stack) || err) })
      }
    })
  })
  // The orchestrator is gone: never outlive it.
  lines.on('close', () => queue.then(() => (adapter.stop ? adapter.stop() : null)).finally(() => process.exit(0)))
}

/** A plain 404 for anything that is not the event stream. */
function notFound(req, res) {
  res.writeHead(404, { 'Content-Type': 'text/plain' })
  res.end('not found\n')
}

/**
 * Runs an http.Server-based benchmark server: `makeAdapter(server)` wires
 * the SSE library to it (or throws a SkipError when it is unavailable).
 */
function runHttpServer(makeAdapter, path = '/sse') {
  let adapter
  const server = http.createServer({ keepAliveTimeout: 0 }, notFound)
  try {
    adapter = makeAdapter(server)
  } catch (err) {
    if (err instanceof SkipError) return reply({ skip: err.message })
    throw err
  }
  server.maxConnections = Infinity
  server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
    reply({ ready: true, port: server.address().port, path, pid: process.pid })
    serveCommands(adapter)
  })
}

/** Thrown by an adapter whose server cannot run here (yet). */
class SkipError extends Error {}

module.exports = { runHttpServer, serveCommands, reply, payload, nowUs, SkipError, notFound }
