// ESM import works as well as require, and gives the same classes.
import test from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import SSE, { Client, SSE as Named } from 'ssehub'

const require = createRequire(import.meta.url)

test('default and named ESM exports match require', () => {
  const cjs = require('ssehub')
  assert.equal(SSE, cjs)
  assert.equal(Named, cjs)
  assert.equal(Client, cjs.Client)
  const sse = new SSE(null)
  assert.equal(typeof sse.broadcast, 'function')
  return sse.close()
})
