'use strict'
// The Rust engine as the JS side reaches it: the addon's NativeHub behind
// one ordered entrance. Every call goes through `#ordered()`, which first
// hands over the sends gathered so far, so each call takes effect after
// every call made before it; the addon is held in a private field, so no
// code can reach it another way. (In Rust, the binding's front does the
// same for fan-outs a runtime thread pushes.)
//
// Code written for `sse` sends the same event to every client in a loop:
// each `client.send(sameArgs)` only records the client here (`sendLast`),
// and the ids cross into Rust together (`sendLastMany`: one lookup pass,
// one batch of wake-ups) at the end of the tick or before the next call.
// Bytes and their order on each stream are exactly those of one call per
// send.

// node:timers, not the global: Deno's global setInterval returns a number,
// with no ref()/unref().
const timers = require('node:timers')

class Engine {
  #native
  #ids = new Uint32Array(1024)
  #count = 0
  /** Publishes through Redis waiting for their receipt: ticket -> resolve. */
  #waiting = new Map()
  /** Holds the event loop open while publishes wait (the addon's callback does not). */
  #keepAlive = null

  /** @param {import('../binding').NativeHub} native */
  constructor(native) {
    this.#native = native
    native.onReceipts((receipts) => this.#settle(receipts))
  }

  /** Receipts come in batches (one call for all settled meanwhile). */
  #settle(receipts) {
    for (const receipt of receipts) {
      const resolve = this.#waiting.get(receipt.ticket)
      this.#waiting.delete(receipt.ticket)
      if (resolve) resolve(receipt)
    }
    if (this.#waiting.size === 0 && this.#keepAlive) this.#keepAlive.unref()
  }

  /** The addon, once the gathered sends are in. */
  #ordered() {
    if (this.#count > 0) this.#flushSends()
    return this.#native
  }

  #flushSends() {
    const count = this.#count
    this.#count = 0
    this.#native.sendLastMany(this.#ids.subarray(0, count))
  }

  /** Queues the last send's frame to `id` (see above); true. */
  sendLast(id) {
    if (this.#count === this.#ids.length) {
      const bigger = new Uint32Array(this.#ids.length * 2)
      bigger.set(this.#ids)
      this.#ids = bigger
    }
    this.#ids[this.#count++] = id
    return true
  }

  send(id, event, data, eventId, retry) {
    return this.#ordered().send(id, event, data, eventId, retry)
  }
  writeRaw(id, bytes) {
    return this.#ordered().writeRaw(id, bytes)
  }
  broadcast(event, data, id, retry) {
    return this.#ordered().broadcast(event, data, id, retry)
  }
  publish(channels, event, data, id, retry) {
    return this.#ordered().publish(channels, event, data, id, retry)
  }
  /** A Promise of the publish's receipt (`{ id, error, code }`). */
  busPublish(channels, event, data, id, retry) {
    const ticket = this.#ordered().busPublish(channels, event, data, id, retry)
    return new Promise((resolve) => {
      this.#waiting.set(ticket, resolve)
      if (this.#waiting.size === 1) {
        this.#keepAlive ??= timers.setInterval(() => {}, 2 ** 30)
        this.#keepAlive.ref()
      }
    })
  }
  /** Opens a client: held if it resumes, `emit` (its 'connection'), then its replay. */
  welcome(id, lastId, emit) {
    return this.#ordered().welcome(id, lastId, emit)
  }
  join(id, channel) {
    return this.#ordered().join(id, channel)
  }
  leave(id, channel) {
    return this.#ordered().leave(id, channel)
  }
  channelsOf(id) {
    return this.#ordered().channelsOf(id)
  }
  closeClient(id, reason) {
    return this.#ordered().closeClient(id, reason)
  }
  closeAll() {
    return this.#ordered().closeAll()
  }
  /** Bytes queued for `id`, the gathered sends counted. */
  queuedBytes(id) {
    return this.#ordered().queuedBytes(id)
  }
  /** Wakes the writers of everything queued (once a tick). */
  flush() {
    return this.#ordered().flush()
  }
  adopt(fd, http11, headers) {
    return this.#ordered().adopt(fd, http11, headers)
  }
  attach() {
    return this.#ordered().attach()
  }
  ack(id) {
    return this.#ordered().ack(id)
  }
  setNoDelay(id, on) {
    return this.#ordered().setNoDelay(id, on)
  }
  setKeepAlive(id, on, delayMs) {
    return this.#ordered().setKeepAlive(id, on, delayMs)
  }
  get clientCount() {
    return this.#ordered().clientCount
  }
  stats() {
    return this.#ordered().stats()
  }
  busStats() {
    return this.#ordered().busStats()
  }
}

module.exports = { Engine }
