'use strict'
// The daemon under bad input: malformed, oversized, slow and smuggling
// HTTP; bad control lines; bad tokens; a full hub. Each gets a clear
// answer (or a log line), and the process keeps serving: every test ends
// by checking that a stream still receives a publish.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const net = require('node:net')
const { start, raw, openStream, split, dechunk } = require('../helpers/daemon')

const HEADER_TIMEOUT_MS = 400
const get = (target, extra = '') => `GET ${target} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`
const events = (s) => dechunk(split(s.text).body).data.replace(/^:\n\n/gm, '')
const statusLine = (t) => t.split('\r\n')[0]
const ready = /Web server listening on port (\d+)[\s\S]*?Commands (not )?allowed/
const headEnd = (t) => t.includes('\r\n\r\n')

/** Sends chunks (numbers are pauses in ms) to a port; resolves when closed or after `ms`. */
function send(port, chunks, { ms = 300, reset = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1')
    let closed = false
    sock.on('close', () => { closed = true; resolve({ closed: true }) })
    sock.on('error', () => {})
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (typeof c === 'number') await new Promise((r) => setTimeout(r, c))
        else sock.write(c)
      }
      if (reset) return setTimeout(() => sock.resetAndDestroy(), 50)
      setTimeout(() => { if (!closed) { sock.end(); resolve({ closed: false }) } }, ms)
    })
  })
}

describe('channels mode under bad input', () => {
  let d, port, ctl
  before(async () => {
    d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--heartbeat', '0', '--max-clients', '6'],
      { ready, env: { SSEHUB_HEADER_TIMEOUT_MS: String(HEADER_TIMEOUT_MS) } })
    await d.ready
    port = Number(d.stdout.match(/Web server listening on port (\d+)/)[1])
    ctl = Number(d.stdout.match(/Controller listening on port (\d+)/)[1])
  })
  after(() => d.stop())

  /** The daemon still streams: a fresh client receives a fresh publish. */
  async function stillServing() {
    const s = openStream(port, get('/alive'))
    await s.waitFor(/\r\n\r\n/)
    const tag = crypto.randomBytes(4).toString('hex')
    assert.match(await raw(port, get(`/alive?check=${tag}`)), /^HTTP\/1\.1 200 OK/)
    await s.waitFor(new RegExp(`data: ${tag}\n\n`))
    s.close()
    assert.equal(d.exited, null, 'the daemon is running')
  }

  test('oversized headers: 431 past 16 KiB (as Node); a 15 KB header is still fine', async () => {
    const huge = await raw(port, get('/x?a=1', `X-Big: ${'a'.repeat(1 << 20)}\r\n`))
    assert.equal(statusLine(huge), 'HTTP/1.1 431 Request Header Fields Too Large')
    const many = Array.from({ length: 500 }, (_, i) => `X-${i}: y\r\n`).join('')
    assert.equal(statusLine(await raw(port, get('/x?a=1', many))), 'HTTP/1.1 431 Request Header Fields Too Large')
    assert.equal(statusLine(await raw(port, get('/x?big=1', `X-Big: ${'a'.repeat(100000)}\r\n`))), 'HTTP/1.1 431 Request Header Fields Too Large')
    assert.equal(statusLine(await raw(port, get('/x?big=1', `X-Big: ${'a'.repeat(15000)}\r\n`))), 'HTTP/1.1 200 OK')
    await stillServing()
  })

  test('slowloris: a silent or trickling request head is closed after the header timeout', async () => {
    const t0 = Date.now()
    const silent = await raw(port, '', { timeout: 5000 })
    const silentMs = Date.now() - t0
    assert.equal(silent, '')
    assert.ok(silentMs >= HEADER_TIMEOUT_MS - 50 && silentMs < 3000, `closed after ${silentMs} ms`)
    const t1 = Date.now()
    const trickle = await send(port, ['GET /x HT', 150, 'TP/1.1\r\n', 150, 'Host: x\r\n', 150, 'X-A: 1\r\n', 150, 'X-B: 2\r\n', 150, 'X-C: 3\r\n'], { ms: 3000 })
    assert.ok(trickle.closed, 'the server closed the trickling connection')
    assert.ok(Date.now() - t1 < 2500)
    await stillServing()
  })

  test('smuggling: Content-Length with Transfer-Encoding never runs the hidden request', async () => {
    const smuggle = (method) =>
      `${method} /x?front=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\nTransfer-Encoding: chunked\r\n\r\n` +
      '0\r\n\r\nGET /x?smuggled=1 HTTP/1.1\r\nHost: x\r\n\r\n'
    for (const method of ['GET', 'POST']) {
      const r = await raw(port, smuggle(method))
      assert.equal((r.match(/HTTP\/1\.1 /g) || []).length, 1, `one reply only: ${r}`)
      assert.match(r, /\r\nConnection: close\r\n/)
    }
    for (const bad of [
      'GET /x?a=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n',
      'GET /x?a=1 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'GET /x?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      'GET /x?a=1 HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'GET /x?a=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n',
    ]) {
      assert.equal(statusLine(await raw(port, bad)), 'HTTP/1.1 400 Bad Request', bad)
    }
    assert.doesNotMatch(d.stdout, /smuggled/)
    await stillServing()
  })

  test('absurd paths and queries, bad escapes, bad methods: clear replies', async () => {
    assert.equal(statusLine(await raw(port, get('/' + 'a/'.repeat(40000)))), 'HTTP/1.1 414 URI Too Long')
    const s = openStream(port, get('/esc'))
    await s.waitFor(/\r\n\r\n/)
    assert.match(await raw(port, get('/esc?x=%&%zz=%G1&nul=a%00b&bad=%C3%28')), /^HTTP\/1\.1 200 OK/)
    await s.waitFor(/event: bad\n/)
    assert.equal(events(s), 'event: x\ndata: %\n\nevent: %zz\ndata: %G1\n\nevent: nul\ndata: a\0b\n\n' +
      'event: bad\ndata: \xef\xbf\xbd(\n\n')
    s.close()
    const pairs = Array.from({ length: 1000 }, (_, i) => `p${i}=${i}`).join('&')
    const many = openStream(port, get('/many'))
    await many.waitFor(/\r\n\r\n/)
    assert.match(await raw(port, get(`/many?${pairs}`)), /^HTTP\/1\.1 200 OK/)
    await many.waitFor(/event: p999\ndata: 999\n\n/)
    assert.equal((events(many).match(/^event: p\d+$/gm) || []).length, 1000)
    many.close()
    for (const method of ['BREW', 'DELETE', 'OPTIONS', 'CONNECT']) {
      const target = method === 'CONNECT' ? 'example.com:443' : '/x'
      const r = await raw(port, `${method} ${target} HTTP/1.1\r\nHost: x\r\n\r\n`)
      assert.equal(statusLine(r), 'HTTP/1.1 405 Method Not Allowed', method)
    }
    for (const junk of ['G@T / HTTP/1.1\r\n\r\n', '\x00\x01\x02\xff\r\n\r\n', 'GET / HTTP/9.9\r\n\r\n']) {
      assert.match(statusLine(await raw(port, junk)), /^HTTP\/1\.1 (400|505) /, JSON.stringify(junk))
    }
    await stillServing()
  })

  test('control lines: only "=", CR/LF mixes, a write split anywhere, thousands in one write', async () => {
    const s = openStream(port, get('/ctl'))
    await s.waitFor(/\r\n\r\n/)
    await send(ctl, ['ctl=crcr\r\r\n', 'ctl=mid\rdle\n', '=\n', 'ctl', 5, '/ty', 5, 'pe = sp', 5, 'lit\r', 5, '\n'])
    await s.waitFor(/data: split\n\n/)
    assert.equal(events(s), 'data: crcr\n\ndata: mid\ndata: dle\n\nevent: type\ndata: split\n\n')
    let burst = ''
    for (let i = 0; i < 3000; i++) burst += `ctl/n = ${i}\n`
    await send(ctl, [burst])
    await s.waitFor(/data: 2999\n\n/)
    const numbers = events(s).match(/^data: (\d+)$/gm).map((l) => Number(l.slice(6)))
    assert.deepEqual(numbers, Array.from({ length: 3000 }, (_, i) => i))
    s.close()
    await stillServing()
  })

  test('a controller that leaves mid-line: a clean close publishes it, a reset drops it with a log line', async () => {
    const s = openStream(port, get('/tail'))
    await s.waitFor(/\r\n\r\n/)
    await send(ctl, ['tail=complete\n', 'tail=unterminated'], { ms: 100 })
    await s.waitFor(/data: unterminated\n\n/)
    await send(ctl, ['tail=half a li'], { reset: true })
    await d.waitFor(/Warning: dropped an unterminated line of 14 bytes from \d+/)
    await send(ctl, ['tail=after\n'])
    await s.waitFor(/data: after\n\n/)
    assert.equal(events(s), 'data: complete\n\ndata: unterminated\n\ndata: after\n\n')
    s.close()
  })

  test('--max-clients: past it 503, the clients already in keep streaming', async () => {
    const inside = []
    for (let i = 0; i < 6; i++) {
      const s = openStream(port, get('/full'))
      await s.waitFor(/\r\n\r\n/)
      inside.push(s)
    }
    const refused = await raw(port, get('/full'))
    assert.equal(statusLine(refused), 'HTTP/1.1 503 Service Unavailable')
    assert.match(await raw(port, get('/full?still=there')), /^HTTP\/1\.1 200 OK/, 'publishing still works')
    for (const s of inside) await s.waitFor(/data: there\n\n/)
    inside.forEach((s) => s.close())
    await new Promise((r) => setTimeout(r, 100))
    await stillServing()
  })
})

describe('jwt mode under bad tokens and bodies', () => {
  const SECRET = 'bad-input-secret-0123456789'
  let d, port, ctl
  const b64 = (s) => Buffer.from(s).toString('base64url')
  const sign = (signing, key = SECRET, hash = 'sha256') => crypto.createHmac(hash, key).update(signing).digest('base64url')
  const forgeRaw = (header, claims, key) => {
    const signing = `${b64(header)}.${b64(claims)}`
    return `${signing}.${sign(signing, key)}`
  }
  const forge = (header, claims, key) => forgeRaw(JSON.stringify(header), JSON.stringify(claims), key)
  const post = (target, body) =>
    `POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  const complete = (t) => {
    const m = t.match(/Content-Length: (\d+)\r\n/)
    const at = t.indexOf('\r\n\r\n')
    return m && at >= 0 && Buffer.byteLength(t.slice(at + 4), 'latin1') >= Number(m[1])
  }
  const withToken = (tok) => get('/events/', `Authorization: Bearer ${tok}\r\n`)

  before(async () => {
    d = start(['jwt', '-bind', '127.0.0.1:0', '-bindctl', '0', '-secret', SECRET, '-heartbeat', '0', '-max-clients', '2'],
      { ready: /Listening for clients on 127\.0\.0\.1:(\d+), control on (127\.0\.0\.1):(\d+)/ })
    const m = await d.ready
    port = Number(m[1])
    ctl = Number(m[3])
  })
  after(() => d.stop())

  test('the control listener binds loopback when given a bare port', () => {
    assert.match(d.stderr, /control on 127\.0\.0\.1:\d+/)
  })

  test('malformed, huge, not-yet-valid and confused tokens: 401, and the hub lives', async () => {
    const now = Math.floor(Date.now() / 1000)
    const good = forge({ alg: 'HS256', typ: 'JWT' }, { userId: 'u', channel: 'c', exp: now + 60 })
    const [h, c] = good.split('.')
    const bad = [
      '!!!.@@@.###',
      `${h}.${c}`,
      `${good}.extra`,
      `${h}.${c}.${'*'.repeat(43)}`,
      `${h}.%%%.${good.split('.')[2]}`,
      `${b64('not json')}.${c}.${sign(`${b64('not json')}.${c}`)}`,
      `${b64('[1,2]')}.${c}.${sign(`${b64('[1,2]')}.${c}`)}`,
      forge({ alg: 'HS256' }, { userId: 'u', iat: now + 600 }),
      forge({ alg: 'hs256' }, { userId: 'u' }),
      forge({ alg: 'ES256' }, { userId: 'u' }),
      forgeRaw('{"alg":"HS256"}', '{"userId":"u","exp":1e400}'),
      forgeRaw('{"alg":"HS256"}', '{"userId":"u","exp":9223372036854775808}'),
      forgeRaw('{"alg":"HS256","alg":"none"}', '{"userId":"u"}'),
      // HS/RS confusion: an RS256 header signed with HMAC over the key.
      forge({ alg: 'RS256', typ: 'JWT' }, { userId: 'u', channel: 'c' }),
      `${h}.${c}.${'A'.repeat(12000)}`,
      `${b64('{"alg":"HS256"}')}.${b64('{"userId":"' + 'x'.repeat(9000) + '"}')}.x`,
    ]
    for (const t of bad) {
      const r = await raw(port, withToken(t), { until: complete })
      assert.equal(statusLine(r), 'HTTP/1.1 401 Unauthorized', t.slice(0, 80))
    }
    // Past Node's 16 KiB head limit a token is not even looked at.
    for (const t of [`${h}.${c}.${'A'.repeat(200000)}`, `${b64('{"alg":"HS256"}')}.${b64('{"userId":"' + 'x'.repeat(150000) + '"}')}.x`]) {
      const r = await raw(port, withToken(t), { until: headEnd })
      assert.equal(statusLine(r), 'HTTP/1.1 431 Request Header Fields Too Large')
    }
    const s = openStream(port, withToken(good))
    await s.waitFor(/^HTTP\/1\.1 200 OK/)
    s.close()
  })

  test('an oversized form body is a 413 and emits nothing', async () => {
    const listener = openStream(port, withToken(forge({ alg: 'HS256' }, { userId: '', channel: '' })))
    await listener.waitFor(/\r\n\r\n/)
    const r = await raw(ctl, post('/emit/', 'payload=' + 'a'.repeat(2 << 20)), { until: complete })
    assert.equal(statusLine(r), 'HTTP/1.1 413 Payload Too Large')
    assert.equal(split(r).body, 'Request Entity Too Large\n')
    const ok = await raw(ctl, post('/emit/', 'userId=&channel=&payload=small'), { until: complete })
    assert.equal(split(ok).body, 'OK')
    await listener.waitFor(/small\n/)
    assert.equal(dechunk(split(listener.text).body).data, 'small\n', 'the 413 emitted nothing')
    listener.close()
  })

  test('-max-clients: past it 503', async () => {
    const tok = forge({ alg: 'HS256' }, { userId: 'm', channel: 'm' })
    const a = openStream(port, withToken(tok))
    const b = openStream(port, withToken(tok))
    await a.waitFor(/\r\n\r\n/)
    await b.waitFor(/\r\n\r\n/)
    assert.equal(statusLine(await raw(port, withToken(tok), { until: complete })), 'HTTP/1.1 503 Service Unavailable')
    await raw(ctl, post('/emit/', 'userId=*&channel=m&payload=both'), { until: complete })
    await a.waitFor(/both\n/)
    await b.waitFor(/both\n/)
    a.close()
    b.close()
  })
})

test('demo mode: MAX_CLIENTS past it is a 503; a bad value is exit 64', async () => {
  const d = start(['demo'], { env: { PORT: '0', MAX_CLIENTS: '1', SSEHUB_DEMO_INTERVAL_MS: '50' }, ready: /Starting sse-server at :(\d+)/ })
  try {
    const port = Number((await d.ready)[1])
    const s = openStream(port, get('/stream'))
    await s.waitFor(/id: hello/)
    assert.equal(statusLine(await raw(port, get('/stream'))), 'HTTP/1.1 503 Service Unavailable')
    await s.waitFor(/id: message-2\n/)
    s.close()
  } finally {
    await d.stop()
  }
  const bad = start(['demo'], { env: { PORT: '0', MAX_CLIENTS: 'lots' } })
  assert.equal((await bad.done).code, 64)
  assert.match(bad.stderr, /MAX_CLIENTS: max-clients takes a whole number/)
})
