'use strict'
// The common mistakes get a TypeError that names the fix; a misspelt
// option only warns (sse ignored unknown keys, and such code must run on).

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { EventEmitter } = require('node:events')
const { SSE, startSse, get, nextConnection } = require('../helpers/addon')

function expressLikeApp() {
  const app = (req, res) => res.end()
  app.use = () => app
  app.get = () => app
  app.listen = () => http.createServer(app)
  return app
}

function fastifyLikeInstance() {
  const instance = new EventEmitter()
  instance.server = http.createServer()
  instance.register = () => instance
  instance.route = () => instance
  instance.get = () => instance
  return instance
}

test('new SSE(expressApp) names the fix', () => {
  assert.throws(() => new SSE(expressLikeApp()), { name: 'TypeError', message: /app\.listen\(\).*handleRequest/ })
})

test('new SSE(fastifyInstance) names the fix', () => {
  assert.throws(() => new SSE(fastifyLikeInstance()), { name: 'TypeError', message: /fastify\.server.*handleRequest/ })
})

test('new SSE(koaApp) names the fix', () => {
  const Koa = require('koa')
  assert.throws(() => new SSE(new Koa()), { name: 'TypeError', message: /Koa app.*app\.listen\(\).*handleRequest\(ctx\.req, ctx\.res\)/ })
})

test('client.join() and leave() without a channel name are refused', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  t.after(() => raw.destroy())
  const { client } = await connected
  for (const bad of [undefined, null, '']) {
    assert.throws(() => client.join(bad), { name: 'TypeError', message: /client\.join\(\) needs a channel name/ })
    assert.throws(() => client.leave(bad), { name: 'TypeError', message: /client\.leave\(\) needs a channel name/ })
  }
  assert.deepEqual(client.channels, [], "no channel named 'undefined' was joined")
  assert.equal(client.join(7), true, 'a number is still a name')
})

test('a verifyRequest that throws is reported: to error listeners, else by one warning', async (t) => {
  let calls = 0
  const { port, sse, stop } = await startSse({
    verifyRequest: () => {
      calls++
      throw new Error('auth backend down')
    },
  })
  t.after(stop)
  const warnings = []
  const onWarning = (w) => w.code === 'SSEHUB_VERIFY_REQUEST' && warnings.push(w)
  process.on('warning', onWarning)
  t.after(() => process.off('warning', onWarning))
  for (let i = 0; i < 2; i++) {
    const raw = get(port, '/sse')
    await raw.until((c) => c.text.includes('Not Found'), 5000)
    assert.match(raw.text, /^HTTP\/1\.1 404/, 'the app (here: none) answers')
    raw.destroy()
  }
  await new Promise(setImmediate)
  assert.equal(calls, 2)
  assert.equal(warnings.length, 1, 'warned once')
  assert.match(warnings[0].message, /auth backend down.*'error'/)
  const errors = []
  sse.on('error', (err) => errors.push(err))
  const raw = get(port, '/sse')
  await raw.until((c) => c.text.includes('Not Found'), 5000)
  raw.destroy()
  assert.equal(errors.length, 1)
  assert.equal(warnings.length, 1)
})

test('a first argument that is no server is refused', () => {
  assert.throws(() => new SSE({ path: '/sse' }), { name: 'TypeError', message: /http\.Server/ })
  assert.throws(() => new SSE('/sse'), { name: 'TypeError', message: /http\.Server/ })
})

test("path without a leading '/' is refused, with the corrected path", () => {
  assert.throws(() => new SSE(null, { path: 'events' }), { name: 'TypeError', message: /start with '\/'.*'\/events'/ })
})

test('headers as an array is refused', () => {
  assert.throws(() => new SSE(null, { headers: [['X-A', '1']] }), { name: 'TypeError', message: /'headers' must be an object.*got an array/ })
})

test('a non-object options argument is refused', () => {
  assert.throws(() => new SSE(null, '/sse'), { name: 'TypeError', message: /options must be an object.*got a string/ })
  assert.throws(() => new SSE(null, 5000), { name: 'TypeError', message: /options must be an object/ })
})

test("heartbeat: '5000' says it got a string", () => {
  assert.throws(() => new SSE(null, { heartbeat: '5000' }), { name: 'TypeError', message: /'heartbeat' must be a number.*got a string \("5000"\)/ })
})

test('huge delays are refused with a clear error instead of overflowing a timer', () => {
  for (const option of ['heartbeat', 'writeTimeout', 'retry', 'retryAfter']) {
    for (const value of [1e15, 2 ** 31]) {
      assert.throws(() => new SSE(null, { [option]: value }), { name: 'TypeError', message: new RegExp(`'${option}'.*2147483647`) })
    }
  }
  assert.doesNotThrow(() => new SSE(null, { heartbeat: 2 ** 31 - 1 }).close())
})

test('publish(undefined, ...) names the fix', async () => {
  const sse = new SSE(null)
  assert.throws(() => sse.publish(undefined, 'data'), { name: 'TypeError', message: /channel name.*broadcast/ })
  assert.throws(() => sse.publish(['a', null], 'data'), { name: 'TypeError' })
  assert.equal(sse.publish('room', 'data'), 0)
  await sse.close()
})

test('a misspelt option warns with the closest valid name, and the code runs on', async () => {
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  try {
    const sse = new SSE(null, { hearbeat: 5000, maxClient: 3, zzzzzzzzzz: 1 })
    await sse.close()
    await new Promise((r) => setImmediate(r))
  } finally {
    process.off('warning', onWarning)
  }
  const messages = warnings.map((w) => w.message)
  assert.ok(messages.some((m) => /'hearbeat'.*did you mean 'heartbeat'/.test(m)), messages.join('\n'))
  assert.ok(messages.some((m) => /'maxClient'.*did you mean 'maxClients'/.test(m)), messages.join('\n'))
  assert.ok(messages.some((m) => /'zzzzzzzzzz' is ignored$/.test(m)), messages.join('\n'))
  assert.ok(warnings.every((w) => w.code === 'SSEHUB_UNKNOWN_OPTION'))
})

test("sse.options is the validated options, transport 'native' accepted", async () => {
  const sse = new SSE(null, { transport: 'native', heartbeat: 0 })
  assert.equal(sse.options.transport, 'native')
  assert.equal(sse.options.heartbeat, 0)
  assert.ok(Object.isFrozen(sse.options))
  assert.equal(Object.hasOwn(sse.options, 'hub'), false, 'no internal key')
  await sse.close()
})

test('a redis option that cannot work is refused before anything starts', () => {
  assert.throws(() => new SSE(null, { redis: 6379 }), { name: 'TypeError', message: /option 'redis' must be a URL like 'redis:\/\/127\.0\.0\.1:6379\/0'/ })
  assert.throws(() => new SSE(null, { redis: 'localhost:6379' }), { name: 'TypeError', message: /option 'redis'/ })
  assert.throws(() => new SSE(null, { redis: { url: 'redis://127.0.0.1', prefix: '' } }), { name: 'TypeError', message: /redis\.prefix/ })
  assert.throws(() => new SSE(null, { redis: 'redis://127.0.0.1:notaport' }), { name: 'TypeError', code: 'ERR_SSEHUB_INVALID_OPTION', message: /invalid Redis URL/ })
  assert.throws(() => new SSE(null, { redis: { url: 'redis://127.0.0.1', prefix: 'app}' } }), { name: 'TypeError', message: /redis\.prefix.*no braces/ })
  assert.throws(() => new SSE(null, { redis: { url: 'rediss://127.0.0.1', ca: 42 } }), { name: 'TypeError', message: /redis\.ca' must be PEM text/ })
  assert.throws(() => new SSE(null, { redis: 'redis+sentinel://127.0.0.1:26379' }), { name: 'TypeError', code: 'ERR_SSEHUB_INVALID_OPTION', message: /names the service/ })
})

test('a refused Redis URL is named with its password masked (the JS shape check and Rust\'s parse)', () => {
  const masked = (message) => (err) => {
    assert.equal(err.name, 'TypeError')
    assert.doesNotMatch(err.message, /hunter2/)
    assert.match(err.message, message)
    return true
  }
  // Refused by the shape check in lib/options.js.
  assert.throws(() => new SSE(null, { redis: 'redis+sentinel://s:1,s:x/m?sentinel_password=hunter2' }), masked(/sentinel_password=\*\*\*/))
  assert.throws(() => new SSE(null, { redis: 'http://app:hunter2@db.example:6379/0' }), masked(/"http:\/\/app:\*\*\*@db\.example:6379\/0"/))
  assert.throws(() => new SSE(null, { redis: 'app:hunter2@db.example:6379' }), masked(/"app:\*\*\*@db\.example:6379"/))
  assert.throws(() => new SSE(null, { redis: { url: 'tcp://db.example?password=hunter2' } }), masked(/password=\*\*\*/))
  // Refused by the Redis client's parse (crates/core/src/bus/redis.rs).
  assert.throws(() => new SSE(null, { redis: 'redis://app:hunter2@db.example:notaport/0' }), masked(/invalid Redis URL 'redis:\/\/app:\*\*\*@db\.example:notaport\/0'/))
  assert.throws(() => new SSE(null, { redis: { url: 'redis://db.example:notaport/0?db=1&password=hunter2' } }), masked(/\?db=1&password=\*\*\*'/))
  assert.throws(() => new SSE(null, { redis: 'redis://:hunter2@db.example:notaport' }), masked(/'redis:\/\/:\*\*\*@db\.example:notaport'/))
})

test('with redis and history, an event cannot bring an id of its own', async () => {
  // Nothing listens on port 9: the check comes before any connection.
  const sse = new SSE(null, { redis: 'redis://127.0.0.1:9', history: 10 })
  await assert.rejects(sse.broadcast({ data: 'x', id: 'mine' }), { code: 'ERR_SSEHUB_BUS', message: /numbers events/ })
  await assert.rejects(sse.publish('c', 'ev\nil', 'x'), { name: 'TypeError', code: 'ERR_SSEHUB_INVALID_FIELD' })
  await sse.close()
  await assert.rejects(sse.publish('c', 'late'), { code: 'ERR_SSEHUB_CLOSED' })
})
