'use strict'
// The scale-out scenario of `npm run bench`: nodes on one Redis, N clients
// each, events published on the first, against one node alone (no Redis)
// in the same run. For each set-up: burst deliveries/s, paced latency,
// CPU per delivery summed over the nodes, and the commands Redis ran per
// published event (INFO, before and after).

const { sample } = require('./proc')
const { haveRedis, startRedis } = require('./redis-server')

/** The set-ups, in table order. */
const SETUPS = [
  { key: 'local', label: 'one node, no Redis (sse.broadcast)', server: 'ssehub-broadcast', nodes: 1 },
  { key: 'redis1', label: 'one node on Redis', server: 'ssehub-redis', nodes: 1 },
  { key: 'redis3', label: 'three nodes on Redis, published on one', server: 'ssehub-redis', nodes: 3 },
]

/** Redis's own counters: every command, and the scripts publishers sent. */
async function redisCounts(redis) {
  const info = await redis.command('INFO', 'all')
  const evalsha = /cmdstat_evalsha:calls=(\d+)/.exec(info)
  return { commands: Number(/total_commands_processed:(\d+)/.exec(info)[1]), scripts: evalsha ? Number(evalsha[1]) : 0 }
}

/**
 * One set-up, one phase: starts its nodes, connects `clients` to each,
 * sends the phase's events on the first node, and sums what every load
 * client received.
 */
async function runSetup(setup, clients, phase, redis, bench) {
  const nodes = []
  try {
    for (let i = 0; i < setup.nodes; i++) {
      const running = await bench.startServer({ name: setup.server })
      if (running.skip) return { skip: running.skip }
      nodes.push(running)
      running.loadgen = (await bench.connectClients(running, clients, bench.options)).loadgen
    }
    for (const node of nodes) {
      node.loadgen.send(`arm ${phase.name} ${phase.expectedPerConn} ${phase.timeoutS}`)
      await node.loadgen.next((m) => m.armed === phase.name, 10_000)
    }
    const pids = nodes.map((n) => n.pid)
    const cpu0 = pids.map(sample)
    const counts0 = await redisCounts(redis)
    nodes[0].child.send(phase.command)
    const reports = []
    for (const node of nodes) reports.push(await node.loadgen.next((m) => m.phase === phase.name, (phase.timeoutS + 30) * 1000))
    const cpu1 = pids.map(sample)
    const counts1 = await redisCounts(redis)
    const served = await nodes[0].child.next((m) => m.done === phase.name, 20_000).catch(() => null)
    const cpu = pids.map((pid, i) => (cpu0[i] && cpu1[i] ? cpu1[i].cpuSeconds - cpu0[i].cpuSeconds : 0))
    const delivered = reports.reduce((sum, r) => sum + r.events, 0)
    const spanMs = Math.max(...reports.map((r) => r.span_ms))
    const sent = served ? served.sent : phase.expectedPerConn
    const worst = (key) => Math.max(...reports.map((r) => (r.latency_us ? r.latency_us[key] : 0)))
    return {
      nodes: setup.nodes,
      clients: clients * setup.nodes,
      delivered,
      expected: clients * setup.nodes * phase.expectedPerConn,
      timedOut: reports.some((r) => r.timed_out),
      deliveriesPerSec: spanMs > 0 ? delivered / (spanMs / 1000) : null,
      latencyUs: { p50: worst('p50'), p99: worst('p99') },
      cpuUsPerDelivery: delivered > 0 ? (cpu.reduce((a, b) => a + b, 0) * 1e6) / delivered : null,
      // Less the INFO that read the second count.
      redisCommandsPerEvent: setup.server === 'ssehub-redis' && sent > 0 ? (counts1.commands - counts0.commands - 1) / sent : null,
      scriptsPerEvent: setup.server === 'ssehub-redis' && sent > 0 ? (counts1.scripts - counts0.scripts) / sent : null,
      elu: served ? served.elu : null,
    }
  } catch (err) {
    return { error: err.message }
  } finally {
    for (const node of nodes) {
      if (node.loadgen) await node.loadgen.stop(1000)
      await node.child.stop(1000)
    }
  }
}

/** Runs every set-up, burst then paced; `bench` carries the runner's pieces. */
async function runScaleOut(bench) {
  const { options, log } = bench
  if (!haveRedis()) return { skip: 'redis-server is not installed (apt-get install redis-server)' }
  const redis = await startRedis({ persist: false })
  process.env.SSEHUB_BENCH_REDIS = redis.url
  const clients = options.scaleClients
  const results = { clients, burst: {}, paced: {} }
  try {
    for (const [key, phase] of [['burst', bench.burstPhase(options)], ['paced', bench.pacedPhase(options)]]) {
      for (const setup of SETUPS) {
        log(`scale-out ${key}, ${setup.nodes} x ${clients} clients, ${setup.key} ...`)
        const result = await runSetup(setup, clients, phase, redis, bench)
        results[key][setup.key] = result
        log(`  ${result.skip || result.error || `${result.delivered}/${result.expected} delivered, ${Math.round(result.deliveriesPerSec)} deliveries/s, p50 ${result.latencyUs.p50 / 1000} ms, p99 ${result.latencyUs.p99 / 1000} ms`}`)
      }
    }
  } finally {
    delete process.env.SSEHUB_BENCH_REDIS
    await redis.stop()
  }
  return results
}

module.exports = { runScaleOut, SETUPS }
