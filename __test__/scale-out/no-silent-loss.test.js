'use strict'
// The Redis bus never loses an event silently (issue 19): against a real
// redis-server, every fault below either delivers what Redis holds or
// tells the clients concerned with `ssehub-gap`, and a publish that was
// rejected is never delivered. Each test failed on the bus before the fix.

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert')
const { startRedis, events } = require('../helpers/redis')
const { start, raw, openStream, split, dechunk, runToEnd } = require('../helpers/daemon')
const { eventually, SSE } = require('../helpers/addon')
const { datas, addonNode, addonStream, warm, afterWarm, firstError } = require('../helpers/scale')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
/** Resolves once `node`'s bus is subscribed to `n` channels. */
const subscribed = (node, n = 1) => eventually(() => node.sse.stats().bus.connected && node.sse.stats().bus.subscriptions >= n, 5000, 'the node to subscribe')

/** Cuts every subscriber connection (every node's), as a proxy or Redis's output-buffer limit would. */
const cutSubscribers = (redis) => redis.command('CLIENT', 'KILL', 'TYPE', 'pubsub')

/** A channels daemon on Redis: its web, control and metrics ports. */
async function channelsNode(redis, extra = [], env = {}) {
  const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--metrics', '0', '--heartbeat', '1', '--redis', redis.url, ...extra],
    { ready: /Metrics and status on http:\/\/127\.0\.0\.1:(\d+)/, env })
  d.metrics = Number((await d.ready)[1])
  d.port = Number(d.stdout.match(/Web server listening on port (\d+)/)[1])
  return d
}

function daemonStream(port, path) {
  const s = openStream(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
  s.events = () => events(dechunk(split(s.text).body).data)
  return s
}

async function daemonBus(d) {
  const reply = await raw(d.metrics, 'GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: (t) => t.endsWith('}') })
  return JSON.parse(split(reply).body).bus
}

/** Every event after the first gap, or all of them: the ids increase. */
function assertIncreasing(list, what) {
  const ids = list.filter((e) => e.id !== null).map((e) => BigInt(e.id))
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], `${what}: ids out of order`)
}

describe('trimmed history is detected (defect 1)', () => {
  let redis, node, publisher
  before(async () => {
    redis = await startRedis({ persist: false })
    node = await addonNode({ redis: redis.url, history: 10 })
    publisher = new SSE(null, { redis: redis.url, history: 10 })
  })
  after(async () => {
    await publisher.close()
    await node.stop()
    await redis.stop()
  })

  test('history 10, 200 publishes, a resume from the first id: ssehub-gap first, then what the stream holds', async () => {
    const ids = []
    for (let i = 0; i < 200; i++) ids.push(await node.sse.publish('trim', `t${i}`))
    const back = addonStream(node, 'trim', { 'Last-Event-ID': ids[0] })
    await back.bodyIncludes('data: t199')
    await sleep(50)
    const got = back.events()
    assert.equal(got[0].event, 'ssehub-gap', `no gap: ${got.length} events replayed from ${ids[0]}`)
    assert.equal(got[0].data, ids[0])
    const replayed = datas(got.slice(1))
    assert.ok(replayed.length < 199, `${replayed.length} replayed`)
    // What is replayed is the stream's tail, complete and in order.
    const from = 200 - replayed.length
    assert.deepEqual(replayed, ids.slice(from).map((_, i) => `t${from + i}`))
    back.destroy()
  })

  test('a resume the stream still covers gets no gap', async () => {
    const ids = []
    for (let i = 0; i < 5; i++) ids.push(await node.sse.publish('kept', `k${i}`))
    const back = addonStream(node, 'kept', { 'Last-Event-ID': ids[1] })
    await back.bodyIncludes('data: k4')
    await sleep(50)
    assert.deepEqual(datas(back.events()), ['k2', 'k3', 'k4'])
    back.destroy()
  })

  test('a subscriber cut during a burst, history 10: the clients get ssehub-gap, then the tail, in order', async () => {
    const c = addonStream(node, 'burst')
    await warm(c, (d) => publisher.publish('burst', d))
    await publisher.publish('burst', 'first')
    await c.bodyIncludes('data: first')
    const gapsBefore = node.sse.stats().bus.gaps
    await cutSubscribers(redis)
    // 300 events while the node is away (it comes back after 50-100 ms).
    const sent = [...Array(300)].map((_, i) => `b${i}`)
    await Promise.all(sent.map((d) => publisher.publish('burst', d)))
    await c.bodyIncludes('data: b299', 10000)
    await sleep(50)
    const got = afterWarm(c.events())
    const gap = got.findIndex((e) => e.event === 'ssehub-gap')
    const delivered = datas(got.filter((e) => e.event === 'message'))
    if (delivered.length < 301) assert.ok(gap > 0, `${301 - delivered.length} events missed, no ssehub-gap`)
    assert.equal(got[0].data, 'first')
    // After the gap: the stream's tail, complete, then live events.
    const tail = datas(got.slice(gap + 1))
    assert.deepEqual(tail, sent.slice(300 - tail.length))
    assertIncreasing(got, 'burst')
    assert.ok(node.sse.stats().bus.gaps > gapsBefore)
    c.destroy()
  })
})

describe('no history (the default): a subscriber reconnect that may have lost events says so (defect 3)', () => {
  let redis, node, publisher
  before(async () => {
    redis = await startRedis({ persist: false })
    node = await addonNode({ redis: redis.url })
    publisher = new SSE(null, { redis: redis.url })
  })
  after(async () => {
    await publisher.close()
    await node.stop()
    await redis.stop()
  })

  test('events published while the subscriber was away: ssehub-gap to the channel\'s clients only', async () => {
    const news = addonStream(node, 'news')
    const quiet = addonStream(node, 'quiet')
    await subscribed(node, 2)
    await publisher.publish('news', 'before')
    await news.bodyIncludes('data: before')
    await cutSubscribers(redis)
    await Promise.all([...Array(20)].map((_, i) => publisher.publish('news', `away${i}`)))
    await eventually(() => node.sse.stats().bus.connected && node.sse.stats().bus.reconnects >= 1, 5000, 'the node to come back')
    await news.bodyIncludes('event: ssehub-gap', 3000)
    await publisher.publish('news', 'after')
    await publisher.publish('quiet', 'q')
    await news.bodyIncludes('data: after')
    await quiet.bodyIncludes('data: q')
    const got = news.events()
    assert.equal(got[0].data, 'before')
    assert.ok(got.some((e) => e.event === 'ssehub-gap'), 'no ssehub-gap')
    assert.equal(got.at(-1).data, 'after')
    // Nothing was published to 'quiet' while away: no gap there.
    assert.deepEqual(quiet.events().map((e) => e.event), ['message'])
    news.destroy()
    quiet.destroy()
  })
})

describe('a rejected publish is never delivered (defect 2)', () => {
  let redis, node, other
  before(async () => {
    redis = await startRedis({ persist: false })
    node = await addonNode({ redis: redis.url, history: 100 })
    other = await addonNode({ redis: redis.url, history: 100 })
  })
  after(async () => {
    redis.child.kill('SIGCONT')
    await node.stop()
    await other.stop()
    await redis.stop()
  })

  test('Redis stopped 6.5 s under 100 publishes/s: rejected ones never reach a client, accepted ones do', async () => {
    const here = addonStream(node, 'stall')
    const there = addonStream(other, 'stall')
    await subscribed(node)
    await subscribed(other)
    const outcomes = new Map()
    const publish = (data) => {
      outcomes.set(data, 'pending')
      return node.sse.publish('stall', data).then(() => outcomes.set(data, 'accepted'), () => outcomes.set(data, 'rejected'))
    }
    await publish('s-before')
    redis.child.kill('SIGSTOP')
    const during = []
    const until = Date.now() + 6500
    for (let i = 0; Date.now() < until; i++) {
      during.push(publish(`s${i}`))
      await sleep(10)
    }
    redis.child.kill('SIGCONT')
    await Promise.all(during)
    for (let i = 0; i < 10; i++) await publish(`s-after${i}`)
    await here.bodyIncludes('data: s-after9', 10000)
    await there.bodyIncludes('data: s-after9', 10000)
    await sleep(300)
    const rejected = [...outcomes].filter(([, o]) => o === 'rejected').map(([d]) => d)
    const accepted = [...outcomes].filter(([, o]) => o === 'accepted').map(([d]) => d)
    assert.ok(rejected.length > 100, `only ${rejected.length} publishes rejected`)
    for (const [name, c] of [['publishing node', here], ['other node', there]]) {
      const got = c.events()
      const delivered = new Set(datas(got.filter((e) => e.event === 'message')))
      const applied = rejected.filter((d) => delivered.has(d))
      assert.deepEqual(applied.length, 0, `${name}: ${applied.length} rejected publishes delivered (${applied.slice(0, 5)}...)`)
      // History 100 holds all that was accepted: nothing to signal, nothing missing.
      assert.deepEqual(got.filter((e) => e.event === 'ssehub-gap'), [], `${name}: a gap`)
      assert.deepEqual(accepted.filter((d) => !delivered.has(d)), [], `${name}: accepted publishes missing`)
      assertIncreasing(got, name)
    }
    here.destroy()
    there.destroy()
  })
})

describe('data loss noticed late, ids after it (defects 4 and 5)', () => {
  let redis, node, d, publisher
  before(async () => {
    redis = await startRedis({ persist: false })
    // Redis has numbered events before the nodes start: they know its epoch.
    publisher = new SSE(null, { redis: redis.url, history: 100 })
    await publisher.publish('elsewhere', 'e0')
    node = await addonNode({ redis: redis.url, history: 100 })
    d = await channelsNode(redis, ['--history', '100'])
  })
  after(async () => {
    await publisher.close()
    await node.stop()
    await d.stop()
    await redis.stop()
  })

  test('FLUSHALL, later a subscriber cut, then 30 publishes: delivered, no gap', async () => {
    const onNode = addonStream(node, 'flush')
    const onDaemon = daemonStream(d.port, '/flush')
    await subscribed(node)
    for (let i = 0; (await daemonBus(d)).subscriptions < 1; i++) {
      if (i > 200) assert.fail('the daemon did not subscribe')
      await sleep(20)
    }
    await publisher.publish('flush', 'e1')
    await onNode.bodyIncludes('data: e1')
    await onDaemon.waitFor(/data: e1/)
    await redis.command('FLUSHALL')
    // An event of the new epoch, delivered live before the nodes look.
    await publisher.publish('flush', 'e2')
    await onNode.bodyIncludes('data: e2')
    await onDaemon.waitFor(/data: e2/)
    // Later: the nodes have had time to see the new epoch.
    await sleep(2500)
    await cutSubscribers(redis)
    const sent = [...Array(30)].map((_, i) => `f${i}`)
    await Promise.all(sent.map((x) => publisher.publish('flush', x)))
    await onNode.bodyIncludes('data: f29', 5000)
    await onDaemon.waitFor(/data: f29/, 5000)
    await sleep(100)
    for (const [name, got] of [['addon', onNode.events()], ['daemon', onDaemon.events()]]) {
      assert.deepEqual(datas(got), ['e1', 'e2', ...sent], `${name}: ${got.map((e) => e.event)}`)
      assertIncreasing(got, name)
    }
    onNode.destroy()
    onDaemon.close()
  })

  test('FLUSHALL within the same second: new ids exceed every id handed out before', async () => {
    const seen = []
    for (let i = 0; i < 5; i++) {
      seen.push(BigInt(await publisher.publish('ids', `i${i}`)))
      await redis.command('FLUSHALL')
      seen.push(BigInt(await publisher.publish('ids', `j${i}`)))
    }
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `id ${seen[i]} after ${seen[i - 1]}: ${seen}`)
  })
})

describe('smaller defects (6)', () => {
  let redis
  before(async () => {
    redis = await startRedis({ persist: false })
  })
  after(async () => {
    await redis.stop()
  })

  const commandCalls = async (name) => {
    // Redis 7 counts subcommands apart: cmdstat_script|load.
    const m = (await redis.command('INFO', 'commandstats')).match(new RegExp(`cmdstat_${name}:calls=(\\d+)`))
    return m ? Number(m[1]) : 0
  }

  test('a process whose only work is publishes waiting for Redis stays up for their outcome', async () => {
    // Receipts come back in batches through a callback that does not hold
    // the event loop by itself; the waiting Promises must.
    const script = `
      const SSE = require(${JSON.stringify(require.resolve('../..'))})
      const sse = new SSE(null, { redis: ${JSON.stringify(redis.url)}, history: 10 })
      Promise.all([sse.publish('alive', 'a'), sse.publish('alive', 'b')])
        .then((ids) => { console.log('ids', ids.join(',')); return sse.close() })`
    const { execFile } = require('node:child_process')
    // Redis held still for a while: the answers come long after the
    // script's last line ran.
    redis.child.kill('SIGSTOP')
    setTimeout(() => redis.child.kill('SIGCONT'), 700)
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, ['-e', script], { timeout: 10000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)))
    })
    assert.match(out, /^ids \d+,\d+$/m)
  })

  test('one SCRIPT LOAD per connection, not one per publish', async () => {
    const node = await addonNode({ redis: redis.url, history: 10 })
    try {
      await node.sse.publish('s', 'warm')
      const loads = await commandCalls('script\\|load')
      for (let i = 0; i < 20; i++) await node.sse.publish('s', `p${i}`)
      assert.equal(await commandCalls('script\\|load') - loads, 0, 'SCRIPT LOAD sent with publishes')
    } finally {
      await node.stop()
    }
  })

  test('a channel stream with no publish for the TTL leaves nothing in Redis', async () => {
    const node = await addonNode({ redis: { url: redis.url, ttl: 1 }, history: 10 })
    try {
      await node.sse.publish('short-lived', 'x')
      await node.sse.broadcast('y')
      assert.match(await redis.command('EXISTS', '{ssehub:}ch:short-lived'), /^:1/)
      await sleep(2200)
      assert.match(await redis.command('EXISTS', '{ssehub:}ch:short-lived'), /^:0/)
      assert.match(await redis.command('EXISTS', '{ssehub:}all'), /^:0/)
    } finally {
      await node.stop()
    }
  })

  test('out of memory: the error class in the 503, the log, stats().bus and /metrics', async () => {
    const node = await addonNode({ redis: redis.url, history: 10 })
    const d = await channelsNode(redis, ['--history', '10'])
    try {
      await eventually(() => node.sse.stats().bus.connected, 3000, 'the node to connect')
      await redis.command('CONFIG', 'SET', 'maxmemory', '1')
      await assert.rejects(node.sse.publish('m', 'x'), (err) => err.code === 'ERR_SSEHUB_BUS' && /\boom\b/i.test(err.message))
      assert.ok(node.sse.stats().bus.errors.oom >= 1, JSON.stringify(node.sse.stats().bus))
      const q = await raw(d.port, 'GET /m?message=x HTTP/1.1\r\nHost: x\r\n\r\n', { until: (t) => /\r\n\r\n[\s\S]+\n/.test(t) })
      assert.match(q, /^HTTP\/1\.1 503 /)
      assert.match(split(q).body, /out of memory \(oom\)/)
      const metrics = await raw(d.metrics, 'GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: (t) => t.includes('process_') })
      assert.match(metrics, /ssehub_bus_errors_total\{mode="channels",class="oom"\} [1-9]/)
      await d.waitFor(/not published: .*\(oom\)/, 3000)
    } finally {
      await redis.command('CONFIG', 'SET', 'maxmemory', '0')
      await node.stop()
      await d.stop()
    }
  })

  describe('a wrong password fails at start', () => {
    let locked
    before(async () => {
      locked = await startRedis({ persist: false })
      await locked.command('CONFIG', 'SET', 'requirepass', 'right-one')
    })
    after(() => locked.stop())

    test('addon: an \'error\' event at start (ERR_SSEHUB_BUS, auth), and publishes reject with it', async () => {
      const sse = new SSE(null, { redis: `redis://:wrong-one@127.0.0.1:${locked.port}/0` })
      try {
        const err = await firstError(sse)
        assert.equal(err.code, 'ERR_SSEHUB_BUS')
        assert.match(err.message, /\bauth\b/)
        assert.doesNotMatch(err.message, /wrong-one/)
        await assert.rejects(sse.broadcast('x'), (e) => /\bauth\b/.test(e.message))
      } finally {
        await sse.close()
      }
    })

    test('daemon: exits at start with a clear message, no password printed', async () => {
      const r = await runToEnd(['channels', '-n', '-p', '127.0.0.1:0', '--redis', `redis://:wrong-one@127.0.0.1:${locked.port}/0`], { timeout: 10000 })
      assert.notEqual(r.code, 0)
      assert.notEqual(r.code, null, 'still running after 10 s')
      assert.match(r.stderr, /Redis.*refused the credentials/i)
      assert.doesNotMatch(r.stdout + r.stderr, /wrong-one/)
    })
  })
})
