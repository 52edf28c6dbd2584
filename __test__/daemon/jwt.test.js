'use strict'
// `ssehub jwt`: the chabberwock/sse drop-in, checked against the captures in
// /work/shared/reference/transcripts/chabberwock-*.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { EventSource } = require('eventsource')
const { start, runToEnd, raw, openStream, split, dechunk, maskDate } = require('../helpers/daemon')

const SECRET = 's3cret'
const b64 = (s) => Buffer.from(s).toString('base64url')
/** Signs header.claims with HMAC (node's crypto, independent of ours). */
function forge(header, claims, key = SECRET, hash = 'sha256') {
  const signing = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`
  return `${signing}.${crypto.createHmac(hash, key).update(signing).digest('base64url')}`
}
const now = () => Math.floor(Date.now() / 1000)
const headEnd = (t) => t.includes('\r\n\r\n')
const get = (target, headers = '') => `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${headers}\r\n`
const post = (target, body, type = 'application/x-www-form-urlencoded') =>
  `POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
/** Waits until a raw reply with a Content-Length body is complete. */
const complete = (t) => {
  const m = t.match(/Content-Length: (\d+)\r\n/)
  const at = t.indexOf('\r\n\r\n')
  return m && at >= 0 && Buffer.byteLength(t.slice(at + 4), 'latin1') >= Number(m[1])
}

describe('jwt mode', () => {
  let d, port, ctl
  const token = async (form) => split(await raw(ctl, post('/token/', form), { until: complete })).body
  const emit = (form) => raw(ctl, post('/emit/', form), { until: complete })
  const events = (tok, path = '/events/') => openStream(port, get(path, `Authorization: Bearer ${tok}\r\n`))

  before(async () => {
    d = start(['jwt', '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0', '-secret', SECRET, '-heartbeat', '1'],
      { ready: /Listening for clients on 127\.0\.0\.1:(\d+), control on 127\.0\.0\.1:(\d+)/ })
    const m = await d.ready
    port = Number(m[1])
    ctl = Number(m[2])
  })
  after(() => d.stop())

  test('missing, bare or garbage bearer: the Go 401', async () => {
    const none = await raw(port, get('/events/'), { until: complete })
    assert.equal(maskDate(none),
      'HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n' +
      'Date: X\r\nContent-Length: 13\r\n\r\nUnauthorized\n')
    for (const h of ['Bearer', 'Bearer garbage', 'Basic czNjcmV0']) {
      assert.match(await raw(port, get('/events/', `Authorization: ${h}\r\n`), { until: headEnd }), /^HTTP\/1\.1 401 /, h)
    }
  })

  test('/events redirects, other paths are 404', async () => {
    const r = await raw(port, get('/events?x=1'), { until: complete })
    assert.equal(maskDate(r),
      'HTTP/1.1 301 Moved Permanently\r\nContent-Type: text/html; charset=utf-8\r\nLocation: /events/?x=1\r\n' +
      'Date: X\r\nContent-Length: 47\r\n\r\n<a href="/events/?x=1">Moved Permanently</a>.\n\n')
    const nf = await raw(port, get('/other'), { until: complete })
    assert.equal(maskDate(nf),
      'HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n' +
      'Date: X\r\nContent-Length: 19\r\n\r\n404 page not found\n')
    const p = await raw(ctl, post('/token', 'userId=a'), { until: headEnd })
    assert.equal(maskDate(p), 'HTTP/1.1 301 Moved Permanently\r\nLocation: /token/\r\nDate: X\r\nContent-Length: 0\r\n\r\n')
  })

  test('/token/ issues the original token bytes (header, claim order, HS256 signature)', async () => {
    const resp = await raw(ctl, post('/token/', 'userId=alex&channel=chat&exp=86400'), { until: complete })
    const { head, body } = split(resp)
    assert.equal(maskDate(head),
      `HTTP/1.1 200 OK\r\nDate: X\r\nContent-Length: ${body.length}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`)
    const [h, c] = body.split('.')
    assert.equal(Buffer.from(h, 'base64url').toString(), '{"alg":"HS256","typ":"JWT"}')
    const claims = Buffer.from(c, 'base64url').toString()
    const exp = Number(claims.match(/"exp":(\d+)/)[1])
    assert.equal(claims, `{"userId":"alex","channel":"chat","exp":${exp}}`)
    assert.ok(Math.abs(exp - (now() + 86400)) < 5)
    assert.equal(body, forge({ alg: 'HS256', typ: 'JWT' }, { userId: 'alex', channel: 'chat', exp }))
    // Query string and multipart bodies work too.
    const q = split(await raw(ctl, get('/token/?userId=q&channel=c&exp=60'), { until: complete })).body
    assert.match(Buffer.from(q.split('.')[1], 'base64url').toString(), /^\{"userId":"q","channel":"c","exp":\d+\}$/)
    const mp = '--XB\r\nContent-Disposition: form-data; name="userId"\r\n\r\nm\r\n--XB\r\nContent-Disposition: form-data; name="channel"\r\n\r\nc\r\n--XB\r\nContent-Disposition: form-data; name="exp"\r\n\r\n60\r\n--XB--\r\n'
    const m = split(await raw(ctl, post('/token/', mp, 'multipart/form-data; boundary=XB'), { until: complete })).body
    assert.match(Buffer.from(m.split('.')[1], 'base64url').toString(), /^\{"userId":"m","channel":"c","exp":\d+\}$/)
  })

  test('a bad exp is a 500 "Incorrect expires"', async () => {
    for (const form of ['userId=a&channel=b', 'userId=a&exp=1.5', 'exp=%2010']) {
      const r = await raw(ctl, post('/token/', form), { until: complete })
      assert.equal(maskDate(r),
        'HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n' +
        'Date: X\r\nContent-Length: 18\r\n\r\nIncorrect expires\n', form)
    }
  })

  test('headers at once, raw payloads to one user, "*" to the channel, body beats query', async () => {
    const c1 = events(await token('userId=alex&channel=chat&exp=600'), '/events/sub/path')
    const c2 = events(await token('userId=bob&channel=chat&exp=600'))
    const c3 = events(await token('userId=alex&channel=other&exp=600'))
    await c1.waitFor(/\r\n\r\n/, 1000)
    assert.equal(maskDate(split(c1.text).head),
      'HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\nContent-Type: text/event-stream\r\n' +
      'X-Accel-Buffering: no\r\nDate: X\r\nTransfer-Encoding: chunked\r\n\r\n')
    await c2.waitFor(/\r\n\r\n/, 1000)
    await c3.waitFor(/\r\n\r\n/, 1000)
    const ok = await emit('userId=alex&channel=chat&payload=' + encodeURIComponent('event: message\ndata: one\n'))
    assert.equal(maskDate(ok), 'HTTP/1.1 200 OK\r\nDate: X\r\nContent-Length: 2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nOK')
    await emit('userId=*&channel=chat&payload=' + encodeURIComponent('data: all\n'))
    await raw(ctl, post('/emit/?payload=query-loses', 'userId=alex&channel=other&payload=' + encodeURIComponent('data: body-wins\n')), { until: complete })
    await c1.waitFor(/data: all\n\n/)
    await c2.waitFor(/data: all\n\n/)
    await c3.waitFor(/data: body-wins\n\n/)
    const body = (s) => dechunk(split(s.text).body).data.replace(/:\n\n/g, '')
    assert.equal(body(c1), 'event: message\ndata: one\n\ndata: all\n\n')
    assert.equal(body(c2), 'data: all\n\n')
    assert.equal(body(c3), 'data: body-wins\n\n')
    for (const c of [c1, c2, c3]) c.close()
    await d.waitFor(/Finished HTTP request at  \/events\/sub\/path/)
  })

  test('accepted: tokens of the original, HS384/HS512, no exp; refused: wrong key, expired, alg none, bad claims', async () => {
    const original = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VySWQiOiIxMjM0IiwiY2hhbm5lbCI6InRlc3QiLCJleHAiOjIwMDAwMDAwMDB9.Z9okUum9xejQTjs7LgZtCEHypW-rZFWSwXRcHa_hCgI'
    const good = [
      original,
      forge({ alg: 'HS512', typ: 'JWT' }, { userId: 'u', channel: 'c' }, SECRET, 'sha512'),
      forge({ alg: 'HS384', typ: 'JWT' }, { userId: 'u', channel: 'c', exp: now() + 60 }, SECRET, 'sha384'),
    ]
    for (const t of good) {
      const s = events(t)
      await s.waitFor(/^HTTP\/1\.1 \d+/, 2000)
      assert.match(s.text, /^HTTP\/1\.1 200 OK/, t)
      s.close()
    }
    const expired = await token('userId=u&channel=c&exp=-10')
    const bad = [
      forge({ alg: 'HS256', typ: 'JWT' }, { userId: 'u', channel: 'c' }, 'wrong-key'),
      expired,
      `${b64('{"alg":"none","typ":"JWT"}')}.${b64('{"userId":"u","channel":"c"}')}.`,
      forge({ alg: 'HS256' }, { userId: 'u', exp: String(now() + 60) }),
      forge({ alg: 'HS256' }, { userId: 'u', nbf: now() + 600 }),
      forge({ alg: 'RS256' }, { userId: 'u' }),
    ]
    for (const t of bad) {
      assert.match(await raw(port, get('/events/', `Authorization: Bearer ${t}\r\n`), { until: headEnd }), /^HTTP\/1\.1 401 /, t)
    }
    // The scheme word is matched case-insensitively, as in the original.
    const s = openStream(port, get('/events/', `Authorization: BEARER ${original}\r\n`))
    await s.waitFor(/^HTTP\/1\.1 200 /, 2000)
    s.close()
    await emit('userId=1234&channel=test&payload=x')
  })

  test('idle streams get heartbeats', async () => {
    const s = events(await token('userId=hb&channel=hb&exp=60'))
    await s.waitFor(/\r\n3\r\n:\n\n\r\n/, 4000)
    s.close()
  })

  test('a real EventSource client with an Authorization header', async () => {
    const tok = await token('userId=es&channel=room&exp=60')
    const es = new EventSource(`http://127.0.0.1:${port}/events/`, {
      fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${tok}` } }),
    })
    const got = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no event')), 5000)
      es.addEventListener('greeting', (e) => { clearTimeout(timer); resolve(e.data) })
    })
    await new Promise((resolve) => { es.onopen = resolve })
    await emit('userId=es&channel=room&payload=' + encodeURIComponent('event: greeting\ndata: {"hi":1}\n'))
    assert.equal(await got, '{"hi":1}')
    es.close()
  })

  test('one client that stops reading never stalls the others; it is dropped as slow', async () => {
    const tokSlow = await token('userId=slow&channel=load&exp=60')
    const tokFast = await token('userId=fast&channel=load&exp=60')
    const slow = events(tokSlow)
    await slow.waitFor(/\r\n\r\n/)
    slow.sock.pause()
    const fast = events(tokFast)
    await fast.waitFor(/\r\n\r\n/)
    const payload = 'data: ' + 'x'.repeat(64 * 1024) + '\n'
    const t0 = Date.now()
    for (let i = 0; i < 120; i++) await emit('userId=*&channel=load&payload=' + encodeURIComponent(payload))
    await fast.waitFor(/(data: x+\n\n(\r\n)?([0-9A-F]+\r\n)?){120}/, 10000).catch(() => {})
    const received = (dechunk(split(fast.text).body).data.match(/data: x+\n\n/g) || []).length
    assert.equal(received, 120, 'the reading client got every event')
    assert.ok(Date.now() - t0 < 10000)
    const status = JSON.parse(split(await raw(ctl, get('/status'), { until: complete })).body)
    assert.ok(status.clients_dropped_slow_total >= 1, JSON.stringify(status))
    const metrics = split(await raw(ctl, get('/metrics'), { until: complete })).body
    assert.match(metrics, /ssehub_clients_dropped_slow_total\{mode="jwt"\} [1-9]/)
    assert.match(metrics, /ssehub_events_published_total\{mode="jwt"\} [1-9]/)
    slow.close()
    fast.close()
  })
})

describe('jwt mode: secrets, flags, signals', () => {
  test('no secret, the default word and bad flags are refused with a hint', async () => {
    let r = await runToEnd(['jwt', '-bind', '127.0.0.1:0'])
    assert.equal(r.code, 64)
    assert.match(r.stderr, /^ssehub jwt: no -secret given; .*-generate-secret/)
    r = await runToEnd(['jwt', '-secret', 'secret'])
    assert.equal(r.code, 64)
    assert.match(r.stderr, /refusing the original's default key/)
    r = await runToEnd(['jwt', '-bogus'])
    assert.equal(r.code, 64)
    assert.equal(r.stderr.trim(), 'ssehub jwt: flag provided but not defined: -bogus (see ssehub jwt -help)')
    const busy = require('node:net').createServer().listen(0, '127.0.0.1')
    await new Promise((res) => busy.on('listening', res))
    r = await runToEnd(['jwt', '-bind', `127.0.0.1:${busy.address().port}`, '-bindctl', '127.0.0.1:0', '-secret', 'a-long-enough-secret'])
    busy.close()
    assert.equal(r.code, 73)
    assert.match(r.stderr, /^ssehub jwt: cannot listen on 127\.0\.0\.1:\d+: /)
    r = await runToEnd(['jwt', '-help'])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /-generate-secret/)
  })

  test('-generate-secret prints the key it signs with; SIGTERM ends streams and exits 0', async () => {
    const d = start(['jwt', '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0', '-generate-secret'],
      { ready: /Listening for clients on 127\.0\.0\.1:(\d+), control on 127\.0\.0\.1:(\d+)/ })
    try {
      const m = await d.ready
      const key = d.stderr.match(/generated secret \(sign and check tokens with it\): (\S+)/)[1]
      assert.ok(key.length >= 40)
      const tok = split(await raw(Number(m[2]), post('/token/', 'userId=a&channel=b&exp=60'), { until: complete })).body
      const [h, c, sig] = tok.split('.')
      assert.equal(sig, crypto.createHmac('sha256', key).update(`${h}.${c}`).digest('base64url'))
      const s = openStream(Number(m[1]), get('/events/', `Authorization: Bearer ${tok}\r\n`))
      await s.waitFor(/\r\n\r\n/)
      d.child.kill('SIGTERM')
      await s.closedPromise
      assert.ok(dechunk(split(s.text).body).complete, 'chunked terminator')
      assert.equal((await d.done).code, 0)
    } finally { await d.stop() }
  })
})

describe('jwt mode from a page: access_token, cookie, CORS', () => {
  let d, port
  const ORIGIN = 'http://app.localhost:3000'
  const tok = (userId, channel) => forge({ alg: 'HS256', typ: 'JWT' }, { userId, channel, exp: now() + 60 })

  before(async () => {
    d = start(['jwt', '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0', '-secret', SECRET, '-heartbeat', '0',
      '-cors-origins', `${ORIGIN},https://other.example`, '-token-cookie', 'sess'],
    { ready: /Listening for clients on 127\.0\.0\.1:(\d+), control on 127\.0\.0\.1:(\d+)/ })
    port = Number((await d.ready)[1])
  })
  after(() => d.stop())

  test('a token in the access_token parameter or in the named cookie opens the stream', async () => {
    const q = openStream(port, get(`/events/?access_token=${tok('u', 'c')}`))
    await q.waitFor(/\r\n\r\n/)
    assert.match(q.text, /^HTTP\/1\.1 200 OK/)
    q.close()
    const c = openStream(port, get('/events/', `Cookie: theme=dark; sess=${tok('u', 'c')}\r\n`))
    await c.waitFor(/\r\n\r\n/)
    assert.match(c.text, /^HTTP\/1\.1 200 OK/)
    c.close()
    const wrongCookie = await raw(port, get('/events/', `Cookie: ssehub_token=${tok('u', 'c')}\r\n`), { until: complete })
    assert.match(wrongCookie, /^HTTP\/1\.1 401 /, 'the cookie name was changed with -token-cookie')
    const header = openStream(port, get('/events/', `Authorization: Bearer ${tok('u', 'c')}\r\n`))
    await header.waitFor(/\r\n\r\n/)
    assert.match(header.text, /^HTTP\/1\.1 200 OK/, 'the header works as before')
    assert.doesNotMatch(header.text, /Access-Control/, 'no CORS headers without an Origin')
    header.close()
  })

  test('a listed origin gets its preflight answered and credentials allowed; others do not', async () => {
    const pre = await raw(port, `OPTIONS /events/ HTTP/1.1\r\nHost: x\r\nOrigin: ${ORIGIN}\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\n\r\n`, { until: headEnd })
    assert.match(pre, /^HTTP\/1\.1 204 No Content/)
    assert.match(pre, new RegExp(`Access-Control-Allow-Origin: ${ORIGIN}\r\n`))
    assert.match(pre, /Access-Control-Allow-Credentials: true\r\n/)
    assert.match(pre, /Access-Control-Allow-Headers: Authorization, Last-Event-ID, Cache-Control\r\n/)
    const evil = await raw(port, 'OPTIONS /events/ HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\n\r\n', { until: headEnd })
    assert.match(evil, /^HTTP\/1\.1 403 /)
    assert.doesNotMatch(evil, /Access-Control-Allow-Origin/)
    const s = openStream(port, get(`/events/?access_token=${tok('u', 'c')}`, `Origin: ${ORIGIN}\r\n`))
    await s.waitFor(/\r\n\r\n/)
    assert.match(s.text, new RegExp(`Access-Control-Allow-Origin: ${ORIGIN}\r\n`))
    assert.match(s.text, /Access-Control-Allow-Credentials: true\r\n/)
    s.close()
    const denied = await raw(port, get('/events/', `Origin: ${ORIGIN}\r\n`), { until: complete })
    assert.match(denied, /^HTTP\/1\.1 401 /)
    assert.match(denied, new RegExp(`Access-Control-Allow-Origin: ${ORIGIN}\r\n`), 'the page can read the 401')
  })
})
