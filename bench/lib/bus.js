'use strict'
// The bus section of `npm run bench`: how fast nodes publish through one
// Redis, and what the hop through Redis adds between nodes.
//
// - Publish rate: 1 or 3 publishing nodes (addon processes, `history:
//   1000`) publish to one channel at once, pipelined (512 publishes in
//   flight per node, which the bus sends as batches) and awaited (each
//   publish waits for the one before), while a fourth node's client
//   receives them all. Events/s over the slowest node's time, and
//   redis-server's CPU (share of one core) meanwhile.
// - Publish-to-delivery latency at a paced rate: published on one node,
//   received by a client of another, against a node alone (no Redis)
//   whose own client receives. Each event carries its publish time.
// - The same pipelined rate on a three-master Redis Cluster, its CPU
//   summed over the masters.
//
// A "redis" here is where the nodes connect: `{ url, flush(), pids }`.

const { fork } = require('node:child_process')
const http = require('node:http')
const path = require('node:path')
const { sample } = require('./proc')
const { haveRedis, startRedis, startCluster } = require('./redis-server')

const NODE = path.join(__dirname, '..', 'servers', 'bus-node.js')
const HISTORY = 1000
const SIZE = 100

const FULL = { pipelined: 60000, awaited: 6000, rate: 3000, seconds: 5 }
const QUICK = { pipelined: 15000, awaited: 2000, rate: 3000, seconds: 2 }

/** A bus node (bench/servers/bus-node.js) and its IPC replies. */
async function startNode(redis) {
  const child = fork(NODE, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: process.env })
  const replies = []
  const waiting = []
  child.on('message', (m) => (waiting.length ? waiting.shift()(m) : replies.push(m)))
  const ask = (message) => {
    child.send(message)
    return new Promise((resolve, reject) => {
      const take = (m) => (m.error ? reject(new Error(`bus node: ${m.error}`)) : resolve(m))
      if (replies.length) take(replies.shift())
      else waiting.push(take)
    })
  }
  const { ready } = await ask({ start: { redis: redis ? redis.url : null, history: HISTORY } })
  return {
    port: ready,
    ask,
    stop: () => {
      if (child.connected) child.send({ stop: true })
      return new Promise((resolve) => {
        if (child.exitCode !== null) return resolve()
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
        child.once('exit', () => {
          clearTimeout(timer)
          resolve()
        })
      })
    },
  }
}

/** A client of `port`'s /sse: counts events and, for paced ones, latency. */
function listen(port) {
  const client = { events: 0, latenciesUs: [], request: null }
  return new Promise((resolve, reject) => {
    client.request = http.get({ host: '127.0.0.1', port, path: '/sse' }, (res) => {
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        const now = Math.round((performance.timeOrigin + performance.now()) * 1000)
        buffer += chunk
        let end
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const data = /^data: (.*)$/m.exec(block)
          if (!data) continue
          client.events++
          if (/^\d+$/.test(data[1])) client.latenciesUs.push(now - Number(data[1]))
        }
      })
      resolve(client)
    })
    client.request.on('error', reject)
  })
}

async function until(check, ms) {
  const deadline = Date.now() + ms
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  return check()
}

const one = (redis) => ({ url: redis.url, flush: () => redis.command('FLUSHALL'), pids: [redis.child.pid] })
const many = (cluster) => ({
  url: cluster.url,
  flush: () => Promise.all(cluster.nodes.map((n) => n.command('FLUSHALL'))),
  pids: cluster.nodes.map((n) => n.child.pid),
})

/** CPU seconds the servers used so far, summed; null if unknown. */
function cpuOf(redis) {
  const samples = redis.pids.map(sample)
  return samples.every(Boolean) ? samples.reduce((sum, s) => sum + s.cpuSeconds, 0) : null
}

/** Publish rate with `publishers` nodes, `window` in flight each. */
async function publishRate(redis, publishers, window, perNode) {
  await redis.flush()
  const nodes = []
  try {
    const receiver = await startNode(redis)
    nodes.push(receiver)
    const client = await listen(receiver.port)
    for (let i = 0; i < publishers; i++) nodes.push(await startNode(redis))
    // Warm: every publisher connected, the receiver subscribed.
    while (client.events === 0) {
      await nodes[1].ask({ publish: { count: 1, window: 1, size: SIZE } })
      await new Promise((r) => setTimeout(r, 20))
    }
    for (const n of nodes.slice(1)) await n.ask({ publish: { count: 10, window: 10, size: SIZE } })
    await until(() => client.events >= 1 + 10 * publishers, 5000)
    const before = client.events
    const cpu0 = cpuOf(redis)
    const started = process.hrtime.bigint()
    const reports = await Promise.all(nodes.slice(1).map((n) => n.ask({ publish: { count: perNode, window, size: SIZE } })))
    const wall = Number(process.hrtime.bigint() - started) / 1e9
    const cpu1 = cpuOf(redis)
    const published = reports.reduce((s, r) => s + r.published, 0)
    const failed = reports.reduce((s, r) => s + r.failed, 0)
    const seconds = Math.max(...reports.map((r) => r.seconds))
    await until(() => client.events - before >= published, 30000)
    client.request.destroy()
    return {
      publishers,
      window,
      published,
      failed,
      eventsPerSecond: published / seconds,
      redisCpu: cpu0 !== null && cpu1 !== null ? (cpu1 - cpu0) / wall : null,
      delivered: client.events - before,
    }
  } finally {
    for (const n of nodes) await n.stop()
  }
}

const percentile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null)

/** Paced publish-to-delivery latency: through Redis between two nodes, or on one node alone. */
async function latency(redis, rate, seconds) {
  if (redis) await redis.flush()
  const nodes = []
  try {
    const receiver = await startNode(redis)
    nodes.push(receiver)
    const publisher = redis ? await startNode(redis) : receiver
    if (publisher !== receiver) nodes.push(publisher)
    const client = await listen(receiver.port)
    while (client.events === 0) {
      await publisher.ask({ publish: { count: 1, window: 1, size: SIZE } })
      await new Promise((r) => setTimeout(r, 20))
    }
    const cpu0 = redis && cpuOf(redis)
    const started = Date.now()
    const { sent } = await publisher.ask({ paced: { rate, seconds } })
    await until(() => client.latenciesUs.length >= sent, 10000)
    const cpu1 = redis && cpuOf(redis)
    client.request.destroy()
    const sorted = client.latenciesUs.slice().sort((a, b) => a - b)
    return {
      rate,
      sent,
      received: sorted.length,
      p50Us: percentile(sorted, 50),
      p99Us: percentile(sorted, 99),
      maxUs: sorted.at(-1) ?? null,
      redisCpu: cpu0 && cpu1 ? (cpu1 - cpu0) / ((Date.now() - started) / 1000) : null,
    }
  } finally {
    for (const n of nodes) await n.stop()
  }
}

async function runBus({ options, log }) {
  if (!haveRedis()) return { skip: 'redis-server is not installed' }
  const sizes = options.quickBus ? QUICK : FULL
  const server = await startRedis({ persist: false })
  const redis = one(server)
  try {
    const rates = []
    for (const [mode, window, perNode] of [['pipelined', 512, sizes.pipelined], ['awaited', 1, sizes.awaited]]) {
      for (const publishers of [1, 3]) {
        log(`bus: ${publishers} node(s) publishing, ${mode} ...`)
        const r = await publishRate(redis, publishers, window, Math.round(perNode / publishers))
        rates.push({ mode, ...r })
        log(`  ${Math.round(r.eventsPerSecond)} events/s, Redis CPU ${r.redisCpu?.toFixed(2)}, ${r.failed} failed, ${r.delivered}/${r.published} delivered`)
      }
    }
    log(`bus: latency at ${sizes.rate} events/s, through Redis and alone ...`)
    const hop = await latency(redis, sizes.rate, sizes.seconds)
    const alone = await latency(null, sizes.rate, sizes.seconds)
    log(`  p50 ${hop.p50Us} µs vs ${alone.p50Us} µs alone; p99 ${hop.p99Us} vs ${alone.p99Us}`)
    const version = (await server.command('INFO', 'server')).match(/redis_version:(\S+)/)?.[1] ?? null
    await server.stop()
    log('bus: 3 nodes publishing, pipelined, on a three-master Redis Cluster ...')
    const cluster = await startCluster({ masters: 3 })
    let onCluster
    try {
      onCluster = await publishRate(many(cluster), 3, 512, Math.round(sizes.pipelined / 3))
    } finally {
      await cluster.stop()
    }
    log(`  ${Math.round(onCluster.eventsPerSecond)} events/s, masters' CPU ${onCluster.redisCpu?.toFixed(2)}`)
    return {
      redis: version,
      history: HISTORY,
      size: SIZE,
      rates,
      latency: { hop, alone },
      cluster: { masters: 3, ...onCluster },
    }
  } finally {
    await server.stop()
  }
}

module.exports = { runBus }
