'use strict'
// Defaults and error codes are written once, in Rust: JS reads them from
// the addon, and they are the documented values.

const test = require('node:test')
const assert = require('node:assert/strict')
const binding = require('../../binding')
const codes = require('../../lib/codes')
const { SSE } = require('../helpers/addon')

test('the options default to the engine defaults, which are the documented ones', () => {
  const engine = binding.defaults()
  const sse = new SSE(null)
  assert.equal(sse.options.heartbeat, engine.heartbeatMs)
  assert.equal(sse.options.maxQueueBytes, engine.maxQueueBytes)
  assert.equal(sse.options.writeTimeout, engine.writeTimeoutMs)
  assert.equal(sse.options.historyBytes, engine.historyBytes)
  assert.equal(sse.options.retryAfter, engine.retryAfterMs)
  // The README's and index.d.ts's figures.
  assert.deepEqual(
    [engine.heartbeatMs, engine.maxQueueBytes, engine.writeTimeoutMs, engine.historyBytes, engine.retryAfterMs, engine.redisPrefix],
    [15000, 1024 * 1024, 30000, 16 * 1024 * 1024, 5000, 'ssehub:']
  )
  sse.close()
})

test('lib/codes.js is the addon table, and each code is thrown as named', async () => {
  assert.deepEqual(Object.keys(codes).sort(), ['BUS', 'CLIENT_LIMIT', 'CLOSED', 'INVALID_FIELD', 'INVALID_OPTION', 'NOT_CONNECTED', 'NO_FD'])
  for (const [name, code] of Object.entries(codes)) assert.equal(code, `ERR_SSEHUB_${name}`)
  assert.ok(Object.isFrozen(codes))
  const sse = new SSE(null)
  assert.throws(() => sse.broadcast({ event: 'a\nb', data: 'x' }), { code: codes.INVALID_FIELD })
  assert.throws(() => new SSE(null, { redis: 'redis://[' }), { code: codes.INVALID_OPTION })
  await sse.close()
})
