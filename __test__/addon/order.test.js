'use strict'
// Order: every call JS makes on an SSE or a Client takes effect, for each
// client, in the order it was made. 2,000 clients, on the native and the
// fallback transport; one run per transport and timing calls every ordered
// pair of operations back to back (a sequence holding each pair once), all
// in one tick or a tick apart, then closes every client; each client's
// stream must be exactly what a model of the calls predicts.

const test = require('node:test')
const assert = require('node:assert/strict')
const { startSse, get, eventually } = require('../helpers/addon')

const CLIENTS = 2000

/**
 * The operations, each done to every client, and what each client must
 * see from it (`model` returns the data it receives, or null).
 */
const OPERATIONS = {
  // A drop-in loop of the same send: gathered into one crossing.
  send: {
    run: (sse, clients, n) => clients.forEach((c) => c.send(`s${n}`)),
    model: (member, n) => `s${n}`,
  },
  // Sends that differ per client: one crossing each.
  sendOwn: {
    run: (sse, clients, n) => clients.forEach((c, i) => c.send({ id: `${n}.${i}`, data: `o${n}` })),
    model: (member, n) => `o${n}`,
  },
  broadcast: {
    run: (sse, clients, n) => sse.broadcast(`b${n}`),
    model: (member, n) => `b${n}`,
  },
  publish: {
    run: (sse, clients, n) => sse.publish('room', `p${n}`),
    model: (member, n) => (member.in ? `p${n}` : null),
  },
  join: {
    run: (sse, clients) => clients.forEach((c) => c.join('room')),
    model: (member) => ((member.in = true), null),
  },
  leave: {
    run: (sse, clients) => clients.forEach((c) => c.leave('room')),
    model: (member) => ((member.in = false), null),
  },
  write: {
    run: (sse, clients, n) => clients.forEach((c) => c.res.write(`data: w${n}\n\n`)),
    model: (member, n) => `w${n}`,
  },
}

/** A walk through the operations that makes every ordered pair once (an Eulerian circuit). */
function everyPair(names) {
  const unused = new Map(names.map((name) => [name, [...names]]))
  const stack = [names[0]]
  const walk = []
  while (stack.length > 0) {
    const at = stack[stack.length - 1]
    const next = unused.get(at)
    if (next.length > 0) stack.push(next.pop())
    else walk.push(stack.pop())
  }
  return walk.reverse()
}

function dataOf(raw) {
  return raw.body
    .split('\n\n')
    .map((frame) => frame.split('\n').find((line) => line.startsWith('data: ')))
    .filter(Boolean)
    .map((line) => line.slice(6))
}

test('the walk holds every ordered pair of operations', () => {
  const names = Object.keys(OPERATIONS)
  const walk = everyPair(names)
  const pairs = new Set()
  for (let i = 1; i < walk.length; i++) pairs.add(`${walk[i - 1]}>${walk[i]}`)
  assert.equal(pairs.size, names.length * names.length)
  assert.equal(walk.length, names.length * names.length + 1)
})

for (const transport of ['auto', 'fallback']) {
  for (const timing of ['one tick', 'a tick apart']) {
    test(`${CLIENTS} clients, ${transport} transport, every pair of calls ${timing}: each stream in call order`, { timeout: 120000 }, async (t) => {
      const { sse, port, stop } = await startSse({ heartbeat: 0, transport, maxQueueBytes: 64 << 20 })
      t.after(stop)
      const clients = []
      sse.on('connection', (client) => {
        client.join('room')
        clients.push(client)
      })
      const raws = []
      for (let i = 0; i < CLIENTS; i++) raws.push(get(port, '/sse'))
      t.after(() => raws.forEach((raw) => raw.destroy()))
      await eventually(() => clients.length === CLIENTS, 60000, `${CLIENTS} connections`)
      // Each raw client's stream, by the order its 'connection' came.
      await eventually(() => raws.every((raw) => raw.text.includes('\r\n\r\n')), 60000, 'every head')

      const walk = everyPair(Object.keys(OPERATIONS))
      const members = clients.map(() => ({ in: true }))
      const want = clients.map(() => [])
      for (let n = 0; n < walk.length; n++) {
        const operation = OPERATIONS[walk[n]]
        operation.run(sse, clients, n)
        members.forEach((member, i) => {
          const data = operation.model(member, n)
          if (data !== null) want[i].push(data)
        })
        if (timing === 'a tick apart') await new Promise(setImmediate)
      }
      clients.forEach((client) => client.close())

      await Promise.all(raws.map((raw) => raw.closed(60000)))
      // Match each raw stream to its client by the id it sent in `sendOwn`.
      const byClient = new Map()
      for (const raw of raws) {
        const id = raw.body.match(/^id: \d+\.(\d+)$/m)
        assert.ok(id, 'every stream got its own send')
        byClient.set(Number(id[1]), raw)
      }
      let wrong = 0
      let example = null
      for (let i = 0; i < clients.length; i++) {
        const got = dataOf(byClient.get(i))
        if (JSON.stringify(got) !== JSON.stringify(want[i])) {
          wrong++
          example = example || { client: i, got, want: want[i] }
        }
      }
      assert.equal(wrong, 0, `${wrong} of ${CLIENTS} streams out of call order, e.g. ${JSON.stringify(example)}`)
    })
  }
}
