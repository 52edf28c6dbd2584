'use strict'
// A client that stops reading is closed as 'slow' once its queue passes
// the limit, without delaying the clients that read.

const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { startSse, get, eventually } = require('../helpers/addon')

function startReader(port, url, want) {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'reader.js'), port, url, want])
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const result = new Promise((resolve) => child.on('exit', () => resolve(JSON.parse(out.trim().split('\n').pop()))))
  return { child, result }
}

for (const transport of ['auto', 'fallback']) {
  test(`a stalled reader is closed as slow; readers get everything (${transport})`, async (t) => {
    const { sse, port, stop } = await startSse({ heartbeat: 0, maxQueueBytes: 4 * 1024 * 1024, transport })
    t.after(stop)
    const clients = []
    sse.on('connection', (c) => clients.push(c))
    const payload = 'x'.repeat(2000)
    // ~48 MB per client: past what loopback kernel buffers absorb for a
    // socket that does not read (about 20 MB here) plus the 4 MiB limit.
    const total = 24000
    const readers = [startReader(port, '/sse?r', total), startReader(port, '/sse?r', total)]
    t.after(() => readers.forEach((r) => r.child.kill()))
    const stalled = get(port, '/sse?stalled')
    await eventually(() => clients.length === 3)
    stalled.socket.pause() // stops reading: the kernel buffers fill, then the queue
    const reasons = new Map()
    clients.forEach((c) => c.on('close', (r) => reasons.set(c.req.url, r)))
    for (let i = 0; i < total; i++) {
      sse.broadcast({ id: i, data: payload })
      // ~20 MB/s: far below what a reader process takes, so a reader that
      // is descheduled for a moment stays well within the limit.
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1))
    }
    await eventually(() => reasons.has('/sse?stalled'), 10000, 'the stalled client to be closed')
    assert.equal(reasons.get('/sse?stalled'), 'slow')
    for (const reader of readers) {
      const { count, lastId } = await reader.result
      assert.equal(count, total, 'a reader lost nothing')
      assert.equal(lastId, String(total - 1))
    }
    assert.notEqual(reasons.get('/sse?r'), 'slow', 'readers were never closed as slow')
    assert.ok(sse.stats().droppedSlow >= 1)
    stalled.destroy()
  })
}
