'use strict'
// The Fetch API transport: `sse.fetch(request)` answers a Web-standard
// `Request` with a `Response` whose body is a `ReadableStream` fed by the
// hub, for servers built on Fetch handlers (Hono on Node, Deno-style
// `serve`, the route handlers of modern frameworks). As in the JS fallback,
// the hub frames, fans out, beats and replays, and hands each batch to JS;
// here JS enqueues it on the stream instead of writing `res`. Same bytes,
// same client API: the client's `req` is the Request, its `res` the Response.

const querystring = require('node:querystring')
const Client = require('../client')

// Connection-specific headers belong to the server that writes the
// Response, not to the Response itself (and are forbidden in HTTP/2).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'])

/** One stream's writer: enqueues the hub's batches on a ReadableStream. */
class FetchStream {
  /**
   * @param {object} native the NativeHub
   * @param {number} maxQueueBytes bytes the body may hold unread before the client is slow
   */
  constructor(native, maxQueueBytes) {
    this.native = native
    this.maxQueueBytes = maxQueueBytes
    this.controller = null
    this.done = false
    /** The biggest batch enqueued since the reader last emptied the queue. */
    this.biggest = 0
    this.id = native.attach()
    this.body = new ReadableStream(
      {
        start: (controller) => {
          this.controller = controller
        },
        cancel: () => this.gone(),
      },
      { highWaterMark: maxQueueBytes, size: (chunk) => chunk.byteLength }
    )
  }

  /** The reader went away (cancelled the body, or the request was aborted). */
  gone() {
    this.done = true
    this.native.closeClient(this.id, 'client')
  }

  /** Queues one batch; a reader that stops reading is closed as slow. */
  write(buffer) {
    if (this.done) return
    const queued = this.maxQueueBytes - this.controller.desiredSize
    // As in the other transports, one batch bigger than the limit is not
    // counted, only the backlog beside it.
    if (queued <= 0) this.biggest = 0
    this.biggest = Math.max(this.biggest, buffer.length)
    this.controller.enqueue(buffer)
    const uncounted = this.biggest > this.maxQueueBytes ? this.biggest : 0
    if (queued + buffer.length - uncounted > this.maxQueueBytes) this.native.closeClient(this.id, 'slow')
  }

  /** Ends the body after the hub reported the close; slow or stalled readers get an error. */
  end(reason) {
    if (this.done) return
    this.done = true
    if (reason === 'slow' || reason === 'timeout') this.controller.error(new Error(`ssehub: stream closed (${reason})`))
    else this.controller.close()
  }
}

/**
 * `sse.fetch(request)`: accepts a Fetch `Request` as an event stream and
 * returns its `Response` (503 while shutting down or past `maxClients`;
 * headers only for HEAD). Emits `'connection'` like `handleRequest`.
 * @param {import('../sse')} sse
 * @param {Request} request
 * @returns {Response}
 */
function fetchStream(sse, request) {
  if (!request || typeof request.url !== 'string' || !request.headers || typeof request.headers.get !== 'function') {
    throw new TypeError('ssehub: sse.fetch() takes a Fetch API Request')
  }
  const headers = streamHeaders(sse)
  if (sse._closing) return refused(503, 'SSE server is shutting down\n')
  if (request.method === 'HEAD') return new Response(null, { status: 200, headers })
  let stream
  try {
    stream = new FetchStream(sse._native, sse.options.maxQueueBytes)
  } catch (err) {
    if (/client limit/.test(err.message)) return refused(503, 'Too many SSE clients\n')
    if (/hub is closed/.test(err.message)) return refused(503, 'SSE server is shutting down\n')
    throw err
  }
  const response = new Response(stream.body, { status: 200, headers })
  const url = new URL(request.url, 'http://localhost')
  const lastEventId = lastEventIdOf(request, url)
  const client = new Client(sse, stream.id, request, response, 'fallback', lastEventId)
  client._fallback = stream
  sse._clients.set(stream.id, client)
  if (request.signal) {
    if (request.signal.aborted) stream.gone()
    else request.signal.addEventListener('abort', () => stream.done || stream.gone(), { once: true })
  }
  sse.emit('connection', client, querystring.parse(url.search.slice(1)))
  if (lastEventId !== null && sse.options.history > 0 && !client.closed) {
    sse._native.replay(client.id, lastEventId)
  }
  return response
}

function streamHeaders(sse) {
  const headers = new Headers()
  for (const [name, value] of Object.entries(sse._headers)) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) headers.append(name, value)
  }
  return headers
}

function refused(status, message) {
  return new Response(message, { status, headers: { 'Content-Type': 'text/plain', 'Retry-After': '5' } })
}

function lastEventIdOf(request, url) {
  const header = request.headers.get('last-event-id')
  if (header !== null) return header
  const values = url.searchParams.getAll('lastEventId')
  return values.length > 0 ? values[values.length - 1] : null
}

module.exports = { fetchStream, FetchStream }
