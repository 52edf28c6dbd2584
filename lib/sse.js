'use strict'
// SSE: the `sse` 0.0.8 server API over the Rust hub. It takes over the
// http.Server's 'request' listeners, accepts matching requests as event
// streams and passes every other request to the listeners it took.

const { EventEmitter } = require('node:events')
const querystring = require('node:querystring')
const { NativeHub } = require('../binding')
const Client = require('./client')
const { toFields, framed } = require('./message')
const { compilePattern, matchesPath, splitTarget } = require('./path')
const native = require('./transports/native')
const { FallbackStream } = require('./transports/fallback')
const { fetchStream } = require('./transports/fetch')
const { normalizeOptions } = require('./options')

class SSE extends EventEmitter {
  /**
   * @param {import('http').Server | null} server the server to attach to;
   *   null to use only `handleRequest` (Express, Fastify routes)
   * @param {object} [options] see index.d.ts
   */
  constructor(server, options) {
    super()
    this.options = normalizeOptions(options)
    this.server = server || null
    this._pattern = compilePattern(this.options.path)
    this._clients = new Map()
    this._closing = null
    this._flushScheduled = false
    this._flush = () => {
      this._flushScheduled = false
      this._native.flush()
    }
    this._native = new NativeHub(this.options.hub, (id, reason, data) => this._onHubEvent(id, reason, data))
    this._headers = Object.freeze(Object.fromEntries(this.options.hub.headers))
    this._headerNames = new Set(this.options.hub.headers.map(([name]) => name.toLowerCase()))
    if (this.server) this._attach(this.server)
  }

  _attach(server) {
    const previous = server.listeners('request')
    server.removeAllListeners('request')
    this._fallThrough = (req, res) => {
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

  /** A verifyRequest that throws or rejects: the app's handler answers. */
  _rejected(req, res, err) {
    if (this.listenerCount('error') > 0) this.emit('error', err)
    this._fallThrough(req, res)
  }

  _acceptLater(req, res, query) {
    if (req.socket && req.socket.destroyed) return
    this.handleRequest(req, res, query)
  }

  _fallThrough(req, res) {
    // Without a server (handleRequest only) there is nobody to fall to.
    res.statusCode = 404
    res.end()
  }

  /**
   * Accepts `req` as an event stream. Use it from a route handler (after
   * auth middleware); `query` may be a raw query string, an object, or
   * omitted to parse it from `req.url`.
   * @returns {Client | null} the client, or null if the stream was refused
   */
  handleRequest(req, res, query) {
    if (this._closing) {
      refuse(res, 503, 'SSE server is shutting down\n')
      return null
    }
    if (req.method === 'HEAD') {
      res.writeHead(200, this._headers)
      res.end()
      return null
    }
    const stream = this._open(req, res)
    if (!stream) return null
    const lastEventId = lastEventIdOf(req)
    const client = new Client(this, stream.id, req, res, stream.transport, lastEventId)
    client._fallback = stream.fallback
    this._clients.set(stream.id, client)
    this.emit('connection', client, parseQuery(query, req))
    if (lastEventId !== null && this.options.history > 0 && !client.closed) {
      this._native.replay(client.id, lastEventId)
    }
    return client
  }

  /** Opens the stream on the native transport if it can, else the fallback. */
  _open(req, res) {
    try {
      if (this.options.transport !== 'fallback' && native.canAdopt(req, res)) {
        const id = native.adopt(this._native, req, res, this._extraHeaders(res))
        return { id, transport: 'native', fallback: null }
      }
      const fallback = new FallbackStream(this._native, req, res, this._fallbackHeaders(req, res), this.options.maxQueueBytes)
      return { id: fallback.id, transport: 'fallback', fallback }
    } catch (err) {
      if (/client limit/.test(err.message)) refuse(res, 503, 'Too many SSE clients\n')
      else if (/hub is closed/.test(err.message)) refuse(res, 503, 'SSE server is shutting down\n')
      else throw err
      return null
    }
  }

  _fallbackHeaders(req, res) {
    const headers = Object.assign({}, this._headers, Object.fromEntries(this._extraHeaders(res) || []))
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
   * the stream's own headers win over them.
   */
  _extraHeaders(res) {
    const names = res.getHeaderNames().filter((name) => !this._headerNames.has(name))
    if (names.length === 0) return undefined
    return names.map((name) => [name, String(res.getHeader(name))])
  }

  /**
   * Wakes the writers of single sends once the current tick's code is done:
   * a loop of `client.send` costs one hand-off to Rust, not one per send.
   */
  _flushSoon() {
    if (this._flushScheduled) return
    this._flushScheduled = true
    queueMicrotask(this._flush)
  }

  /** Reports from Rust: a batch for a fallback client, or a client's end. */
  _onHubEvent(id, reason, data) {
    const client = this._clients.get(id)
    if (!client) return
    if (data && client._fallback) client._fallback.write(data)
    if (reason) {
      this._clients.delete(id)
      if (client._fallback) client._fallback.end(reason)
      client._ended(reason)
      if (this._closing && this._clients.size === 0) this._closing.resolve()
    }
  }

  /**
   * Fetch API entry: answers a Web `Request` with a `Response` whose body
   * stream the hub feeds (lib/transports/fetch.js).
   */
  fetch(request) {
    return fetchStream(this, request)
  }

  /** Sends one event to every client: framed once, fanned out in Rust. */
  broadcast(...args) {
    const fields = toFields(args)
    if (fields === null) return 0
    return framed(() => this._native.broadcast(...fields))
  }

  /**
   * Sends one event to the members of a channel (or of any of several
   * channels: a client in more than one gets it once).
   */
  publish(channel, ...args) {
    const fields = toFields(args)
    if (fields === null) return 0
    const channels = Array.isArray(channel) ? channel.map(String) : [String(channel)]
    return framed(() => this._native.publish(channels, ...fields))
  }

  /** Number of connected clients. */
  get clients() {
    return this._clients.size
  }

  /** Counters of the hub. */
  stats() {
    const s = this._native.stats()
    let fallback = 0
    for (const client of this._clients.values()) if (client._fallback) fallback++
    return { ...s, nativeClients: this._clients.size - fallback, fallbackClients: fallback }
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
    this._native.closeAll()
    if (this._clients.size === 0) resolve()
    return promise
  }

  matchesPath(pathname, pattern) {
    return matchesPath(pathname, pattern)
  }
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'])

function refuse(res, status, message) {
  if (res.headersSent) return res.end()
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Retry-After': '5' })
  res.end(message)
}

function lastEventIdOf(req) {
  const header = req.headers['last-event-id']
  if (typeof header === 'string') return header
  const { query } = splitTarget(req.url)
  if (query === null) return null
  const value = querystring.parse(query).lastEventId
  if (Array.isArray(value)) return value[value.length - 1]
  return typeof value === 'string' ? value : null
}

function parseQuery(query, req) {
  if (query && typeof query === 'object') return query
  if (typeof query === 'string') return querystring.parse(query)
  if (query === undefined) return querystring.parse(splitTarget(req.url).query || '')
  return querystring.parse('')
}

module.exports = SSE
