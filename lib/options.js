'use strict'
// The SSE constructor's options: the two of `sse` 0.0.8 (`path`,
// `verifyRequest`) and ssehub's own, validated once with clear errors.

/** The response headers of `sse` 0.0.8, in its order. */
const BASE_HEADERS = Object.freeze([
  ['Content-Type', 'text/event-stream'],
  ['Cache-Control', 'no-cache, no-transform'],
  ['Connection', 'keep-alive'],
])

const DEFAULTS = Object.freeze({
  path: '/sse',
  verifyRequest: null,
  heartbeat: 15000,
  retry: null,
  headers: null,
  history: 0,
  maxQueueBytes: 1024 * 1024,
  writeTimeout: 30000,
  maxClients: 0,
  transport: 'auto',
})

function fail(message) {
  throw new TypeError(`ssehub: ${message}`)
}

function nonNegativeInt(name, value, max = 0xffffffff) {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    fail(`option '${name}' must be an integer between 0 and ${max}, got ${String(value)}`)
  }
  return value
}

function headerPairs(headers) {
  if (headers === null || headers === undefined) return []
  if (typeof headers !== 'object') fail(`option 'headers' must be an object of header names to values`)
  return Object.entries(headers).map(([name, value]) => {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) fail(`invalid header name '${name}'`)
    const text = String(value)
    if (/[\r\n\0]/.test(text)) fail(`header '${name}' must not contain a line break`)
    return [name, text]
  })
}

/** Base headers, then the user's (a user header replaces a base one). */
function mergeHeaders(user) {
  const names = new Set(user.map(([name]) => name.toLowerCase()))
  return [...BASE_HEADERS.filter(([name]) => !names.has(name.toLowerCase())), ...user]
}

function preambleOf(retry) {
  return retry === null ? ':ok\n\n' : `:ok\n\nretry: ${retry}\n\n`
}

/** Validates the options; unknown keys are ignored, as `sse` does. */
function normalizeOptions(options) {
  const o = { ...DEFAULTS }
  if (options && typeof options === 'object') {
    for (const key of Object.keys(DEFAULTS)) {
      if (options[key] !== undefined) o[key] = options[key]
    }
  }
  if (typeof o.path !== 'string' || o.path === '') fail(`option 'path' must be a non-empty string`)
  if (o.verifyRequest !== null && typeof o.verifyRequest !== 'function') fail(`option 'verifyRequest' must be a function`)
  if (!['auto', 'native', 'fallback'].includes(o.transport)) fail(`option 'transport' must be 'auto' or 'fallback'`)
  if (o.retry !== null) nonNegativeInt('retry', o.retry)
  const headers = mergeHeaders(headerPairs(o.headers))
  o.hub = {
    heartbeatMs: nonNegativeInt('heartbeat', o.heartbeat),
    history: nonNegativeInt('history', o.history, 1_000_000),
    maxQueueBytes: nonNegativeInt('maxQueueBytes', o.maxQueueBytes, Number.MAX_SAFE_INTEGER),
    maxClients: nonNegativeInt('maxClients', o.maxClients),
    writeTimeoutMs: nonNegativeInt('writeTimeout', o.writeTimeout),
    headers,
    preamble: preambleOf(o.retry),
  }
  return Object.freeze(o)
}

module.exports = { normalizeOptions, BASE_HEADERS }
