'use strict'
// Shared test helpers: servers on loopback ephemeral ports and a raw HTTP
// client that reads an SSE response byte by byte.

const http = require('node:http')
const net = require('node:net')
const SSE = require('../..')

/** Starts an http.Server with a fallback handler and an SSE on it. */
async function startSse(options = {}, fallback) {
  const server = http.createServer(
    fallback ||
      ((req, res) => {
        res.writeHead(404, { 'Content-Type': 'text/plain' })
        res.end(`fallback ${req.method} ${req.url}`)
      })
  )
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const sse = new SSE(server, options)
  return { server, sse, port: server.address().port, stop: () => stop(server, sse) }
}

async function stop(server, sse) {
  await sse.close()
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
}

/** A raw TCP client: sends a request, collects everything it receives. */
class RawClient {
  constructor(port, request) {
    this.chunks = []
    this.ended = false
    this.waiters = []
    this.socket = net.connect(port, '127.0.0.1', () => this.socket.write(request))
    this.socket.on('data', (chunk) => {
      this.chunks.push(chunk)
      if (this.onData) this.onData(chunk)
      if (this.waiters.length > 0) this._check()
    })
    this.socket.on('close', () => {
      this.ended = true
      this._check()
    })
    this.socket.on('error', () => {})
  }

  get data() {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)]
    return this.chunks[0] || Buffer.alloc(0)
  }

  get text() {
    return this.data.toString('latin1')
  }

  /** The response body with chunked framing removed (if it was chunked). */
  get body() {
    const text = this.text
    const split = text.indexOf('\r\n\r\n')
    if (split === -1) return ''
    const head = text.slice(0, split)
    const raw = text.slice(split + 4)
    return /transfer-encoding: chunked/i.test(head) ? dechunk(raw) : raw
  }

  get head() {
    const text = this.text
    const split = text.indexOf('\r\n\r\n')
    return split === -1 ? null : text.slice(0, split)
  }

  /** Resolves once `predicate(this)` holds; rejects after `ms`. */
  until(predicate, ms = 3000) {
    return new Promise((resolve, reject) => {
      const waiter = { predicate, resolve, timer: null }
      waiter.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        const seen = JSON.stringify(this.text)
        const shown = seen.length > 600 ? `${seen.slice(0, 300)} ... ${seen.slice(-300)}` : seen
        reject(new Error(`timed out; received ${this.data.length} bytes: ${shown}`))
      }, ms)
      this.waiters.push(waiter)
      this._check()
    })
  }

  bodyIncludes(text, ms) {
    return this.until((c) => c.body.includes(text), ms)
  }

  closed(ms) {
    return this.until((c) => c.ended, ms)
  }

  _check() {
    for (const waiter of [...this.waiters]) {
      if (waiter.predicate(this)) {
        clearTimeout(waiter.timer)
        this.waiters = this.waiters.filter((w) => w !== waiter)
        waiter.resolve(this)
      }
    }
  }

  destroy() {
    this.socket.destroy()
  }
}

function dechunk(raw) {
  let out = ''
  let at = 0
  for (;;) {
    const eol = raw.indexOf('\r\n', at)
    if (eol === -1) return out
    const size = parseInt(raw.slice(at, eol), 16)
    if (Number.isNaN(size) || size === 0) return out
    if (raw.length < eol + 2 + size) return out
    out += raw.slice(eol + 2, eol + 2 + size)
    at = eol + 2 + size + 2
  }
}

function get(port, path, headers = {}, version = '1.1', method = 'GET') {
  const lines = [`${method} ${path} HTTP/${version}`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
  return new RawClient(port, lines.join('\r\n') + '\r\n\r\n')
}

/** Resolves with the next 'connection' of `sse`. */
function nextConnection(sse) {
  return new Promise((resolve) => sse.once('connection', (client, query) => resolve({ client, query })))
}

/** Resolves once `fn()` is true, polling. */
async function eventually(fn, ms = 3000, what = 'condition') {
  const deadline = Date.now() + ms
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

module.exports = { startSse, RawClient, get, dechunk, nextConnection, eventually, SSE }
