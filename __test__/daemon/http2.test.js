'use strict'
// HTTP/2 on every mode: h2c with prior knowledge on the plain ports and h2
// chosen by ALPN under TLS, with Node's own http2 client. Many streams on
// one connection (what lets a browser open a seventh tab on one origin),
// each one a hub client that gets every event.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http2 = require('node:http2')
const path = require('node:path')
const net = require('node:net')
const tls = require('node:tls')
const { start, raw } = require('../helpers/daemon')

const FIXTURES = path.join(__dirname, '..', 'fixtures')
const CERT = path.join(FIXTURES, 'test-cert.pem')
const KEY = path.join(FIXTURES, 'test-key.pem')
const SECRET = 'http2-secret-0123456789abcdef'
const STREAMS = 10

/** Opens `n` streams on one HTTP/2 session; resolves once all have headers. */
async function openStreams(session, n, headers) {
  const streams = []
  for (let i = 0; i < n; i++) {
    const req = session.request({ ':path': headers[':path'], ...headers })
    const s = { req, text: '', status: 0 }
    req.setEncoding('utf8')
    req.on('data', (d) => { s.text += d })
    s.head = new Promise((resolve, reject) => {
      req.on('response', (h) => { s.status = h[':status']; s.headers = h; resolve() })
      req.on('error', reject)
    })
    streams.push(s)
  }
  await Promise.all(streams.map((s) => s.head))
  return streams
}

async function until(fn, ms = 5000, what = 'condition') {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (fn()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function connect(url) {
  const session = http2.connect(url, { rejectUnauthorized: false })
  session.on('error', () => {})
  return session
}

describe('channels over HTTP/2', () => {
  for (const secure of [false, true]) {
    test(`${secure ? 'h2 over TLS (ALPN)' : 'h2c, prior knowledge'}: ${STREAMS} streams on one connection all get every event`, async () => {
      const tlsArgs = secure ? ['-c', CERT, '-k', KEY] : []
      const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--heartbeat', '0', ...tlsArgs], { ready: /Web server listening on port (\d+)[\s\S]*?Commands/ })
      let session
      try {
        const port = Number((await d.ready)[1])
        const ctl = Number(d.stdout.match(/Controller listening on port (\d+)/)[1])
        session = connect(`${secure ? 'https' : 'http'}://127.0.0.1:${port}`)
        const streams = await openStreams(session, STREAMS, { ':path': '/news' })
        for (const s of streams) {
          assert.equal(s.status, 200)
          assert.equal(s.headers['content-type'], 'text/event-stream')
          assert.equal(s.headers.connection, undefined, 'no connection-specific header on h2')
        }
        assert.equal(session.alpnProtocol, secure ? 'h2' : 'h2c')
        // With -c the control port speaks TLS as well (as SSE-Server's).
        const c = secure ? tls.connect({ port: ctl, host: '127.0.0.1', rejectUnauthorized: false }) : net.connect(ctl, '127.0.0.1')
        await new Promise((r) => c.on(secure ? 'secureConnect' : 'connect', r))
        c.end('news/flash = one\nnews = two\n')
        await until(() => streams.every((s) => s.text.includes('data: two\n\n')), 5000, 'both events on every stream')
        for (const s of streams) assert.equal(s.text, 'event: flash\ndata: one\n\ndata: two\n\n')
        // A one-shot query on the same connection is answered too.
        const q = session.request({ ':path': '/news?e=three' })
        const status = await new Promise((r) => q.on('response', (h) => r(h[':status'])))
        q.resume()
        assert.equal(status, 200)
        await until(() => streams.every((s) => s.text.includes('data: three')), 5000, 'the query\'s event')
      } finally {
        if (session) session.destroy()
        await d.stop()
      }
    })
  }
})

describe('jwt and demo over HTTP/2', () => {
  let jwt, demo, jport, jctl, dport
  before(async () => {
    jwt = start(['jwt', '-secret', SECRET, '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0', '-tls-cert', CERT, '-tls-key', KEY, '-heartbeat', '0'],
      { ready: /Listening for clients on 127\.0\.0\.1:(\d+), control on 127\.0\.0\.1:(\d+)/ })
    const m = await jwt.ready
    jport = Number(m[1])
    jctl = Number(m[2])
    demo = start(['demo'], { env: { PORT: '0', HOST: '127.0.0.1', SSEHUB_DEMO_INTERVAL_MS: '50' }, ready: /Starting sse-server at :(\d+)/ })
    dport = Number((await demo.ready)[1])
  })
  after(async () => {
    await jwt.stop()
    await demo.stop()
  })

  test('jwt over TLS: per-user streams on one h2 connection get their emits', async () => {
    const body = 'userId=u1&channel=c&exp=60'
    const mint = await raw(jctl, `POST /token/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      { until: (t) => /eyJ[\w-]+\.[\w-]+\.[\w-]+$/.test(t) })
    const token = mint.match(/(eyJ[\w-]+\.[\w-]+\.[\w-]+)$/)[1]
    const session = connect(`https://127.0.0.1:${jport}`)
    try {
      const streams = await openStreams(session, STREAMS, { ':path': '/events/', authorization: `Bearer ${token}` })
      assert.ok(streams.every((s) => s.status === 200))
      const emit = 'userId=u1&channel=c&payload=hello'
      await raw(jctl, `POST /emit/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${emit.length}\r\n\r\n${emit}`, { until: (t) => t.endsWith('OK') })
      await until(() => streams.every((s) => s.text === 'hello\n'), 5000, 'the emit on every stream')
    } finally {
      session.destroy()
    }
  })

  test('demo over h2c: numbered streams with count end cleanly', async () => {
    const session = connect(`http://127.0.0.1:${dport}`)
    try {
      const streams = await openStreams(session, STREAMS, { ':path': '/stream?count=2' })
      assert.ok(streams.every((s) => s.status === 200 && s.headers['x-expected-events'] === '2'))
      await Promise.all(streams.map((s) => new Promise((r) => s.req.on('end', r))))
      for (const s of streams) {
        assert.match(s.text, /^id: hello\ndata: Hello, 127\.0\.0\.1:\d+!\n\n/)
        assert.match(s.text, /id: message-1\n[\s\S]*id: message-2\n/)
      }
    } finally {
      session.destroy()
    }
  })
})
