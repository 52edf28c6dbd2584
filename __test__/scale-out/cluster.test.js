'use strict'
// The bus on a Redis Cluster (issue 19): three masters the test starts
// (`--cluster-enabled yes`, `redis-cli --cluster create`). Every feature
// works with nodes seeded on different masters; the bus's keys share one
// hash slot and publish with sharded Pub/Sub (SPUBLISH); the slot moving
// to another master (a resharding) and its master restarting are
// survived with no accepted event lost and no rejected one delivered.

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert')
const { startCluster, events } = require('../helpers/redis')
const { start, openStream, split, dechunk } = require('../helpers/daemon')
const { eventually } = require('../helpers/addon')
const { datas, live, addonNode: baseNode, addonStream, warm, afterWarm } = require('../helpers/scale')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
/** A node that ignores its bus's errors (they are expected here). */
async function addonNode(options) {
  const node = await baseNode(options)
  node.sse.on('error', () => {})
  return node
}

/** Publishes `data` on `sse` to `channel`, noting whether it was taken. */
function recorder(sse, channel) {
  const accepted = []
  const rejected = []
  return {
    accepted,
    rejected,
    async publish(data) {
      try {
        await sse.publish(channel, data)
        accepted.push(data)
      } catch (err) {
        assert.equal(err.code, 'ERR_SSEHUB_BUS')
        rejected.push(data)
      }
    },
  }
}

describe('a three-master Redis Cluster', () => {
  let cluster
  let slot
  before(async () => {
    cluster = await startCluster({ masters: 3, persist: true })
    slot = cluster.slotOf('{ssehub:}seq')
  })
  after(() => cluster.stop())

  const url = (i) => cluster.nodes[i].url

  test('publish on any node, deliver everywhere, one client in several channels, resume on any node, gap when trimmed', async () => {
    // Each node is seeded with a different master.
    const a = await addonNode({ redis: url(0), history: 50 })
    const b = await addonNode({ redis: url(1), history: 50 })
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--history', '50', '--redis', url(2)], { ready: /Web server listening on port (\d+)/ })
    try {
      const dPort = Number((await d.ready)[1])
      const both = addonStream(b, 'x,y')
      const onD = openStream(dPort, 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n')
      const dEvents = () => events(dechunk(split(onD.text).body).data)
      await warm(both, (w) => a.sse.publish(['x', 'y'], w))
      while (!dEvents().some((e) => e.data === 'warm')) {
        await a.sse.publish('x', 'warm')
        await sleep(25)
      }
      const sent = []
      for (let i = 0; i < 12; i++) {
        const to = ['x', 'y', ['x', 'y']][i % 3]
        await a.sse.publish(to, `e${i}`)
        sent.push({ to, data: `e${i}` })
      }
      const inX = sent.filter((s) => s.to !== 'y').map((s) => s.data)
      await eventually(() => afterWarm(both.events()).length >= 12 && afterWarm(dEvents()).length >= inX.length, 5000, 'the events')
      const got = afterWarm(both.events())
      // Every event once (one in both channels too), in publish order, ids increasing.
      assert.deepEqual(datas(got), sent.map((s) => s.data))
      assert.ok(got.every((e, i) => i === 0 || BigInt(e.id) > BigInt(got[i - 1].id)))
      assert.deepEqual(datas(afterWarm(dEvents())), inX)
      // A resume on another node, in both channels, from the fourth event.
      const resumed = addonStream(a, 'x,y', { 'Last-Event-ID': got[3].id })
      await eventually(() => resumed.events().length >= 8, 5000, 'the replay')
      assert.deepEqual(datas(resumed.events()), sent.slice(4).map((s) => s.data))
      // Keys in one slot, published with SPUBLISH (sharded), on its master only.
      const owner = cluster.ownerOf(slot)
      assert.ok(Number(cluster.cli(owner.port, 'CLUSTER', 'COUNTKEYSINSLOT', slot)) >= 3)
      assert.match(cluster.cli(owner.port, 'INFO', 'commandstats'), /cmdstat_spublish:calls=[1-9]/)
      for (const n of cluster.nodes) assert.doesNotMatch(cluster.cli(n.port, 'INFO', 'commandstats'), /cmdstat_publish:/)
      // Trimmed history: 120 more to x, then a resume from before them.
      for (let i = 0; i < 120; i++) a.sse.publish('x', `t${i}`).catch(() => {})
      await a.sse.publish('x', 'last')
      const late = addonStream(b, 'x', { 'Last-Event-ID': got[0].id })
      await eventually(() => late.events().some((e) => e.data === 'last'), 5000, 'the late replay')
      const lateEvents = late.events()
      assert.equal(lateEvents[0].event, 'ssehub-gap')
      assert.equal(lateEvents[0].data, got[0].id)
      assert.ok(live(lateEvents).length >= 50 && live(lateEvents).length <= 121)
      for (const c of [both, resumed, late]) c.destroy()
      onD.sock.destroy()
    } finally {
      await a.stop()
      await b.stop()
      await d.stop()
    }
  })

  test("the bus's slot moves to another master under publishes: accepted events all arrive once, in order; rejected ones never", async () => {
    const a = await addonNode({ redis: url(0), history: 500 })
    const b = await addonNode({ redis: url(1), history: 500 })
    try {
      const c = addonStream(b, 'r')
      await warm(c, (w) => a.sse.publish('r', w))
      const r = recorder(a.sse, 'r')
      for (let i = 0; i < 30; i++) await r.publish(`before${i}`)
      const from = cluster.ownerOf(slot)
      const to = cluster.nodes.find((n) => n !== from)
      const publishing = (async () => {
        for (let i = 0; i < 60; i++) {
          await r.publish(`during${i}`)
          await sleep(5)
        }
      })()
      await sleep(50)
      cluster.migrate(slot, to)
      await publishing
      assert.equal(cluster.ownerOf(slot), to)
      for (let i = 0; i < 30; i++) await r.publish(`after${i}`)
      assert.ok(r.accepted.includes('after29'), `still rejected after the move: ${r.rejected.slice(-3)}`)
      await eventually(() => afterWarm(c.events()).some((e) => e.data === 'after29'), 10000, 'the events after the move')
      await sleep(300)
      assert.deepEqual(datas(live(afterWarm(c.events()))), r.accepted, `${r.rejected.length} rejected`)
      // Resumable on the other node, from the new master.
      const first = live(afterWarm(c.events()))[0].id
      const resumed = addonStream(a, 'r', { 'Last-Event-ID': first })
      await eventually(() => resumed.events().some((e) => e.data === 'after29'), 5000, 'the replay')
      assert.deepEqual(datas(live(resumed.events())), r.accepted.slice(1))
      c.destroy()
      resumed.destroy()
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  test("the slot's master restarts (append-only file): nothing accepted is lost, nothing rejected arrives", async () => {
    const owner = cluster.ownerOf(slot)
    const seed = cluster.nodes.find((n) => n !== owner)
    const a = await addonNode({ redis: seed.url, history: 500 })
    const b = await addonNode({ redis: cluster.nodes.find((n) => n !== owner && n !== seed).url, history: 500 })
    try {
      const c = addonStream(b, 'm')
      await warm(c, (w) => a.sse.publish('m', w))
      const r = recorder(a.sse, 'm')
      for (let i = 0; i < 20; i++) await r.publish(`before${i}`)
      await owner.kill()
      for (let i = 0; i < 5; i++) await r.publish(`down${i}`)
      assert.equal(r.accepted.filter((d) => d.startsWith('down')).length, 0, 'a publish was taken with its master down')
      await owner.start(owner.options)
      let n = 0
      const deadline = Date.now() + 30000
      while (!r.accepted.some((d) => d.startsWith('after')) && Date.now() < deadline) {
        await r.publish(`after${n++}`)
        await sleep(100)
      }
      for (let k = 0; k < 20; k++) await r.publish(`after${n++}`)
      const lastOne = `after${n - 1}`
      assert.ok(r.accepted.includes(lastOne), `still rejected after the restart: ${r.rejected.slice(-3)}`)
      await eventually(() => afterWarm(c.events()).some((e) => e.data === lastOne), 15000, 'the events after the restart')
      await sleep(300)
      assert.deepEqual(datas(live(afterWarm(c.events()))), r.accepted, `${r.rejected.length} rejected`)
      c.destroy()
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  // Last: it leaves a master down for good.
  test("the node a URL names goes away for good: the bus reconnects through the nodes it knows", async () => {
    const owner = cluster.ownerOf(slot)
    const named = cluster.nodes.find((n) => n !== owner)
    const a = await addonNode({ redis: named.url, history: 100 })
    const b = await addonNode({ redis: named.url, history: 100 })
    try {
      const c = addonStream(b, 'g')
      await warm(c, (w) => a.sse.publish('g', w))
      await a.sse.publish('g', 'one')
      await named.kill()
      // Every connection of the nodes to the slot's master cut: they must make new ones.
      cluster.cli(owner.port, 'CLIENT', 'KILL', 'TYPE', 'normal')
      cluster.cli(owner.port, 'CLIENT', 'KILL', 'TYPE', 'pubsub')
      const r = recorder(a.sse, 'g')
      const deadline = Date.now() + 20000
      while (!r.accepted.length && Date.now() < deadline) {
        await r.publish(`again${r.rejected.length}`)
        if (!r.accepted.length) await sleep(200)
      }
      for (let i = 0; i < 5; i++) await r.publish(`more${i}`)
      assert.ok(r.accepted.includes('more4'), `publishes still rejected: ${r.rejected.slice(-2)}`)
      await eventually(() => afterWarm(c.events()).some((e) => e.data === 'more4'), 15000, 'the events after the cut')
      await sleep(300)
      assert.deepEqual(datas(live(afterWarm(c.events()))), ['one', ...r.accepted])
      c.destroy()
    } finally {
      await a.stop()
      await b.stop()
    }
  })
})
