'use strict'
// Beyond one machine: nodes (channels and jwt daemons, addon processes)
// share channels and history through a real Redis that these tests start
// on a free loopback port. Every client must get every event once, in
// order, whichever node it was published on; a client resumes on any node.

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert')
const { startRedis, events } = require('../helpers/redis')
const { start, raw, openStream, split, dechunk } = require('../helpers/daemon')
const { startSse, get, eventually } = require('../helpers/addon')

const SECRET = 'a-long-enough-test-secret'

/** A channels daemon on Redis; resolves with its ports. */
async function channelsNode(redis, extra = []) {
  const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--metrics', '0', '--heartbeat', '1', '--redis', redis.url, ...extra],
    { ready: /Metrics and status on http:\/\/127\.0\.0\.1:(\d+)/ })
  const m = await d.ready
  d.metrics = Number(m[1])
  d.port = Number(d.stdout.match(/Web server listening on port (\d+)/)[1])
  d.control = Number(d.stdout.match(/Controller listening on port (\d+)/)[1])
  return d
}

/** The daemon's /status, parsed. */
async function status(port) {
  const reply = await raw(port, 'GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: (t) => t.endsWith('}') })
  return JSON.parse(split(reply).body.replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, ''))
}

/** A daemon's stream: `.events()` parses what arrived so far. */
function daemonStream(port, path, headers = '') {
  const s = openStream(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`)
  s.events = () => events(dechunk(split(s.text).body).data)
  return s
}

/** An addon stream: `.events()` likewise. */
function addonStream(port, path, headers = {}) {
  const c = get(port, path, headers)
  c.events = () => events(c.body)
  return c
}

/** Publishes `data` on channel `news` through a channels daemon's control port. */
function controlPublish(port, lines) {
  return raw(port, lines.map((l) => `${l}\n`).join(''), { timeout: 300 })
}

const datas = (list) => list.map((e) => e.data)

function assertOrdered(list, what) {
  for (let i = 1; i < list.length; i++) {
    assert.ok(BigInt(list[i].id) > BigInt(list[i - 1].id), `${what}: ids out of order: ${list.map((e) => e.id)}`)
  }
}

/** How often a node checks its subscriber connection (crates/core/src/bus/redis.rs). */
const PING_EVERY_MS = 5000

describe('three nodes on one Redis: two channels daemons and an addon', () => {
  let redis, a, b, node, started, fifo
  before(async () => {
    started = Date.now()
    redis = await startRedis()
    fifo = require('node:path').join(require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'ssehub-fifo-')), 'sse.fifo')
    a = await channelsNode(redis, ['--history', '100', '-F', fifo])
    b = await channelsNode(redis, ['--history', '100'])
    node = await startSse({ redis: redis.url, history: 100 })
    node.sse.on('connection', (client, query) => {
      for (const c of String(query.ch || '').split(',').filter(Boolean)) client.join(c)
    })
  })
  after(async () => {
    await node.stop()
    await a.stop()
    await b.stop()
    await redis.stop()
    require('node:fs').rmSync(require('node:path').dirname(fifo), { recursive: true, force: true })
  })

  test('every client gets every event once, in publish order, whichever node published it', async () => {
    const clients = [
      daemonStream(a.port, '/news'),
      daemonStream(a.port, '/news'),
      daemonStream(b.port, '/news'),
      addonStream(node.port, '/sse?ch=news'),
      addonStream(node.port, '/sse?ch=news'),
    ]
    const outsider = addonStream(node.port, '/sse?ch=sports')
    const subscribed = async () => {
      const [sa, sb] = await Promise.all([status(a.metrics), status(b.metrics)])
      return sa.bus.subscriptions >= 1 && sb.bus.subscriptions >= 1 && node.sse.stats().bus.subscriptions >= 2
    }
    for (let i = 0; !(await subscribed()); i++) {
      if (i > 200) assert.fail('nodes did not subscribe')
      await new Promise((r) => setTimeout(r, 20))
    }
    const sent = []
    for (let round = 0; round < 5; round++) {
      sent.push(`a${round}`, `b${round}`, `n${round}`)
      await controlPublish(a.control, [`news = a${round}`])
      const q = await raw(b.port, `GET /news?message=b${round} HTTP/1.1\r\nHost: x\r\n\r\n`, { until: (t) => t.includes('OK') })
      assert.match(q, /^HTTP\/1\.1 200 /)
      const id = await node.sse.publish('news', `n${round}`)
      assert.match(id, /^\d+$/)
    }
    // The FIFO of daemon a publishes through Redis too.
    sent.push('f0')
    require('node:fs').appendFileSync(fifo, 'news = f0\n')
    for (const [i, c] of clients.entries()) {
      await eventually(() => c.events().length >= sent.length, 5000, `client ${i} to get ${sent.length} events`)
    }
    await new Promise((r) => setTimeout(r, 100))
    const first = clients[0].events()
    for (const [i, c] of clients.entries()) {
      const got = c.events()
      assert.deepEqual(datas(got).sort(), [...sent].sort(), `client ${i}: every event once`)
      assertOrdered(got, `client ${i}`)
      assert.deepEqual(got.map((e) => e.id), first.map((e) => e.id), `client ${i}: the same order as the others`)
    }
    assert.deepEqual(outsider.events(), [], 'a client of another channel got news')
    for (const c of [...clients, outsider]) c.destroy ? c.destroy() : c.close()
  })

  test('resume across nodes, in one channel and in two', async () => {
    const one = daemonStream(a.port, '/news')
    const two = daemonStream(a.port, '/news/sports')
    for (let i = 0; (await status(a.metrics)).bus.subscriptions < 2; i++) {
      if (i > 200) assert.fail('node a did not subscribe')
      await new Promise((r) => setTimeout(r, 20))
    }
    const seen = await node.sse.publish('news', 'before')
    await one.waitFor(/data: before/)
    await two.waitFor(/data: before/)
    one.close()
    two.close()
    // Missed while away, published on the addon node.
    await node.sse.publish('news', 'm1')
    await node.sse.publish('sports', 's1')
    await node.sse.publish('weather', 'not theirs')
    await node.sse.publish(['news', 'sports'], 'both')
    // Back on daemon b, with the id of the last event each saw.
    const last = one.events().at(-1).id
    assert.equal(last, seen)
    const oneBack = daemonStream(b.port, '/news', `Last-Event-ID: ${last}\r\n`)
    const twoBack = daemonStream(b.port, '/news/sports', `Last-Event-ID: ${two.events().at(-1).id}\r\n`)
    await oneBack.waitFor(/data: both/)
    await twoBack.waitFor(/data: both/)
    const live = await node.sse.publish('sports', 'live')
    await twoBack.waitFor(/data: live/)
    await new Promise((r) => setTimeout(r, 100))
    assert.deepEqual(datas(oneBack.events()), ['m1', 'both'])
    assert.deepEqual(datas(twoBack.events()), ['m1', 's1', 'both', 'live'])
    assertOrdered(twoBack.events(), 'two channels')
    assert.equal(twoBack.events().at(-1).id, live)
    // And on the addon node, with the `lastEventId` query form.
    const addonBack = addonStream(node.port, `/sse?ch=news,sports&lastEventId=${last}`)
    await addonBack.bodyIncludes('data: live')
    await new Promise((r) => setTimeout(r, 100))
    assert.deepEqual(datas(addonBack.events()), ['m1', 's1', 'both', 'live'])
    for (const c of [oneBack, twoBack]) c.close()
    addonBack.destroy()
  })

  test('an id older than the stream gets ssehub-gap first', async () => {
    const back = addonStream(node.port, '/sse?ch=news', { 'Last-Event-ID': '5' })
    await back.bodyIncludes('event: ssehub-gap')
    assert.equal(back.events()[0].data, '5')
    back.destroy()
  })

  test('Redis commands per published event stay the same with more clients and nodes', async () => {
    // Every command Redis ran (a script's own included) and the scripts
    // publishers sent, per event.
    const counts = async () => {
      const info = await redis.command('INFO', 'all')
      const evalsha = info.match(/cmdstat_evalsha:calls=(\d+)/)
      return { all: Number(info.match(/total_commands_processed:(\d+)/)[1]), scripts: evalsha ? Number(evalsha[1]) : 0 }
    }
    const perEvent = async (n) => {
      const before = await counts()
      for (let i = 0; i < n; i++) await node.sse.publish('news', `c${i}`)
      const now = await counts()
      // Less the INFO that read the counts.
      return { all: (now.all - before.all - 1) / n, scripts: (now.scripts - before.scripts) / n }
    }
    const connections = async () => (await redis.command('CLIENT', 'LIST')).split('\n').filter((l) => l.includes('addr=')).length
    const before = await connections()
    const few = await perEvent(20)
    const many = [...Array(30)].map(() => daemonStream(a.port, '/news'))
    many.push(...[...Array(30)].map(() => addonStream(node.port, '/sse?ch=news')))
    await new Promise((r) => setTimeout(r, 200))
    const more = await perEvent(20)
    // Two connections per node (commands, subscriber), whatever its clients.
    assert.equal(await connections(), before, '60 more clients opened Redis connections')
    for (const c of many) c.destroy ? c.destroy() : c.close()
    // One script per event awaited alone (its commands: TIME, MGET,
    // XREVRANGE, XADD, PUBLISH, EXPIRE, SET; the scripts are loaded once
    // per connection), whatever the number of clients and nodes.
    // Each node also reads Redis's epoch once a second (one read script),
    // which may fall in a window: under 1.5 scripts an event, not 2.
    for (const [what, got] of [['few', few.scripts], ['more', more.scripts]]) {
      assert.ok(got >= 1 && got < 1.5, `scripts per event with ${what} clients: ${got}`)
    }
    // The nodes' own traffic (a keep-alive PING every 5 s, a channel
    // subscribed or dropped as clients come and go) may fall in a window:
    // less than one command per window, not a cost per event.
    assert.ok(Math.abs(more.all - few.all) < 0.5, `commands per event: ${few.all} with few clients, ${more.all} with 60 more`)
    assert.ok(few.all <= 8, `commands per event: ${few.all}`)
  })

  test('a key prefix keeps applications apart; client.send stays on its node', async () => {
    const other = await startSse({ redis: { url: redis.url, prefix: 'otherapp:' } })
    const mine = addonStream(node.port, '/sse?ch=news')
    const theirs = addonStream(other.port, '/sse')
    const onDaemon = daemonStream(a.port, '/news')
    const { client } = await new Promise((resolve) => node.sse.once('connection', (c) => resolve({ client: c })))
    await theirs.bodyIncludes(':ok')
    await onDaemon.waitFor(/\r\n\r\n/)
    await eventually(() => other.sse.stats().bus.connected, 3000, 'the other app to connect')
    client.send('only-here')
    await other.sse.broadcast('other-app')
    await node.sse.publish('news', 'my-app')
    await theirs.bodyIncludes('data: other-app')
    await mine.bodyIncludes('data: my-app')
    await onDaemon.waitFor(/data: my-app/)
    await new Promise((r) => setTimeout(r, 100))
    assert.deepEqual(datas(theirs.events()), ['other-app'])
    assert.deepEqual(datas(mine.events()), ['only-here', 'my-app'])
    assert.deepEqual(datas(onDaemon.events()), ['my-app'], 'client.send reached another node')
    mine.destroy()
    theirs.destroy()
    onDaemon.close()
    await other.stop()
  })

  test('no node drops its connection while Redis is up (its keep-alive PING included)', async () => {
    const wait = started + PING_EVERY_MS + 1500 - Date.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    assert.equal(node.sse.stats().bus.reconnects, 0, JSON.stringify(node.sse.stats().bus))
    for (const d of [a, b]) {
      const s = await status(d.metrics)
      assert.equal(s.bus.reconnects_total, 0, JSON.stringify(s.bus))
      assert.equal(s.bus.connected, true)
    }
  })
})

describe('jwt mode: per-user events across two daemons', () => {
  let redis, a, b
  const post = (port, target, body) =>
    raw(port, `POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      { until: (t) => /\r\n\r\n/.test(t) && t.length > t.indexOf('\r\n\r\n') + 4 })
  const jwtNode = async () => {
    const d = start(['jwt', '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0', '-secret', SECRET, '-heartbeat', '0', '-redis', redis.url, '-history', '50'],
      { ready: /Listening for clients on 127\.0\.0\.1:(\d+), control on 127\.0\.0\.1:(\d+)/ })
    const m = await d.ready
    d.port = Number(m[1])
    d.ctl = Number(m[2])
    return d
  }
  before(async () => {
    redis = await startRedis()
    a = await jwtNode()
    b = await jwtNode()
  })
  after(async () => {
    await a.stop()
    await b.stop()
    await redis.stop()
  })

  test('an emit on one node reaches the user on every node once; * reaches the channel', async () => {
    const token = async (user) => split(await post(a.ctl, '/token/', `userId=${user}&channel=c&exp=600`)).body
    const [t1, t2] = [await token('u1'), await token('u2')]
    const u1a = openStream(a.port, `GET /events/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t1}\r\n\r\n`)
    const u1b = openStream(b.port, `GET /events/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t1}\r\n\r\n`)
    const u2b = openStream(b.port, `GET /events/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${t2}\r\n\r\n`)
    for (const s of [u1a, u1b, u2b]) await s.waitFor(/\r\n\r\n/)
    for (let i = 0; i < 100; i++) {
      const m = await raw(b.ctl, 'GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: (t) => t.includes('process_') })
      const subs = Number(m.match(/ssehub_bus_subscriptions\{mode="jwt"\} (\d+)/)[1])
      if (subs >= 3) break
      await new Promise((r) => setTimeout(r, 20))
    }
    const emitted = await post(a.ctl, '/emit/', 'userId=u1&channel=c&payload=data: to-u1\n')
    assert.match(emitted, /^HTTP\/1\.1 200 /)
    await post(b.ctl, '/emit/', 'userId=*&channel=c&payload=data: to-all\n')
    for (const s of [u1a, u1b]) await s.waitFor(/data: to-all/)
    await u2b.waitFor(/data: to-all/)
    const body = (s) => dechunk(split(s.text).body).data
    for (const s of [u1a, u1b]) {
      const got = events(body(s))
      assert.deepEqual(datas(got), ['to-u1', 'to-all'])
      assertOrdered(got, 'jwt user')
    }
    assert.deepEqual(datas(events(body(u2b))), ['to-all'])
    for (const s of [u1a, u1b, u2b]) s.close()
  })
})

describe('faults: Redis killed and restarted', () => {
  let redis, a, node
  before(async () => {
    redis = await startRedis()
    a = await channelsNode(redis, ['--history', '100'])
    node = await startSse({ redis: redis.url, history: 100, heartbeat: 200 })
    node.sse.on('connection', (client) => client.join('news'))
  })
  after(async () => {
    await node.stop()
    await a.stop()
    await redis.stop()
  })

  const publishUntilTaken = async (data) => {
    for (let i = 0; i < 200; i++) {
      try {
        return await node.sse.publish('news', data)
      } catch {
        await new Promise((r) => setTimeout(r, 25))
      }
    }
    throw new Error(`Redis never took ${data}`)
  }

  test('with its data: publishes reject during the outage, nothing accepted is lost, streams stay up', async () => {
    const onA = daemonStream(a.port, '/news')
    const onNode = addonStream(node.port, '/sse')
    await eventually(() => node.sse.stats().bus.subscriptions === 1, 3000, 'the addon to subscribe')
    for (let i = 0; (await status(a.metrics)).bus.subscriptions < 1; i++) {
      if (i > 200) assert.fail('a did not subscribe')
      await new Promise((r) => setTimeout(r, 20))
    }
    await node.sse.publish('news', 'e1')
    await redis.kill()
    await assert.rejects(node.sse.publish('news', 'lost'), (err) => err.code === 'ERR_SSEHUB_BUS' && /Redis/.test(err.message))
    const q = await raw(a.port, 'GET /news?message=lost2 HTTP/1.1\r\nHost: x\r\n\r\n', { until: (t) => /\r\n\r\n[\s\S]+/.test(t) })
    assert.match(q, /^HTTP\/1\.1 503 /)
    // Heartbeats go on while Redis is away.
    const beats = (s) => (s.text || s.body).split(':\n\n').length
    const before = beats(onNode)
    await new Promise((r) => setTimeout(r, 500))
    assert.ok(beats(onNode) > before, 'no heartbeat during the outage')
    assert.equal(onA.closed, false)
    await redis.start()
    await publishUntilTaken('e2')
    await node.sse.publish('news', 'e3')
    const accepted = ['e1', 'e2', 'e3']
    await onA.waitFor(/data: e3/, 10000)
    await onNode.bodyIncludes('data: e3', 10000)
    await new Promise((r) => setTimeout(r, 100))
    for (const [name, s] of [['daemon', onA], ['addon', onNode]]) {
      assert.deepEqual(datas(s.events()), accepted, `${name}: every accepted event once`)
    }
    const stats = node.sse.stats().bus
    assert.ok(stats.reconnects >= 1 && stats.publishesFailed >= 1 && stats.connected, JSON.stringify(stats))
    const sa = await status(a.metrics)
    assert.ok(sa.bus.reconnects_total >= 1 && sa.bus.publishes_failed_total >= 1, JSON.stringify(sa.bus))
    onA.close()
    onNode.destroy()
  })

  test('a node that dies affects no other node', async () => {
    const doomed = await channelsNode(redis, ['--history', '100'])
    const onDoomed = daemonStream(doomed.port, '/news')
    const onA = daemonStream(a.port, '/news')
    const onNode = addonStream(node.port, '/sse')
    await onDoomed.waitFor(/\r\n\r\n/)
    for (let i = 0; (await status(doomed.metrics)).bus.subscriptions < 1; i++) {
      if (i > 200) assert.fail('the doomed node did not subscribe')
      await new Promise((r) => setTimeout(r, 20))
    }
    await controlPublish(doomed.control, ['news = from-the-doomed'])
    await onA.waitFor(/data: from-the-doomed/)
    doomed.child.kill('SIGKILL')
    await doomed.done
    await node.sse.publish('news', 'after-the-death')
    await onA.waitFor(/data: after-the-death/)
    await onNode.bodyIncludes('data: after-the-death')
    assert.deepEqual(datas(onNode.events()), ['from-the-doomed', 'after-the-death'])
    assert.equal(node.sse.stats().bus.reconnects, 1, 'only the Redis restart of the test before')
    onA.close()
    onNode.destroy()
  })

  test('restarted empty: ssehub-gap, then live events again', async () => {
    const onA = daemonStream(a.port, '/news')
    const onNode = addonStream(node.port, '/sse')
    await onNode.bodyIncludes(':ok')
    await new Promise((r) => setTimeout(r, 200))
    await node.sse.publish('news', 'before')
    await onA.waitFor(/data: before/)
    await redis.kill()
    await redis.startEmpty()
    await onNode.bodyIncludes('event: ssehub-gap', 10000)
    await onA.waitFor(/event: ssehub-gap/, 10000)
    await publishUntilTaken('after')
    await onA.waitFor(/data: after/, 10000)
    await onNode.bodyIncludes('data: after', 10000)
    for (const [name, got] of [['addon', onNode.events()], ['daemon', onA.events()]]) {
      assert.deepEqual(got.map((e) => e.event), ['message', 'ssehub-gap', 'message'], name)
      assert.deepEqual([got[0].data, got[2].data], ['before', 'after'], name)
      assert.equal(got[1].data, got[0].id, `${name}: the gap names the last id delivered`)
    }
    assert.ok(node.sse.stats().bus.gaps >= 1)
    onA.close()
    onNode.destroy()
  })
})

describe("Node's cluster: four workers on one port, one Redis", () => {
  let redis, primary, publisher
  before(async () => {
    redis = await startRedis()
    const { spawn } = require('node:child_process')
    primary = spawn(process.execPath, [require('node:path').join(__dirname, '..', 'fixtures', 'cluster-redis.js'), redis.url], { stdio: ['ignore', 'pipe', 'inherit'] })
    primary.port = await new Promise((resolve, reject) => {
      let out = ''
      primary.stdout.on('data', (d) => {
        out += d
        const m = out.match(/listening (\d+)/)
        if (m) resolve(Number(m[1]))
      })
      primary.once('exit', (code) => reject(new Error(`cluster primary exited (${code}): ${out}`)))
    })
    // A node that only publishes: no server, no clients.
    publisher = new (require('../..'))(null, { redis: redis.url })
  })
  after(async () => {
    await publisher.close()
    primary.kill('SIGTERM')
    await new Promise((r) => (primary.exitCode === null ? primary.once('exit', r) : r()))
    await redis.stop()
  })

  test('every client gets every broadcast once, whichever worker serves it', async () => {
    const clients = [...Array(16)].map(() => addonStream(primary.port, '/sse'))
    for (const c of clients) await c.bodyIncludes(':ok')
    const workers = new Set(clients.map((c) => c.head.match(/x-worker: (\d+)/i)[1]))
    assert.ok(workers.size >= 2, `all clients on one worker: ${[...workers]}`)
    await eventually(() => publisher.stats().bus.connected, 3000, 'the publisher to connect')
    const sent = ['c1', 'c2', 'c3', 'c4', 'c5']
    for (const data of sent) await publisher.broadcast(data)
    for (const [i, c] of clients.entries()) {
      await eventually(() => c.events().length >= sent.length, 5000, `client ${i}`)
    }
    await new Promise((r) => setTimeout(r, 100))
    for (const [i, c] of clients.entries()) assert.deepEqual(datas(c.events()), sent, `client ${i} on worker ${c.head.match(/x-worker: (\d+)/i)[1]}`)
    for (const c of clients) c.destroy()
  })
})
