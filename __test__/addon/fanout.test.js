'use strict'
// Broadcast and channels to hundreds of clients: no loss, in order, once.

const test = require('node:test')
const assert = require('node:assert/strict')
const { startSse, get, eventually } = require('../helpers/addon')

const CLIENTS = 300
const EVENTS = 200

function dataLines(raw) {
  return raw.body
    .split('\n\n')
    .filter((frame) => frame.startsWith('data: '))
    .map((frame) => frame.slice(6))
}

async function connectMany(sse, port, n, path = '/sse') {
  const clients = []
  const listener = (c) => clients.push(c)
  sse.on('connection', listener)
  const raws = Array.from({ length: n }, () => get(port, path))
  await eventually(() => clients.length === n, 10000, `${n} connections`)
  sse.off('connection', listener)
  return { clients, raws }
}

test(`broadcast reaches ${CLIENTS} clients, every event, in order`, async (t) => {
  const { sse, port, stop } = await startSse({ heartbeat: 0 })
  t.after(stop)
  const { raws } = await connectMany(sse, port, CLIENTS)
  for (let i = 0; i < EVENTS; i++) assert.equal(sse.broadcast(String(i)), CLIENTS)
  const want = Array.from({ length: EVENTS }, (_, i) => String(i))
  for (const raw of raws) {
    await raw.bodyIncludes(`data: ${EVENTS - 1}\n\n`, 10000)
    assert.deepEqual(dataLines(raw), want)
  }
  raws.forEach((r) => r.destroy())
})

test('what JS asks after a broadcast takes effect after it (its pushes are left to a Rust thread)', async (t) => {
  const { sse, port, stop } = await startSse({ heartbeat: 0 })
  t.after(stop)
  const { clients, raws } = await connectMany(sse, port, 50)
  for (let round = 0; round < 20; round++) {
    sse.broadcast(`b${round}`)
    for (const c of clients) c.send(`s${round}`)
  }
  sse.broadcast('last')
  // Closed in the same tick: each stream still gets every event, then ends.
  clients.forEach((c) => c.close())
  const want = []
  for (let round = 0; round < 20; round++) want.push(`b${round}`, `s${round}`)
  want.push('last')
  for (const raw of raws) {
    await raw.closed(10000)
    assert.deepEqual(dataLines(raw), want)
  }
  // A client that connects after a broadcast never gets it.
  const { raws: late } = await connectMany(sse, port, 1)
  assert.equal(sse.broadcast('to the late one'), 1)
  await late[0].bodyIncludes('data: to the late one\n\n')
  assert.deepEqual(dataLines(late[0]), ['to the late one'])
  late[0].destroy()
})

test('channels: publish reaches members only, once even when in several', async (t) => {
  const { sse, port, stop } = await startSse({ heartbeat: 0 })
  t.after(stop)
  const { clients, raws } = await connectMany(sse, port, 200)
  clients.forEach((c, i) => {
    if (i % 2 === 0) c.join('even')
    if (i % 3 === 0) c.join('three')
  })
  assert.deepEqual(clients[0].channels.sort(), ['even', 'three'])
  const reached = sse.publish(['even', 'three'], 'both')
  const members = clients.filter((_, i) => i % 2 === 0 || i % 3 === 0).length
  assert.equal(reached, members)
  assert.equal(sse.publish('even', 'evens'), 100)
  clients[0].leave('even')
  assert.equal(sse.publish('even', 'after-leave'), 99)
  sse.broadcast('end')
  for (const [i, raw] of raws.entries()) {
    await raw.bodyIncludes('data: end\n\n')
    const expected = []
    if (i % 2 === 0 || i % 3 === 0) expected.push('both')
    if (i % 2 === 0) expected.push('evens')
    if (i % 2 === 0 && i !== 0) expected.push('after-leave')
    expected.push('end')
    assert.deepEqual(dataLines(raw), expected, `client ${i}`)
  }
  raws.forEach((r) => r.destroy())
})

test('per-client sends interleave with broadcasts in call order', async (t) => {
  const { sse, port, stop } = await startSse({ heartbeat: 0 })
  t.after(stop)
  const { clients, raws } = await connectMany(sse, port, 50)
  for (let i = 0; i < 20; i++) {
    sse.broadcast(`b${i}`)
    clients.forEach((c) => c.send(`s${i}`))
  }
  for (const raw of raws) {
    await raw.bodyIncludes('data: s19\n\n')
    const want = []
    for (let i = 0; i < 20; i++) want.push(`b${i}`, `s${i}`)
    assert.deepEqual(dataLines(raw), want)
  }
  raws.forEach((r) => r.destroy())
})
