'use strict'
// Each app in examples/ started as a user would (`node examples/<name>.js`,
// on a free port) and checked with real requests: the page, a stream that
// gets its welcome event, and a broadcast posted to /say.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const http2 = require('node:http2')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')
const FIXTURES = path.join(__dirname, '..', 'fixtures')
const cert = fs.readFileSync(path.join(FIXTURES, 'test-cert.pem'))

/** Starts an example; resolves { url, child, output } once it prints its URL. */
function startExample(t, name, env = {}) {
  const child = spawn(process.execPath, [path.join(ROOT, 'examples', `${name}.js`)], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    }
  })
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} example did not start:\n${output}`)), 10000)
    const onData = (chunk) => {
      output += chunk
      const m = output.match(/listening on (https?:\/\/[^\s]+)/)
      if (m) {
        clearTimeout(timer)
        resolve({ url: new URL(m[1]), child, exited })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    exited.then(({ code }) => {
      clearTimeout(timer)
      reject(new Error(`${name} example exited (${code}):\n${output}`))
    })
  })
}

/** A real HTTP/1.1 request; resolves { status, headers, body }. */
function request(url, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

/** Opens /events; `.until(text)` resolves once the body so far contains text. */
function openStream(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL('/events', url), (res) => {
      const stream = { res, body: '', close: () => req.destroy() }
      const waiters = []
      res.setEncoding('utf8')
      res.on('data', (d) => {
        stream.body += d
        for (const w of waiters.splice(0)) if (!w(stream.body)) waiters.push(w)
      })
      stream.until = (text, ms = 5000) =>
        new Promise((ok, fail) => {
          if (stream.body.includes(text)) return ok(stream.body)
          const timer = setTimeout(() => fail(new Error(`no ${JSON.stringify(text)} in ${JSON.stringify(stream.body)}`)), ms)
          waiters.push((body) => {
            if (!body.includes(text)) return false
            clearTimeout(timer)
            ok(body)
            return true
          })
        })
      resolve(stream)
    })
    req.on('error', reject)
  })
}

for (const name of ['express', 'fastify', 'koa']) {
  test(`examples/${name}.js: page, stream, broadcast`, async (t) => {
    const { url, child, exited } = await startExample(t, name)
    const page = await request(url)
    assert.equal(page.status, 200)
    assert.match(page.headers['content-type'], /^text\/html/)
    assert.match(page.body, /new EventSource\('\/events'\)/)

    const stream = await openStream(url)
    t.after(() => stream.close())
    assert.equal(stream.res.statusCode, 200)
    assert.equal(stream.res.headers['content-type'], 'text/event-stream')
    await stream.until('event: welcome\ndata: you are client ')

    const said = await request(new URL('/say?text=hello%20there', url), 'POST')
    assert.equal(said.status, 200)
    assert.deepEqual(JSON.parse(said.body), { delivered: 1 })
    await stream.until('id: 1\ndata: hello there\n\n')

    // SIGTERM: the app closes the hub (the open stream ends) and exits.
    const ended = new Promise((resolve) => stream.res.on('end', resolve))
    child.kill('SIGTERM')
    await ended
    assert.deepEqual(await exited, { code: 0, signal: null })
  })
}

test('examples/http2.js: HTTP/2 over TLS (and HTTP/1.1 beside it)', async (t) => {
  const { url } = await startExample(t, 'http2', {
    TLS_CERT: path.join(FIXTURES, 'test-cert.pem'),
    TLS_KEY: path.join(FIXTURES, 'test-key.pem'),
  })
  const session = http2.connect(`https://localhost:${url.port}`, { ca: cert, lookup: (h, o, cb) => cb(null, [{ address: '127.0.0.1', family: 4 }]) })
  t.after(() => session.close())
  session.on('error', () => {})
  const h2 = (p, method = 'GET') => {
    const stream = session.request({ ':path': p, ':method': method })
    const r = { headers: null, body: '', stream }
    stream.setEncoding('utf8')
    stream.on('data', (d) => (r.body += d))
    r.response = new Promise((resolve, reject) => {
      stream.on('response', (headers) => {
        r.headers = headers
        resolve(r)
      })
      stream.on('error', reject)
    })
    r.ended = new Promise((resolve) => stream.on('end', () => resolve(r)))
    return r
  }

  const page = await h2('/').ended
  assert.equal(page.headers[':status'], 200)
  assert.match(page.body, /EventSource/)

  // Two streams on one connection, as a browser's tabs would share it.
  const a = h2('/events')
  const b = h2('/events')
  for (const s of [a, b]) {
    const { headers } = await s.response
    assert.equal(headers[':status'], 200)
    assert.equal(headers['content-type'], 'text/event-stream')
    assert.equal(headers.connection, undefined, 'no connection-specific header on HTTP/2')
  }
  const until = (s, text) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${JSON.stringify(text)} in ${JSON.stringify(s.body)}`)), 5000)
      const check = () => {
        if (!s.body.includes(text)) return
        clearTimeout(timer)
        s.stream.off('data', check)
        resolve()
      }
      s.stream.on('data', check)
      check()
    })
  await until(a, '(HTTP/2.0)\n\n')
  await until(b, '(HTTP/2.0)\n\n')
  const said = await h2('/say?text=over%20h2', 'POST').ended
  assert.deepEqual(JSON.parse(said.body), { delivered: 2 })
  await until(a, 'id: 1\ndata: over h2\n\n')
  await until(b, 'id: 1\ndata: over h2\n\n')
  a.stream.close()
  b.stream.close()

  // An HTTP/1.1 client on the same port (allowHTTP1).
  const https = require('node:https')
  const body = await new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: url.port, path: '/events', ca: cert, servername: 'localhost' }, (res) => {
      assert.equal(res.httpVersion, '1.1')
      assert.equal(res.headers['content-type'], 'text/event-stream')
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => {
        text += d
        if (/event: welcome\n.*\n\n/.test(text)) {
          req.destroy()
          resolve(text)
        }
      })
    })
    req.on('error', reject)
  })
  assert.match(body, /event: welcome\ndata: you are client \d+ \(HTTP\/1\.1\)\n\n/)
})
