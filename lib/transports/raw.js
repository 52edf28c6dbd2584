'use strict'
// `res.write` and `res.end` by user code, on either transport: the bytes go
// into the client's queue in the hub, in order with its events (as with
// `sse`, where both went through `res`), and nothing written after the end
// is kept.

/**
 * Binds `write` and `end` of `res` to `stream`, which has `id`, `_link`,
 * `_ended` and `_endByUser()`. Returns the original methods.
 */
function bindRaw(stream, res) {
  const original = { write: res.write, end: res.end }
  res.write = function write(chunk, encoding, callback) {
    return writeRaw(stream, chunk, encoding, callback)
  }
  res.end = function end(chunk, encoding, callback) {
    endRaw(stream, res, chunk, encoding, callback)
    return this
  }
  Object.defineProperty(res, 'writableEnded', {
    get: () => stream._ended || Boolean(res.finished),
    configurable: true,
  })
  return original
}

/** Queues raw bytes for the client. False (and an error to `callback`) once it ended. */
function writeRaw(stream, chunk, encoding, callback) {
  if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined]
  if (stream._ended) {
    const err = Object.assign(new Error('write after end'), { code: 'ERR_STREAM_WRITE_AFTER_END' })
    if (typeof callback === 'function') process.nextTick(callback, err)
    return false
  }
  const queued = stream._link.engine.writeRaw(stream.id, toBuffer(chunk, encoding))
  stream._link.flushSoon()
  if (typeof callback === 'function') process.nextTick(callback, queued ? null : Object.assign(new Error('the client is gone'), { code: 'ERR_STREAM_DESTROYED' }))
  return queued
}

/** The last chunk, then the stream ends like `client.close()`. */
function endRaw(stream, res, chunk, encoding, callback) {
  if (typeof chunk === 'function') [callback, chunk] = [chunk, undefined]
  if (typeof encoding === 'function') [callback, encoding] = [encoding, undefined]
  if (chunk !== undefined && chunk !== null && !stream._ended) writeRaw(stream, chunk, encoding)
  if (typeof callback === 'function') res.once('finish', callback)
  if (stream._ended) return
  stream._ended = true
  stream._link.engine.closeClient(stream.id, 'server')
}

function toBuffer(chunk, encoding) {
  if (typeof chunk === 'string') return Buffer.from(chunk, typeof encoding === 'string' ? encoding : 'utf8')
  if (Buffer.isBuffer(chunk)) return chunk
  if (ArrayBuffer.isView(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  throw Object.assign(new TypeError('The "chunk" argument must be of type string or an instance of Buffer or Uint8Array'), { code: 'ERR_INVALID_ARG_TYPE' })
}

module.exports = { bindRaw, writeRaw, endRaw }
