'use strict'
// The SSE constructor's options: the two of `sse` 0.0.8 (`path`,
// `verifyRequest`) and ssehub's own, validated once with clear errors.

/** The response headers of `sse` 0.0.8, in its order. */
const BASE_HEADERS = Object.freeze([
  ['Content-Type', 'text/event-stream'],
  ['Cache-Control', 'no-cache, no-transform'],
  ['Connection', 'keep-alive'],
])

// The engine's defaults are written once, in Rust (crates/core hub::defaults).
const engine = require('../binding').defaults()
const { INVALID_OPTION } = require('./codes')

const DEFAULTS = Object.freeze({
  path: '/sse',
  verifyRequest: null,
  heartbeat: engine.heartbeatMs,
  retry: null,
  headers: null,
  history: 0,
  historyBytes: engine.historyBytes,
  maxQueueBytes: engine.maxQueueBytes,
  writeTimeout: engine.writeTimeoutMs,
  maxClients: 0,
  transport: 'auto',
  refuse: '503',
  retryAfter: engine.retryAfterMs,
  redis: null,
})

/** The longest delay Node's own timers take (about 24.8 days). */
const MAX_DELAY = 2 ** 31 - 1

function fail(message) {
  throw new TypeError(`ssehub: ${message}`)
}

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `a string (${JSON.stringify(value)})`
  if (typeof value === 'object') return 'an object'
  return `${typeof value} ${String(value)}`
}

function nonNegativeInt(name, value, max = 0xffffffff, unit = '') {
  if (typeof value !== 'number') fail(`option '${name}' must be a number${unit}, got ${describe(value)}`)
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    fail(`option '${name}' must be an integer between 0 and ${max}${unit}, got ${String(value)}`)
  }
  return value
}

function delay(name, value) {
  return nonNegativeInt(name, value, MAX_DELAY, ' (milliseconds)')
}

function headerPairs(headers) {
  if (headers === null || headers === undefined) return []
  if (typeof headers !== 'object' || Array.isArray(headers)) {
    fail(`option 'headers' must be an object of header names to values, e.g. { 'X-Accel-Buffering': 'no' }, got ${describe(headers)}`)
  }
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

/**
 * The `redis` option: a URL (`redis://`, `rediss://`, `redis+unix://`,
 * `redis+sentinel://`), or `{ url, prefix, ttl, ca }` (`ca`: PEM for a
 * `rediss://` Redis). Rust parses the URL itself; here only the shape is
 * checked, with the forms named.
 */
function redisOption(value) {
  if (value === null || value === undefined) return { redisUrl: undefined, redisPrefix: undefined, redisTtlS: undefined, redisCa: undefined }
  const form = "a URL like 'redis://127.0.0.1:6379/0' or { url, prefix, ttl, ca }"
  const { url, prefix, ttl, ca } = typeof value === 'string' ? { url: value } : value
  if (typeof value !== 'string' && (typeof value !== 'object' || Array.isArray(value))) fail(`option 'redis' must be ${form}, got ${describe(value)}`)
  if (typeof url !== 'string' || !/^(redis|rediss|unix|redis\+unix|rediss?\+sentinel):\/\//i.test(url)) fail(`option 'redis' must be ${form}, got url ${describe(redact(url))}`)
  if (prefix !== undefined && (typeof prefix !== 'string' || prefix === '' || /[{}]/.test(prefix))) fail(`option 'redis.prefix' must be a non-empty string with no braces (it is the keys' hash tag), got ${describe(prefix)}`)
  if (ttl !== undefined && !(typeof ttl === 'number' && Number.isInteger(ttl) && ttl >= 1 && ttl <= 2 ** 31)) fail(`option 'redis.ttl' must be a whole number of seconds from 1, got ${describe(ttl)}`)
  if (ca !== undefined && typeof ca !== 'string' && !Buffer.isBuffer(ca)) fail(`option 'redis.ca' must be PEM text (a string or a Buffer), got ${describe(ca)}`)
  return { redisUrl: url, redisPrefix: prefix, redisTtlS: ttl, redisCa: ca === undefined ? undefined : String(ca) }
}

/**
 * A URL fit to print: a password in it masked, `redis://user:***@host`,
 * `?password=***`, `&pass=***` (the same rule as `redact` in
 * crates/core/src/bus/redis.rs). Whatever precedes the last `@` after the
 * scheme is the user part, so a password with an unencoded `/`, `?` or
 * `#` is masked whole; anything else passes unchanged.
 */
function redact(url) {
  if (typeof url !== 'string') return url
  const scheme = url.indexOf('://')
  const start = scheme < 0 ? 0 : scheme + 3
  const at = url.lastIndexOf('@')
  let out = url
  if (at >= start) {
    const colon = url.slice(start, at).indexOf(':')
    const user = colon < 0 ? '' : url.slice(start, start + colon + 1)
    out = `${url.slice(0, start)}${user}***${url.slice(at)}`
  }
  return out.replace(/([?&;](?:[^=&;#]*password|pass)=)[^&;#]*/gi, '$1***')
}

/** Edit distance, for "did you mean" on a misspelt option. */
function distance(a, b) {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j] + 1, next[j - 1] + 1, row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    row = next
  }
  return row[b.length]
}

function closestOption(key) {
  let best = null
  let bestDistance = Infinity
  for (const name of Object.keys(DEFAULTS)) {
    const d = distance(key.toLowerCase(), name.toLowerCase())
    if (d < bestDistance) [best, bestDistance] = [name, d]
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : null
}

/** `sse` ignored unknown keys, so they only warn (code that passes one keeps running). */
function warnUnknown(options) {
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(DEFAULTS, key)) continue
    const closest = closestOption(key)
    const hint = closest ? `; did you mean '${closest}'?` : ''
    process.emitWarning(`ssehub: unknown option '${key}' is ignored${hint}`, { code: 'SSEHUB_UNKNOWN_OPTION' })
  }
}

/**
 * Validates the options; unknown keys are ignored with a warning. Returns
 * the options as `sse.options` shows them, and the engine's configuration.
 */
function normalizeOptions(options) {
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
    fail(`the options must be an object, e.g. new SSE(server, { path: '/sse' }), got ${describe(options)}`)
  }
  const o = { ...DEFAULTS }
  if (options) {
    warnUnknown(options)
    for (const key of Object.keys(DEFAULTS)) {
      if (options[key] !== undefined) o[key] = options[key]
    }
  }
  if (typeof o.path !== 'string' || o.path === '') fail(`option 'path' must be a non-empty string, got ${describe(o.path)}`)
  if (!o.path.startsWith('/')) fail(`option 'path' must start with '/' (request paths do), e.g. '/${o.path}'`)
  if (o.verifyRequest !== null && typeof o.verifyRequest !== 'function') fail(`option 'verifyRequest' must be a function, got ${describe(o.verifyRequest)}`)
  if (!['auto', 'native', 'fallback'].includes(o.transport)) fail(`option 'transport' must be 'auto', 'native' or 'fallback', got ${describe(o.transport)}`)
  if (!['503', 'retry'].includes(String(o.refuse))) fail(`option 'refuse' must be '503' or 'retry', got ${describe(o.refuse)}`)
  o.refuse = String(o.refuse)
  if (o.retry !== null) delay('retry', o.retry)
  delay('retryAfter', o.retryAfter)
  const headers = mergeHeaders(headerPairs(o.headers))
  const hub = {
    heartbeatMs: delay('heartbeat', o.heartbeat),
    history: nonNegativeInt('history', o.history, 1_000_000),
    historyBytes: nonNegativeInt('historyBytes', o.historyBytes, Number.MAX_SAFE_INTEGER),
    maxQueueBytes: nonNegativeInt('maxQueueBytes', o.maxQueueBytes, Number.MAX_SAFE_INTEGER),
    maxClients: nonNegativeInt('maxClients', o.maxClients),
    writeTimeoutMs: delay('writeTimeout', o.writeTimeout),
    headers,
    preamble: preambleOf(o.retry),
    ...redisOption(o.redis),
  }
  return { options: Object.freeze(o), hub }
}

module.exports = { normalizeOptions, BASE_HEADERS }
