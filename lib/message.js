'use strict'
// The `send` argument forms of the npm package `sse` 0.0.8, turned into the
// four SSE fields the native framer takes. Unlike `sse`, every JS type is
// handled: numbers and booleans are stringified, objects are JSON, and a
// value that cannot be sent throws a TypeError before anything is written.

const codes = require('./codes')

/**
 * @typedef {[event: string|undefined, data: string|undefined, id: string|undefined, retry: number|undefined]} Fields
 */

function isPlainObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value) && !ArrayBuffer.isView(value)
}

function scalarToString(value, field) {
  switch (typeof value) {
    case 'string':
      return value
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value)
    default:
      throw new TypeError(`ssehub: '${field}' must be a string or a number, got ${describe(value)}`)
  }
}

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`
}

/** An optional single-line field: undefined, null and '' mean "absent". */
function optionalField(value, field) {
  if (value === undefined || value === null || value === '') return undefined
  return scalarToString(value, field)
}

function dataField(value) {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'object') return scalarToString(value, 'data')
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8')
  return JSON.stringify(value)
}

function retryField(value) {
  if (value === undefined || value === null || value === '') return undefined
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new TypeError(`ssehub: 'retry' must be a non-negative integer (milliseconds), got ${String(value)}`)
  }
  return n
}

/**
 * Normalises the arguments of `send`/`broadcast`:
 * `(data)`, `(event, data)`, `(event, data, id)` or `({ event, data, id, retry })`.
 * Returns null when there is nothing to send (`send()`, `send(null)`).
 * @returns {Fields|null}
 */
function toFields(args) {
  if (args.length === 0) return null
  const first = args[0]
  if (isPlainObject(first)) {
    return [optionalField(first.event, 'event'), dataField(first.data), optionalField(first.id, 'id'), retryField(first.retry)]
  }
  if (args.length === 1) {
    if (first === undefined || first === null) return null
    return [undefined, dataField(first), undefined, undefined]
  }
  return [optionalField(first, 'event'), dataField(args[1]), optionalField(args[2], 'id'), undefined]
}

/** Runs a native framing call, turning its refusal into a TypeError. */
function framed(call) {
  try {
    return call()
  } catch (err) {
    if (err && err.code === codes.INVALID_FIELD) throw Object.assign(new TypeError(err.message), { code: err.code })
    throw err
  }
}

module.exports = { toFields, framed }
