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
const Client = require('../client')
const codes = require('../codes')

// Connection-specific headers belong to the server that writes the
// Response, not to the Response itself (and are forbidden in HTTP/2).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'])

/** One client's body: the hub's batches, enqueued as the reader takes them. */
class FetchStream {
  /**
   * Registers the client first: past `maxClients` or during shutdown this
   * throws (lib/codes.js) and no Response is made.
   * @param {import('../sse')} sse
   */
  constructor(sse) {
    this._engine = sse._engine
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
    if (reason === 'slow' || reason === 'timeout') this._controller.error(new Error(`ssehub: stream closed (${reason})`))
    else this._controller.close()
  }
}

/**
 * `sse.fetch(request)`: accepts a Fetch `Request` as an event stream and
 * returns its `Response`. Refusals (past `maxClients`, during shutdown)
 * follow the `refuse` option: a 503 with Retry-After, or a 200 that only
 * says `retry:`. HEAD gets the headers only. Emits `'connection'` like
 * `handleRequest`.
 * @param {import('../sse')} sse
 * @param {Request} request
 * @returns {Response}
 */
function fetchStream(sse, request) {
  // Everything the Request-like object is asked is asked here, before a
  // client slot is taken: a getter that throws, or a URL that does not
  // parse, must not cost a slot for good.
  const asked = readRequest(request)
  const headers = streamHeaders(sse)
  if (sse._closing) return refused(sse, headers, 'shutdown')
  if (asked.method === 'HEAD') return new Response(null, { status: 200, headers })
  let stream
  try {
    stream = new FetchStream(sse)
  } catch (err) {
    if (err && err.code === codes.CLIENT_LIMIT) return refused(sse, headers, 'limit')
    if (err && err.code === codes.CLOSED) return refused(sse, headers, 'shutdown')
    throw err
  }
  try {
    return open(sse, request, asked, stream, headers)
  } catch (err) {
    // Nobody will read a body that was never returned: give the slot back.
    stream.gone()
    throw err
  }
}

/** What fetchStream needs of the request, read once; throws a TypeError for a non-Request. */
function readRequest(request) {
  if (!request || typeof request.url !== 'string' || !request.headers || typeof request.headers.get !== 'function') {
    throw new TypeError('ssehub: sse.fetch() takes a Fetch API Request')
  }
  const url = new URL(request.url, 'http://localhost')
  return {
    method: request.method,
    query: querystring.parse(url.search.slice(1)),
    lastEventId: lastEventIdOf(request, url),
    signal: request.signal,
  }
}

/** The registered client's Response, its abort watch and its welcome. */
function open(sse, request, asked, stream, headers) {
  const response = new Response(stream.body, { status: 200, headers })
  const client = new Client(sse, stream.id, request, response, stream, asked.lastEventId)
  sse._addClient(stream.id, client)
  const { signal } = asked
  if (signal) {
    if (signal.aborted) stream.gone()
    else signal.addEventListener('abort', () => stream.gone(), { once: true })
  }
  sse._welcome(client, asked.query, asked.lastEventId)
  return response
}

function streamHeaders(sse) {
  const headers = new Headers()
  for (const [name, value] of Object.entries(sse._headers)) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) headers.append(name, value)
  }
  return headers
}

/** The same answers as `handleRequest` gives a refused stream. */
function refused(sse, headers, why) {
  const ms = sse.options.retryAfter
  if (sse.options.refuse === 'retry') return new Response(`retry: ${ms}\n\n`, { status: 200, headers })
  return new Response(why === 'limit' ? 'Too many SSE clients\n' : 'SSE server is shutting down\n', {
    status: 503,
    headers: { 'Content-Type': 'text/plain', 'Retry-After': String(Math.ceil(ms / 1000)) },
  })
}

function lastEventIdOf(request, url) {
  const header = request.headers.get('last-event-id')
  if (header !== null) return header
  const values = url.searchParams.getAll('lastEventId')
  return values.length > 0 ? values[values.length - 1] : null
}

module.exports = { fetchStream, FetchStream }
