'use strict'
// One node of the bus benchmark (bench/lib/bus.js), driven over IPC: an
// ssehub addon on Redis (or alone) that publishes to the channel `bus`
// as told, and serves /sse (its clients join `bus`) for the load client.
//
//   { start: { redis, history } }  -> { ready: port }
//   { publish: { count, window, size } } -> { published, failed, seconds }
//     `window` publishes in flight at most (1: each awaited in turn)
//   { paced: { rate, seconds } } -> { sent }
//     the data of each event is the wall-clock time it was published, µs
//   { stop: true }

const http = require('node:http')
const { loadSsehub } = require('./ssehub-module')

let sse = null

/** Wall-clock µs, comparable between processes of one machine. */
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000)

async function start({ redis, history }) {
  const SSE = loadSsehub()
  const server = http.createServer()
  sse = new SSE(server, { path: '/sse', ...(redis ? { redis } : {}), history, heartbeat: 0 })
  sse.on('connection', (client) => client.join('bus'))
  sse.on('error', (err) => console.error(`[bus-node] ${err.message}`))
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { ready: server.address().port }
}

/** `count` publishes, at most `window` waiting for Redis at once. */
async function publish({ count, window, size }) {
  const data = 'x'.repeat(size)
  let next = 0
  let failed = 0
  const started = process.hrtime.bigint()
  const lane = async () => {
    while (next < count) {
      next++
      try {
        await sse.publish('bus', data)
      } catch {
        failed++
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(window, count) }, lane))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return { published: count - failed, failed, seconds }
}

/** `rate` events a second for `seconds`, each carrying its publish time. */
async function paced({ rate, seconds }) {
  const total = Math.round(rate * seconds)
  const started = performance.now()
  let sent = 0
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1)
    for (; sent < due; sent++) Promise.resolve(sse.publish('bus', String(nowUs()))).catch(() => {})
    await new Promise((r) => setTimeout(r, 1))
  }
  return { sent }
}

process.on('message', async (message) => {
  try {
    if (message.start) process.send(await start(message.start))
    else if (message.publish) process.send(await publish(message.publish))
    else if (message.paced) process.send(await paced(message.paced))
    else if (message.stop) {
      await sse?.close()
      process.exit(0)
    }
  } catch (err) {
    process.send({ error: err.message })
  }
})
process.on('disconnect', () => process.exit(0))
