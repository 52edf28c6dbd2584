'use strict'
// The Fetch API transport: `sse.fetch(request)` answers a Web-standard
// `Request` with a `Response` whose body is a `ReadableStream` fed by the
// hub, for servers built on Fetch handlers (Hono on Node, the route
// handlers of modern frameworks). As in the JS fallback, the hub frames,
// fans out, beats and replays, and hands each batch to JS; here JS enqueues
// it on the body instead of writing `res`. Same bytes, same client API
// (`client.transport` is 'fallback': JS writes the bytes); the client's
// `req` is the Request and its `res` the Response.
//
// The hub sends the next batch only once the reader has taken the last
// (`ack`): what waits for a slow reader waits in the client's bounded queue
// in Rust, where `maxQueueBytes` applies exactly as on the other transports.

const querystring = require('node:querystring')
const { lastEventId } = require('../request')
const { flushes } = require('../reasons')

const IS_DENO = typeof globalThis.Deno === 'object' && globalThis.Deno !== null

/** One client's body: the hub's batches, enqueued as the reader takes them. */
class FetchStream {
  /**
   * Registers the client first: past `maxClients` or during shutdown this
   * throws (lib/codes.js) and no Response is made.
   * @param {{ engine: import('../engine').Engine }} link what the SSE lends its transports
   */
  constructor(link) {
    this._engine = link.engine
    this.kind = 'fallback'
    this.id = this._engine.attach()
    this._done = false
    /** A batch was enqueued and the reader has not taken it yet. */
    this._unacked = false
    this.body = new ReadableStream({
      start: (controller) => {
        this._controller = controller
      },
      pull: () => {
        if (!this._unacked) return
        this._unacked = false
        this._engine.ack(this.id)
      },
      cancel: () => this.gone(),
    })
  }

  /** Ends the stream when the request is aborted. */
  watch(signal) {
    if (!signal) return
    if (signal.aborted) this.gone()
    else signal.addEventListener('abort', () => this.gone(), { once: true })
  }

  /** The reader went away (cancelled the body, or the request was aborted). */
  gone() {
    if (this._done) return
    this._done = true
    this._engine.closeClient(this.id, 'client')
  }

  /** Enqueues one batch from the hub; the next comes once the reader took it. */
  deliver(buffer) {
    if (this._done) return
    this._controller.enqueue(buffer)
    if (this._controller.desiredSize > 0) this._engine.ack(this.id)
    else this._unacked = true
  }

  /** Ends the body after the hub reported the close; slow or stalled readers get an error. */
  ended(reason) {
    if (this._done) return
    this._done = true
    if (!flushes(reason)) this._controller.error(new Error(`ssehub: stream closed (${reason})`))
    else this._controller.close()
  }
}

/** What `sse.fetch` needs of the request, read once; throws a TypeError for a non-Request. */
function readRequest(request) {
  if (!request || typeof request.url !== 'string' || !request.headers || typeof request.headers.get !== 'function') {
    throw new TypeError('ssehub: sse.fetch() takes a Fetch API Request')
  }
  const url = new URL(request.url, 'http://localhost')
  const query = url.search.slice(1)
  return {
    method: request.method,
    query: querystring.parse(query),
    lastEventId: lastEventId(request.headers.get('last-event-id'), query),
    // Not on Deno: Deno.serve cancels the body when the client leaves (that
    // is enough), and merely reading `request.signal` there prints a
    // deprecation warning (it also aborts after every completed response).
    signal: IS_DENO ? null : request.signal,
  }
}

module.exports = { FetchStream, readRequest }
