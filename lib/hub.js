'use strict'
// The Rust hub as the JS side uses it: NativeHub's methods, with one
// batching rule. Code written for `sse` sends the same event to every
// client in a loop; each `client.send(sameArgs)` only records the client
// here (`sendLast`), and the ids cross into Rust together (`sendLastMany`:
// one lookup pass, one batch of wake-ups) at the end of the tick, or
// before any call whose effect must come after those sends: another
// send, a raw write, a close, a broadcast, a replay. Bytes and their order
// on each stream are exactly those of one call per send.

class Hub {
  /** @param {import('../binding').NativeHub} native */
  constructor(native) {
    this.native = native
    this._ids = new Uint32Array(1024)
    this._count = 0
  }

  /** Queues the last send's frame to `id` (see above); true. */
  sendLast(id) {
    if (this._count === this._ids.length) {
      const bigger = new Uint32Array(this._ids.length * 2)
      bigger.set(this._ids)
      this._ids = bigger
    }
    this._ids[this._count++] = id
    return true
  }

  /** Hands the gathered sends to Rust, in the order they were made. */
  flushSends() {
    if (this._count === 0) return
    const count = this._count
    this._count = 0
    this.native.sendLastMany(this._ids.subarray(0, count))
  }

  // Calls that queue bytes or end streams: the gathered sends go first.
  send(id, event, data, eventId, retry) {
    this.flushSends()
    return this.native.send(id, event, data, eventId, retry)
  }
  writeRaw(id, bytes) {
    this.flushSends()
    return this.native.writeRaw(id, bytes)
  }
  broadcast(event, data, id, retry) {
    this.flushSends()
    return this.native.broadcast(event, data, id, retry)
  }
  publish(channels, event, data, id, retry) {
    this.flushSends()
    return this.native.publish(channels, event, data, id, retry)
  }
  busPublish(channels, event, data, id, retry) {
    this.flushSends()
    return this.native.busPublish(channels, event, data, id, retry)
  }
  resume(id, lastId) {
    this.flushSends()
    return this.native.resume(id, lastId)
  }
  closeClient(id, reason) {
    this.flushSends()
    return this.native.closeClient(id, reason)
  }
  closeAll() {
    this.flushSends()
    return this.native.closeAll()
  }
  /** Bytes queued for `id`, the gathered sends counted. */
  queuedBytes(id) {
    this.flushSends()
    return this.native.queuedBytes(id)
  }
  /** Wakes the writers of everything queued (once a tick). */
  flush() {
    this.flushSends()
    return this.native.flush()
  }

  // Calls that queue nothing.
  adopt(fd, http11, headers) {
    return this.native.adopt(fd, http11, headers)
  }
  attach() {
    return this.native.attach()
  }
  ack(id) {
    return this.native.ack(id)
  }
  setNoDelay(id, on) {
    return this.native.setNoDelay(id, on)
  }
  setKeepAlive(id, on, delayMs) {
    return this.native.setKeepAlive(id, on, delayMs)
  }
  join(id, channel) {
    return this.native.join(id, channel)
  }
  leave(id, channel) {
    return this.native.leave(id, channel)
  }
  channelsOf(id) {
    return this.native.channelsOf(id)
  }
  hold(id) {
    return this.native.hold(id)
  }
  get clientCount() {
    return this.native.clientCount
  }
  stats() {
    this.flushSends()
    return this.native.stats()
  }
  busStats() {
    return this.native.busStats()
  }
}

module.exports = { Hub }
