'use strict'
// SSE: the `sse` 0.0.8 server API over the Rust hub. It takes over the
// http.Server's 'request' listeners, accepts matching requests as event
// streams and passes every other request to the listeners it took.

const { EventEmitter } = require('node:events')
const { NativeHub } = require('../binding')
const { Engine } = require('./engine')
const Client = require('./client')
const codes = require('./codes')
const { toFields, framed } = require('./message')
const { compilePattern, matchesPath, splitTarget } = require('./path')
const { HOP_BY_HOP, FRAMING, lastEventIdOf, queryOf, refusal } = require('./request')
const { canAdopt, NativeStream, FallbackStream, FetchStream, readRequest } = require('./transports')
const { normalizeOptions } = require('./options')

class SSE extends EventEmitter {
  /**
   * @param {import('http').Server | null} server the server to attach to;
   *   null to use only `handleRequest` (Express, Fastify routes)
   * @param {object} [options] see index.d.ts
   */
  constructor(server, options) {
    super()
    checkServer(server)
    const normalized = normalizeOptions(options)
    this.options = normalized.options
    this.server = server || null
    this._pattern = compilePattern(this.options.path)
    this._clients = new Map()
    /** A timer that never fires, ref'd while a client is open (see _addClient). */
    this._loopHold = null
    this._closing = null
    this._flushScheduled = false
    // The fields of the last client.send (see _sendFields).
    this._lastFields = null
    this._flush = () => {
      this._flushScheduled = false
      this._engine.flush()
    }
    /** Requests whose takeover failed (no fd left, peer already gone). */
    this._takeoverFailures = 0
    this._engine = createHub(normalized.hub, (id, reason, data) => this._onHubEvent(id, reason, data))
    /** Publishes go through Redis to every node (the `redis` option). */
    this._bus = normalized.hub.redisUrl !== undefined
    this._headers = Object.freeze(Object.fromEntries(normalized.hub.headers))
    this._headerNames = new Set(normalized.hub.headers.map(([name]) => name.toLowerCase()))
    /**
     * What a transport may use of this SSE (lib/transports): the engine,
     * the server and the end-of-tick flush; nothing else.
     */
    this._link = Object.freeze({
      engine: this._engine,
      server: this.server,
      flushSoon: () => this._flushSoon(),
    })
    if (this.server) this._attach(this.server)
  }

  _attach(server) {
    const previous = server.listeners('request')
    server.removeAllListeners('request')
    this._fallThrough = (req, res) => {
      // Nobody else to answer (and no listener added since): a 404, not a hang.
      if (previous.length === 0 && server.listenerCount('request') <= 1) return notFound(res)
      for (const listener of previous) listener.call(server, req, res)
    }
    server.on('request', (req, res) => this._onRequest(req, res))
    server.once('close', () => this.close())
  }

  _onRequest(req, res) {
    const { pathname, query } = splitTarget(req.url)
    if (!this._pattern.test(pathname)) return this._fallThrough(req, res)
    const verify = this.options.verifyRequest
    if (!verify) return this.handleRequest(req, res, query)
    let verdict
    try {
      verdict = verify(req)
    } catch (err) {
      return this._rejected(req, res, err)
    }
    if (verdict && typeof verdict.then === 'function') {
      verdict.then(
        (ok) => (ok ? this._acceptLater(req, res, query) : this._fallThrough(req, res)),
        (err) => this._rejected(req, res, err)
      )
      return
    }
    if (verdict) this.handleRequest(req, res, query)
    else this._fallThrough(req, res)
  }

  /**
   * A verifyRequest that throws or rejects: the app's handler answers.
   * The error goes to 'error' listeners; with none, a warning says so once
   * (an 'error' event with no listener would crash the process).
   */
  _rejected(req, res, err) {
    if (this.listenerCount('error') > 0) this.emit('error', err)
    else if (!this._warnedVerify) {
      this._warnedVerify = true
      process.emitWarning(`ssehub: verifyRequest threw (${err && err.message ? err.message : String(err)}); the request fell through to the app. Listen for 'error' on the SSE to handle these (this warning is shown once)`, { code: 'SSEHUB_VERIFY_REQUEST' })
    }
    this._fallThrough(req, res)
  }

  _acceptLater(req, res, query) {
    if (req.socket && req.socket.destroyed) return
    this.handleRequest(req, res, query)
  }

  _fallThrough(req, res) {
    // Without a server (handleRequest only) there is nobody to fall to.
    notFound(res)
  }

  /**
   * Accepts `req` as an event stream. Use it from a route handler (after
   * auth middleware); `query` may be a raw query string, an object, or
   * omitted to parse it from `req.url`.
   * @returns {Client} the client; already closed (reason 'refused') if the
   *   stream was refused (HEAD, past maxClients, during shutdown)
   */
  handleRequest(req, res, query) {
    if (this._closing) return this._refuse(req, res, 'shutdown')
    if (req.method === 'HEAD') {
      res.writeHead(200, this._fallbackHeaders(req, res))
      res.end()
      return Client.refused(this, req, res)
    }
    const stream = this._open(req, res)
    if (!stream) return Client.refused(this, req, res)
    const lastEventId = lastEventIdOf(req)
    const client = new Client(this, stream.id, req, res, stream, lastEventId)
    this._addClient(stream.id, client)
    this._welcome(client, queryOf(query, req.url), lastEventId)
    return client
  }

  /**
   * Emits 'connection', then replays what a resuming client missed; the
   * engine opens every client so (crates/core bus::open_client, as the
   * daemon's routes do): a resuming client's live events wait until its
   * replay is queued, so the seam has no gap and no duplicate.
   */
  _welcome(client, query, lastEventId) {
    this._engine.welcome(client.id, lastEventId, () => this.emit('connection', client, query))
  }

  /**
   * Opens the stream on the native transport if it can, else the fallback.
   * Returns null when the request was answered (refused) instead.
   */
  _open(req, res) {
    if (this.options.transport !== 'fallback' && canAdopt(req, res)) {
      try {
        return new NativeStream(this._link, req, res, this._extraHeaders(res))
      } catch (err) {
        if (!this._tookOverBadly(req, res, err)) return null
        // No fd to duplicate into (EMFILE): Node keeps the socket, JS writes.
      }
    }
    try {
      return new FallbackStream(this._link, req, res, this._fallbackHeaders(req, res))
    } catch (err) {
      if (this._tookOverBadly(req, res, err)) refuseBroken(res)
      return null
    }
  }

  /**
   * Answers a request whose stream could not open. Returns true when the
   * fallback transport should be tried instead.
   */
  _tookOverBadly(req, res, err) {
    const code = err && err.code
    if (code === codes.CLIENT_LIMIT || code === codes.CLOSED) {
      this._refuse(req, res, code === codes.CLIENT_LIMIT ? 'limit' : 'shutdown')
      return false
    }
    this._takeoverFailures++
    if (code === codes.NOT_CONNECTED) {
      // The peer is gone already: nobody to answer.
      if (req.socket && typeof req.socket.destroy === 'function') req.socket.destroy()
      return false
    }
    if (code !== codes.NO_FD && this.listenerCount('error') > 0) this.emit('error', err)
    // No fd left (EMFILE) or an unexpected refusal: Node keeps the socket;
    // the JS transport serves it, unless that fails too.
    if (res.headersSent || res.destroyed) return false
    return true
  }

  /**
   * Answers a stream request that cannot be served now: a 503 with
   * Retry-After, or with `refuse: 'retry'` a 200 stream that only says
   * `retry:` and ends, for EventSource gives up for good on a non-200.
   */
  _refuse(req, res, why) {
    if (!res.headersSent && !res.writableEnded) {
      const answer = refusal(this.options, why)
      let headers = answer.headers
      if (headers === null) {
        headers = { ...this._fallbackHeaders(req, res) }
        for (const name of Object.keys(headers)) if (name.toLowerCase() === 'connection') delete headers[name]
        if (req.httpVersionMajor < 2) headers.Connection = 'close'
      }
      res.writeHead(answer.status, headers)
      res.end(answer.body)
    } else if (!res.writableEnded) {
      res.end()
    }
    return Client.refused(this, req, res)
  }

  /**
   * The stream's head for `res.writeHead`: its own headers, then what
   * middleware set (arrays kept whole), framing headers dropped from `res`.
   */
  _fallbackHeaders(req, res) {
    for (const name of FRAMING) if (res.hasHeader(name)) res.removeHeader(name)
    const headers = { ...this._headers }
    for (const name of res.getHeaderNames()) {
      if (!this._headerNames.has(name)) headers[name] = res.getHeader(name)
    }
    if (req.httpVersionMajor >= 2) {
      // Connection-specific headers are forbidden in HTTP/2 (RFC 9113 8.2.2).
      for (const name of Object.keys(headers)) {
        if (HOP_BY_HOP.has(name.toLowerCase())) delete headers[name]
      }
    }
    return headers
  }

  /**
   * Headers the app already set on `res` (e.g. by middleware), as pairs;
   * the stream's own headers win over them. An array (Set-Cookie) stays
   * one header line per value; framing headers set upstream
   * (Content-Length, Transfer-Encoding) would corrupt the stream and are
   * dropped.
   */
  _extraHeaders(res) {
    const names = res.getHeaderNames().filter((name) => !this._headerNames.has(name) && !FRAMING.has(name))
    if (names.length === 0) return undefined
    const pairs = []
    for (const name of names) {
      const value = res.getHeader(name)
      if (Array.isArray(value)) for (const one of value) pairs.push([name, String(one)])
      else pairs.push([name, String(value)])
    }
    return pairs
  }

  /**
   * Wakes the writers of single sends once the current tick's code is done:
   * a loop of `client.send` costs one hand-off to Rust, not one per send.
   */
  _sendFields(id, fields) {
    // Code written for `sse` sends the same event to every client in a
    // loop: when the fields equal the last send's (compared by value, so a
    // changed argument always gets a fresh frame), Rust sends the frame it
    // already made, as a broadcast would; the ids of one tick cross napi
    // together (lib/engine.js).
    const last = this._lastFields
    if (last !== null && fields[0] === last[0] && fields[1] === last[1] && fields[2] === last[2] && fields[3] === last[3]) {
      return this._engine.sendLast(id)
    }
    const queued = framed(() => this._engine.send(id, ...fields))
    this._lastFields = fields
    return queued
  }

  /** `client.send(text)`: `_sendFields` without making the fields first. */
  _sendData(id, data) {
    const last = this._lastFields
    if (last !== null && last[1] === data && last[0] === undefined && last[2] === undefined && last[3] === undefined) {
      return this._engine.sendLast(id)
    }
    return this._sendFields(id, [undefined, data, undefined, undefined])
  }

  _flushSoon() {
    if (this._flushScheduled) return
    this._flushScheduled = true
    queueMicrotask(this._flush)
  }

  /** Reports from Rust: a batch for a fallback client, or a client's end. */
  _onHubEvent(id, reason, data) {
    if (id === 0) return this._onBusError(data)
    const client = this._clients.get(id)
    if (!client) return
    if (reason) this._removeClient(id)
    client._onHubEvent(reason, data)
    if (reason && this._closing && this._clients.size === 0) this._closing.resolve()
  }

  /**
   * Redis refused this node at start for a reason no retry mends (a wrong
   * password or ACL user, a Redis Cluster): an 'error' (code
   * ERR_SSEHUB_BUS) right away rather than only on each publish. With no
   * 'error' listener, a warning (an 'error' event with no listener would
   * crash the process). The bus keeps trying; publishes reject meanwhile.
   */
  _onBusError(data) {
    const err = Object.assign(new Error(String(data)), { code: codes.BUS })
    if (this.listenerCount('error') > 0) this.emit('error', err)
    else process.emitWarning(`${err.message}. Listen for 'error' on the SSE to handle this`, { code: 'SSEHUB_BUS' })
  }

  /**
   * Tracks an open client. While any is open the process stays up, as
   * with `sse`, whose streams are Node sockets: a native stream's socket
   * is Rust's, and the hub's reports to JS do not hold the event loop
   * (an idle hub must not), so one timer that never fires does.
   */
  _addClient(id, client) {
    this._clients.set(id, client)
    if (this._clients.size === 1) this._holdEventLoop(true)
  }

  _removeClient(id) {
    this._clients.delete(id)
    if (this._clients.size === 0) this._holdEventLoop(false)
  }

  _holdEventLoop(hold) {
    if (!this._loopHold) this._loopHold = setInterval(noop, 2 ** 30)
    if (hold) this._loopHold.ref()
    else this._loopHold.unref()
  }

  /**
   * Fetch API entry: accepts a Web `Request` as an event stream and returns
   * its `Response`, whose body the hub feeds (lib/transports/fetch.js).
   * Refusals follow the `refuse` option, as in `handleRequest`; HEAD gets
   * the headers only. Emits `'connection'` like `handleRequest`.
   */
  fetch(request) {
    // Everything the Request-like object is asked is asked here, before a
    // client slot is taken: a getter that throws, or a URL that does not
    // parse, must not cost a slot for good.
    const asked = readRequest(request)
    const headers = this._fetchHeaders()
    if (this._closing) return this._fetchRefused(headers, 'shutdown')
    if (asked.method === 'HEAD') return new Response(null, { status: 200, headers })
    let stream
    try {
      stream = new FetchStream(this._link)
    } catch (err) {
      const code = err && err.code
      if (code === codes.CLIENT_LIMIT || code === codes.CLOSED) return this._fetchRefused(headers, code === codes.CLIENT_LIMIT ? 'limit' : 'shutdown')
      throw err
    }
    try {
      const response = new Response(stream.body, { status: 200, headers })
      const client = new Client(this, stream.id, request, response, stream, asked.lastEventId)
      this._addClient(stream.id, client)
      stream.watch(asked.signal)
      this._welcome(client, asked.query, asked.lastEventId)
      return response
    } catch (err) {
      // Nobody will read a body that was never returned: give the slot back.
      stream.gone()
      throw err
    }
  }

  /** A Fetch Response's headers: the stream's own, without connection-specific ones. */
  _fetchHeaders() {
    const headers = new Headers()
    for (const [name, value] of Object.entries(this._headers)) {
      if (!HOP_BY_HOP.has(name.toLowerCase())) headers.append(name, value)
    }
    return headers
  }

  _fetchRefused(headers, why) {
    const answer = refusal(this.options, why)
    return new Response(answer.body, { status: answer.status, headers: answer.headers || headers })
  }

  /**
   * Sends one event to every client: framed once, fanned out in Rust.
   * With `redis`, to every client of every node: a Promise of its id.
   */
  broadcast(...args) {
    const fields = toFields(args)
    if (this._bus) return this._publishEverywhere(null, fields)
    if (fields === null) return 0
    return framed(() => this._engine.broadcast(...fields))
  }

  /**
   * Sends one event to the members of a channel (or of any of several
   * channels: a client in more than one gets it once). With `redis`, on
   * every node: a Promise of its id.
   */
  publish(channel, ...args) {
    const channels = channelNames(channel)
    const fields = toFields(args)
    if (this._bus) return this._publishEverywhere(channels, fields)
    if (fields === null) return 0
    return framed(() => this._engine.publish(channels, ...fields))
  }

  /**
   * Hands an event to Redis (publishes of one tick share one pipeline).
   * Resolves with its id once Redis took it; rejects with a coded Error
   * when it could not: a publish is never dropped silently.
   */
  _publishEverywhere(channels, fields) {
    if (fields === null) return Promise.resolve(null)
    return this._engine.busPublish(channels, ...fields).then(settled)
  }

  /** Number of connected clients. */
  get clients() {
    return this._clients.size
  }

  /** Counters of the hub. */
  stats() {
    const s = this._engine.stats()
    let fallback = 0
    for (const client of this._clients.values()) if (client.transport === 'fallback') fallback++
    return {
      ...s,
      nativeClients: this._clients.size - fallback,
      fallbackClients: fallback,
      takeoverFailures: this._takeoverFailures,
      bus: this._engine.busStats(),
    }
  }

  /**
   * Ends every stream cleanly (each gets what was sent before) and refuses
   * new ones. Resolves once every client has closed. Safe to call twice.
   */
  close() {
    if (this._closing) return this._closing.promise
    let resolve
    const promise = new Promise((r) => (resolve = r))
    this._closing = { promise, resolve }
    this._engine.closeAll()
    if (this._clients.size === 0) resolve()
    return promise
  }

  matchesPath(pathname, pattern) {
    return matchesPath(pathname, pattern)
  }
}

/** The hub, with the redis option's URL checked by Rust: a TypeError if bad. */
function createHub(options, onEvent) {
  try {
    return new Engine(new NativeHub(options, onEvent))
  } catch (err) {
    if (err && err.code === codes.INVALID_OPTION) throw Object.assign(new TypeError(err.message), { code: err.code })
    throw err
  }
}

/** A bus receipt into the Promise's outcome. */
function settled(receipt) {
  if (receipt.error) {
    const ErrorType = receipt.code === codes.INVALID_FIELD ? TypeError : Error
    throw Object.assign(new ErrorType(receipt.error), { code: receipt.code })
  }
  return receipt.id
}


/** A stream that could open on no transport: a 500 if nothing was sent yet. */
function refuseBroken(res) {
  if (res.headersSent) return res.destroy()
  res.writeHead(500, { 'Content-Type': 'text/plain' })
  res.end('SSE stream could not be opened\n')
}

function notFound(res) {
  if (res.headersSent) return res.end()
  res.writeHead(404, { 'Content-Type': 'text/plain' })
  res.end('Not Found\n')
}

function fail(message) {
  throw new TypeError(`ssehub: ${message}`)
}

/** The first argument: a server to attach to, or null; the common mix-ups named. */
function checkServer(server) {
  if (server === null || server === undefined) return
  if (typeof server === 'function' && (typeof server.listen === 'function' || typeof server.use === 'function')) {
    fail('new SSE() got an Express/Connect app; pass the http.Server that app.listen() returns, or use new SSE(null) and call sse.handleRequest(req, res) in a route')
  }
  if (typeof server === 'object' && typeof server.callback === 'function' && typeof server.use === 'function' && Array.isArray(server.middleware)) {
    fail('new SSE() got a Koa app; pass the http.Server that app.listen() returns, or use new SSE(null) and call sse.handleRequest(ctx.req, ctx.res) in a middleware (after ctx.respond = false)')
  }
  if (typeof server === 'object' && typeof server.register === 'function' && typeof server.route === 'function' && server.server) {
    fail('new SSE() got a Fastify instance; pass fastify.server, or use new SSE(null) and call sse.handleRequest(request.raw, reply.raw) in a route (after reply.hijack())')
  }
  if (!(server instanceof EventEmitter) || typeof server.listeners !== 'function') {
    fail(`new SSE() takes an http.Server, https.Server or http2 server (or null for handleRequest only), got ${typeof server}`)
  }
}

function channelNames(channel) {
  const list = Array.isArray(channel) ? channel : [channel]
  for (const name of list) {
    if (name === undefined || name === null || name === '') {
      fail(`publish() needs a channel name first, e.g. sse.publish('room', data), got ${name === '' ? "''" : String(name)}; use broadcast() to reach every client`)
    }
  }
  return list.map(String)
}

function noop() {}

module.exports = SSE
