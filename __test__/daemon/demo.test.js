'use strict'
// `ssehub demo`: the mpetazzoni/sse-server drop-in, checked against the
// captures in /work/shared/reference/transcripts/mpetazzoni-*.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { EventSource } = require('eventsource')
const { start, runToEnd, raw, openStream, split, dechunk, maskDate, chunkedDone } = require('../helpers/daemon')

const VECTORS = new Map(
  fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'mpetazzoni-random-vectors.tsv'), 'latin1')
    .split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('\t'))
)

const get = (target, headers = '') => `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${headers}\r\n`

/** The SSE text expected for messages `from..to` (inclusive), time masked. */
function messages(from, to) {
  let out = ''
  for (let n = from; n <= to; n++) {
    out += `id: message-${n}\ndata: {\ndata:   "time": T,\ndata:   "random": "${VECTORS.get(String(n))}"\ndata: }\n\n`
  }
  return out
}
const maskTime = (s) => s.replace(/"time": \d+,/g, '"time": T,')

describe('demo mode', () => {
  let d, port
  before(async () => {
    d = start(['demo'], { env: { PORT: '0', SSEHUB_DEMO_INTERVAL_MS: '20' }, ready: /Starting sse-server at :(\d+) \.\.\./ })
    port = Number((await d.ready)[1])
  })
  after(() => d.stop())

  test('count=3: the captured headers and events, then the chunked terminator', async () => {
    const resp = await raw(port, get('/stream?count=3'), { until: chunkedDone })
    const { head, body } = split(resp)
    assert.equal(maskDate(head),
      'HTTP/1.1 200 OK\r\n' +
      'Access-Control-Allow-Headers: *\r\n' +
      'Access-Control-Allow-Methods: GET\r\n' +
      'Access-Control-Allow-Origin: *\r\n' +
      'Cache-Control: no-cache\r\n' +
      'Connection: keep-alive\r\n' +
      'Content-Type: text/event-stream\r\n' +
      'X-Accel-Buffering: no\r\n' +
      'X-Expected-Events: 3\r\n' +
      'Date: X\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n')
    const { data, complete } = dechunk(body)
    assert.ok(complete, 'stream ended with 0\\r\\n\\r\\n')
    const hello = data.match(/^id: hello\ndata: Hello, (127\.0\.0\.1:\d+)!\n\n/)
    assert.ok(hello, data)
    assert.equal(maskTime(data.slice(hello[0].length)), messages(1, 3))
    const t = Number(data.match(/"time": (\d+)/)[1])
    assert.ok(Math.abs(t - Date.now() / 1000) < 5, 'time is the current unix time')
    await d.waitFor(/Starting stream for 127\.0\.0\.1:\d+, 1 -> 4 \.\.\./)
    await d.waitFor(/<- 127\.0\.0\.1:\d+: GET \/stream\?count=3 200 \(\d/)
  })

  for (const [lei, from, to] of [['message-4', 4, 5], ['message--3', -3, -2], ['message-7xyz', 7, 8], ['garbage', 1, 2], ['message- 9', 9, 10], ['message-0', 0, 1]]) {
    test(`Last-Event-ID: ${lei} resumes at ${from} and count=2 still ends`, async () => {
      const resp = await raw(port, get('/stream?count=2', `Last-Event-ID: ${lei}\r\n`), { until: chunkedDone })
      const { data, complete } = dechunk(split(resp).body)
      assert.ok(complete)
      assert.equal(maskTime(data.replace(/^id: hello\n.*\n\n/, '')), messages(from, to))
    })
  }

  test('every sampled random vector matches the original, end to end', async () => {
    for (const n of ['-5', '200', '1000', '12345', '2147483646', '2147483647', '2147483648', '4294967296']) {
      const resp = await raw(port, get('/stream?count=1', `Last-Event-ID: message-${n}\r\n`), { until: chunkedDone })
      const { data } = dechunk(split(resp).body)
      assert.match(data, new RegExp(`id: message-${n}\ndata: \\{\ndata:   "time": \\d+,\ndata:   "random": "${VECTORS.get(n)}"`))
    }
  })

  test('count=0 sends hello and ends; count=-1 is a bare 400', async () => {
    const zero = await raw(port, get('/stream?count=0'), { until: chunkedDone })
    assert.match(zero, /X-Expected-Events: 0\r\n/)
    const { data, complete } = dechunk(split(zero).body)
    assert.ok(complete)
    assert.match(data, /^id: hello\ndata: Hello, 127\.0\.0\.1:\d+!\n\n$/)
    const bad = await raw(port, get('/stream?count=-1'), { until: (t) => t.includes('\r\n\r\n') })
    assert.equal(maskDate(bad), 'HTTP/1.1 400 Bad Request\r\nDate: X\r\nContent-Length: 0\r\n\r\n')
  })

  test('count=abc streams without X-Expected-Events; 2x and +2 mean 2', async () => {
    const s = openStream(port, get('/stream?count=abc'))
    await s.waitFor(/data: Hello/)
    assert.doesNotMatch(s.text, /X-Expected-Events/)
    s.close()
    for (const c of ['2x', '%2B2']) {
      const resp = await raw(port, get(`/stream?count=${c}`), { until: chunkedDone })
      assert.match(resp, /X-Expected-Events: 2\r\n/)
    }
  })

  test('count from a POST form body', async () => {
    const body = 'count=1'
    const req = `POST /stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`
    const resp = await raw(port, req, { until: chunkedDone })
    assert.match(resp, /X-Expected-Events: 1\r\n/)
    assert.equal(maskTime(dechunk(split(resp).body).data.replace(/^id: hello\n.*\n\n/, '')), messages(1, 1))
  })

  test('the start line is the original\'s, then the URLs it serves; / is a page that links them', async () => {
    assert.match(d.stdout, new RegExp(
      `^Starting sse-server at :${port} \\.\\.\\.\\n` +
      `  stream: +http://127\\.0\\.0\\.1:${port}/stream\\n` +
      `  status page: +http://127\\.0\\.0\\.1:${port}/ui/ \\(from this machine\\)\\n`))
    const resp = await raw(port, get('/'), { until: (t) => t.includes('</html>') })
    const { head, body } = split(resp)
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/)
    assert.match(head, /\r\nContent-Type: text\/html; charset=utf-8\r\n/)
    assert.match(head, /\r\nContent-Security-Policy: default-src 'none'; frame-ancestors 'none'\r\n/)
    for (const link of ['stream', 'ui/', 'status']) assert.match(body, new RegExp(`<a href="${link}">`))
    await d.waitFor(/<- 127\.0\.0\.1:\d+: GET \/ 200 \(/)
  })

  test('other paths are Go 404s', async () => {
    for (const p of ['/stream/', '/index.html']) {
      const resp = await raw(port, get(p), { until: (t) => t.includes('not found\n') })
      assert.equal(maskDate(resp),
        'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n' +
        'Date: X\r\nContent-Length: 19\r\n\r\n404 page not found\n')
    }
  })

  test('/status lists an open stream with its next message number; /metrics counts', async () => {
    const s = openStream(port, get('/stream'))
    await s.waitFor(/id: message-3\n/)
    const resp = await raw(port, get('/status'), { until: (t) => t.endsWith('}}') || t.endsWith('{}') })
    const { head, body } = split(resp)
    assert.match(maskDate(head), /^HTTP\/1\.1 200 OK\r\nContent-Type: application\/json\r\nDate: X\r\nContent-Length: \d+\r\n\r\n$/)
    const status = JSON.parse(body)
    const local = `127.0.0.1:${s.sock.localPort}`
    assert.equal(status[local].remote, local)
    assert.match(status[local].connectedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)
    assert.ok(status[local].lastEventId >= 4, JSON.stringify(status))
    const metrics = await raw(port, get('/metrics'), { until: (t) => t.includes('ssehub_channels{') })
    assert.match(metrics, /ssehub_connected_clients\{mode="demo"\} [1-9]/)
    assert.match(metrics, /ssehub_events_published_total\{mode="demo"\} [1-9]/)
    s.close()
    await d.waitFor(new RegExp(`Client ${local.replace(/\./g, '\\.')} closed connection\\.`))
  })

  test('HTTP/1.0: no chunking, no keep-alive, the body ends with the connection', async () => {
    const resp = await raw(port, 'GET /stream?count=1 HTTP/1.0\r\n\r\n', { timeout: 5000 })
    const { head, body } = split(resp)
    assert.equal(maskDate(head),
      'HTTP/1.0 200 OK\r\nAccess-Control-Allow-Headers: *\r\nAccess-Control-Allow-Methods: GET\r\n' +
      'Access-Control-Allow-Origin: *\r\nCache-Control: no-cache\r\nContent-Type: text/event-stream\r\n' +
      'X-Accel-Buffering: no\r\nX-Expected-Events: 1\r\nDate: X\r\n\r\n')
    assert.equal(maskTime(body.replace(/^id: hello\n.*\n\n/, '')), messages(1, 1))
  })

  test('a real EventSource client gets hello and numbered messages', async () => {
    const es = new EventSource(`http://127.0.0.1:${port}/stream?count=2`)
    const got = []
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${JSON.stringify(got)}`)), 5000)
      es.onmessage = (e) => {
        got.push([e.lastEventId, e.data])
        if (got.length === 3) { clearTimeout(timer); resolve() }
      }
      es.onerror = () => {}
    })
    es.close()
    assert.equal(got[0][0], 'hello')
    assert.match(got[0][1], /^Hello, 127\.0\.0\.1:\d+!$/)
    assert.equal(got[1][0], 'message-1')
    assert.equal(JSON.parse(got[1][1]).random, VECTORS.get('1'))
    assert.equal(got[2][0], 'message-2')
  })
})

describe('demo mode: auth, pacing, flags, signals', () => {
  test('AUTH_TOKEN: exact bearer only, 401 has the CORS headers, 404 needs none', async () => {
    const d = start(['demo'], { env: { PORT: '0', AUTH_TOKEN: 's3cret', SSEHUB_DEMO_INTERVAL_MS: '20' }, ready: /at :(\d+) / })
    try {
      const port = Number((await d.ready)[1])
      const until = (t) => t.includes('\r\n\r\n')
      const none = await raw(port, get('/status'), { until })
      assert.equal(maskDate(none),
        'HTTP/1.1 401 Unauthorized\r\nAccess-Control-Allow-Headers: *\r\nAccess-Control-Allow-Methods: GET\r\n' +
        'Access-Control-Allow-Origin: *\r\nDate: X\r\nContent-Length: 0\r\n\r\n')
      for (const h of ['bearer s3cret', 'Bearer  s3cret', 'Bearer s3cre', 'Bearer s3cretx']) {
        assert.match(await raw(port, get('/stream?count=0', `Authorization: ${h}\r\n`), { until }), /^HTTP\/1\.1 401 /, h)
      }
      assert.match(await raw(port, get('/status', 'Authorization: Bearer s3cret\r\n'), { until }), /^HTTP\/1\.1 200 /)
      assert.match(await raw(port, get('/stream?count=0', 'Authorization: Bearer s3cret\r\n'), { until: chunkedDone }), /^HTTP\/1\.1 200 /)
      assert.match(await raw(port, get('/metrics'), { until }), /^HTTP\/1\.1 401 /)
      assert.match(await raw(port, get('/nope'), { until }), /^HTTP\/1\.1 404 /)
    } finally { await d.stop() }
  })

  test('AUTH_TOKEN_FILE is trimmed and wins; an unreadable one warns and falls back', async () => {
    const file = path.join(os.tmpdir(), `ssehub-token-${process.pid}`)
    fs.writeFileSync(file, '  filetok\n')
    const until = (t) => t.includes('\r\n\r\n')
    let d = start(['demo'], { env: { PORT: '0', AUTH_TOKEN: 'envtok', AUTH_TOKEN_FILE: file }, ready: /at :(\d+) / })
    try {
      const port = Number((await d.ready)[1])
      assert.match(await raw(port, get('/status', 'Authorization: Bearer envtok\r\n'), { until }), /^HTTP\/1\.1 401 /)
      assert.match(await raw(port, get('/status', 'Authorization: Bearer filetok\r\n'), { until }), /^HTTP\/1\.1 200 /)
    } finally { await d.stop(); fs.unlinkSync(file) }
    d = start(['demo'], { env: { PORT: '0', AUTH_TOKEN: 'envtok', AUTH_TOKEN_FILE: '/nonexistent' }, ready: /at :(\d+) / })
    try {
      const port = Number((await d.ready)[1])
      assert.match(d.stderr, /Error reading token from '\/nonexistent': open \/nonexistent: no such file or directory; ignoring\./)
      assert.match(await raw(port, get('/status', 'Authorization: Bearer envtok\r\n'), { until }), /^HTTP\/1\.1 200 /)
      assert.match(await raw(port, get('/status'), { until }), /^HTTP\/1\.1 401 /)
    } finally { await d.stop() }
  })

  test('real pacing: one message a second (count=2)', async () => {
    const d = start(['demo'], { env: { PORT: '0' }, ready: /at :(\d+) / })
    try {
      const port = Number((await d.ready)[1])
      const t0 = Date.now()
      const s = openStream(port, get('/stream?count=2'))
      await s.waitFor(/data: Hello/)
      const tHello = Date.now() - t0
      await s.waitFor(/id: message-1\n/, 3000)
      const t1 = Date.now() - t0
      await s.waitFor(/id: message-2\n/, 3000)
      const t2 = Date.now() - t0
      await s.waitFor(/\r\n0\r\n\r\n/, 2000)
      s.close()
      assert.ok(tHello < 500, `hello at once (${tHello} ms)`)
      assert.ok(t1 >= 900 && t1 < 1800, `message-1 after ~1 s (${t1} ms)`)
      assert.ok(t2 - t1 >= 800 && t2 - t1 < 1500, `message-2 ~1 s later (${t2 - t1} ms)`)
    } finally { await d.stop() }
  })

  test('SIGTERM ends open streams with the chunked terminator and exits 0', async () => {
    const d = start(['demo'], { env: { PORT: '0', SSEHUB_DEMO_INTERVAL_MS: '50' }, ready: /at :(\d+) / })
    const port = Number((await d.ready)[1])
    const s = openStream(port, get('/stream'))
    await s.waitFor(/id: message-2\n/)
    d.child.kill('SIGTERM')
    await s.closedPromise
    const ex = await d.done
    assert.ok(dechunk(split(s.text).body).complete, 'terminator written')
    assert.equal(ex.code, 0)
  })

  test('bad arguments and a bad PORT are one-line errors with exit 64', async () => {
    let r = await runToEnd(['demo', '--bogus'])
    assert.equal(r.code, 64)
    assert.match(r.stderr, /^ssehub demo: unexpected argument '--bogus'/)
    assert.equal(r.stderr.trim().split('\n').length, 1)
    r = await runToEnd(['demo'], { env: { PORT: 'notaport' } })
    assert.equal(r.code, 64)
    assert.match(r.stderr, /^ssehub demo: PORT 'notaport' is not a port/)
    r = await runToEnd(['demo', '--help'])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /AUTH_TOKEN_FILE/)
  })
})
