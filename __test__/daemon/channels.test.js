'use strict'
// `ssehub channels`: the SSE-Server drop-in, checked against the captures in
// /work/shared/reference/transcripts/sse-server-*, with its defects fixed.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const net = require('node:net')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { EventSource } = require('eventsource')
const { start, runToEnd, raw, openStream, split, dechunk, chunkedDone } = require('../helpers/daemon')

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-channels-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

const get = (target, extra = '') => `GET ${target} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`
const STREAM_HEAD =
  'HTTP/1.1 200 OK\r\nServer: SSE-Server/0.1\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET\r\n' +
  'Access-Control-Allow-Headers: Cache-Control,Last-Event-Id,X-Requested-With\r\nTransfer-Encoding: chunked\r\n' +
  'Content-Type: text/event-stream\r\nCache-Control: no-cache\r\nKeep-Alive: timeout=600, max=100\r\n' +
  'Connection: Keep-Alive\r\nX-Accel-Buffering: no\r\n\r\n'
const OK_REPLY =
  'HTTP/1.1 200 OK\r\nServer: SSE-Server/0.1\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET\r\n' +
  'Access-Control-Allow-Headers: Cache-Control,Last-Event-Id,X-Requested-With\r\nContent-Type: text/plain\r\n' +
  'Content-Length: 4\r\nCache-Control: no-cache\r\n\r\nOK\r\n'
/** SSE bytes of a stream so far, heartbeats removed. */
const events = (s) => dechunk(split(s.text).body).data.replace(/^:\n\n/gm, '')
const ready = /Web server listening on port (\d+)[\s\S]*?Commands (not )?allowed/

/** Writes to the control port; resolves when the server closed or `ms` passed. */
function control(port, chunks, { ms = 300, secure = false } = {}) {
  return new Promise((resolve) => {
    const tls = require('node:tls')
    const sock = secure ? tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }) : net.connect(port, '127.0.0.1')
    let closed = false
    sock.on('close', () => { closed = true; resolve({ closed: true }) })
    sock.on('error', () => {})
    sock.on(secure ? 'secureConnect' : 'connect', async () => {
      for (const c of chunks) {
        if (typeof c === 'number') await new Promise((r) => setTimeout(r, c))
        else sock.write(c)
      }
      setTimeout(() => { if (!closed) { sock.destroy(); resolve({ closed: false }) } }, ms)
    })
  })
}

describe('channels mode: the SSE-Server scenario', () => {
  let d, port, ctl
  const fifo = path.join(tmp, 'sse.fifo')
  before(async () => {
    d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '-F', fifo, '-u', '/my/sse', '--metrics', '0', '--heartbeat', '1'],
      { ready })
    await d.ready
    port = Number(d.stdout.match(/Web server listening on port (\d+)/)[1])
    ctl = Number(d.stdout.match(/Controller listening on port (\d+) \(127\.0\.0\.1\)/)[1])
  })
  after(() => d.stop())

  test('startup log, a private FIFO, a loopback control port', () => {
    assert.match(d.stdout, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} ={51}\n/)
    assert.match(d.stdout, /URL path prefix is \/my\/sse\n/)
    assert.match(d.stdout, /Controller listening on FIFO .*sse\.fifo\n/)
    assert.equal(fs.statSync(fifo).mode & 0o777, 0o600)
    assert.ok(fs.statSync(fifo).isFIFO())
  })

  test('404, 405 (also for lowercase get), HEAD: SSE-Server bytes, then close', async () => {
    assert.equal(await raw(port, get('/other')),
      'HTTP/1.1 404 Not Found\r\nServer: SSE-Server/0.1\r\nContent-Length: 10\r\nContent-Type: text/plain\r\n\r\nNot found\n')
    // Whole segments: /my/ssefoo is not under /my/sse (the original matched it).
    assert.match(await raw(port, get('/my/ssefoo')), /^HTTP\/1\.1 404 Not Found\r\n/)
    const bad = 'HTTP/1.1 405 Method Not Allowed\r\nServer: SSE-Server/0.1\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nBad request\n'
    assert.equal(await raw(port, 'POST /my/sse HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'), bad)
    assert.equal(await raw(port, 'get /my/sse HTTP/1.1\r\nHost: x\r\n\r\n'), bad)
    assert.equal(await raw(port, 'HEAD /my/sse/x HTTP/1.1\r\nHost: x\r\n\r\n'), OK_REPLY.slice(0, -4))
  })

  test('streams by channel; publishing by query, FIFO and control port; status; fixes', async () => {
    const c1 = openStream(port, get('/my/sse/color/number'))
    const all = openStream(port, get('/my/sse'))
    const page = openStream(port, get('/my/sse/page'))
    const esc = openStream(port, get('/my/sse/a%20b//c+d/'))
    const split1 = openStream(port, get('/my/sse/split'))
    for (const s of [c1, all, page, esc, split1]) await s.waitFor(/\r\n\r\n/)
    assert.equal(split(c1.text).head, STREAM_HEAD)
    await d.waitFor(/Client \d+ requests channels "color" and "number"/)
    await d.waitFor(/Client \d+ requests channels "a b" and "c\+d"/)

    assert.equal(await raw(port, get('/my/sse/color/page?q1=go&q2=end')), OK_REPLY)
    assert.equal(await raw(port, get('/my/sse/a%20b?x%3Dy=1+2+3&status&')), OK_REPLY)
    await raw(port, get('/my/sse?rootonly=1;semi=2'))
    await raw(port, get('/my/sse/page?nl=a%0Ab'))
    await d.waitFor(/Commands not allowed from web clients\./)
    fs.appendFileSync(fifo, 'color/q1 = go\npage /  t y = x y\n number=plain \n')
    fs.appendFileSync(fifo, 'nosuchchannel=nobody\na b/ev=to escaped channel\nspl=it\n')
    await d.waitFor(/Received from \d+ \(.*sse\.fifo\): spl=it/)
    // Two lines in one write, then a third later: every line counts.
    await control(ctl, ['color=L1\ncolor=L2\n', 100, 'color=L3\r\nstatus\r\n'])
    await all.waitFor(/data: L3\n\n/)
    await d.waitFor(/-{49}\n/)

    assert.equal(events(c1), 'event: q1\ndata: go\n\nevent: q2\ndata: end\n\nevent: q1\ndata: go\n\ndata: plain\n\ndata: L1\n\ndata: L2\n\ndata: L3\n\n')
    assert.equal(events(all),
      'event: q1\ndata: go\n\nevent: q2\ndata: end\n\nevent: x=y\ndata: 1+2+3\n\nevent: rootonly\ndata: 1\n\n' +
      'event: semi\ndata: 2\n\nevent: nl\ndata: a\ndata: b\n\nevent: q1\ndata: go\n\nevent:   t y\ndata: x y\n\n' +
      'data: plain\n\ndata: nobody\n\nevent: ev\ndata: to escaped channel\n\ndata: it\n\ndata: L1\n\ndata: L2\n\ndata: L3\n\n')
    assert.equal(events(page), 'event: q1\ndata: go\n\nevent: q2\ndata: end\n\nevent: nl\ndata: a\ndata: b\n\n')
    assert.equal(events(esc), 'event: x=y\ndata: 1+2+3\n\nevent: ev\ndata: to escaped channel\n\n')
    assert.equal(events(split1), '')

    // The status table (CRLF accepted) lists controllers and clients.
    assert.match(d.stdout, /---- Controllers -+\n.*\d+ {2}FIFO {4}.*sse\.fifo\n.*\d+ {2}socket {2}127\.0\.0\.1\n/)
    assert.match(d.stdout, /\d+ {2}127\.0\.0\.1 {8}"color", "number"\n/)
    assert.match(d.stdout, /\d+ {2}127\.0\.0\.1 {8}all channels\n/)
    assert.doesNotMatch(d.stdout, /Unknown command: status/)
    assert.match(d.stdout, /Sent event "q1" with data "go" to web client \d+ \(127\.0\.0\.1\)\n/)
    for (const s of [c1, all, page, esc, split1]) s.close()
  })

  test('bad control input is logged and skipped; a 1 MiB line closes only its controller', async () => {
    const s = openStream(port, get('/my/sse/bad'))
    await s.waitFor(/\r\n\r\n/)
    const other = net.connect(ctl, '127.0.0.1')
    await new Promise((r) => other.on('connect', r))
    const big = await control(ctl, ['bad=1\n', 'x'.repeat(1 << 20) + '\n'], { ms: 2000 })
    assert.ok(big.closed, 'the server closed the controller that sent 1 MiB')
    await d.waitFor(/Warning: line longer than 65536 bytes from \d+/)
    await control(ctl, [Buffer.from('bad=\xff\xfe\n', 'latin1'), 'bad=a\0b\n', '\n', 'nonsense\n', 'bad = still fine\n'])
    await d.waitFor(/Warning: Unknown command: nonsense/)
    other.write('bad=from the other controller\n')
    await s.waitFor(/data: from the other controller\n\n/)
    other.destroy()
    assert.match(d.stdout, /Warning: invalid UTF-8 from \d+ \(127\.0\.0\.1\)/)
    assert.match(d.stdout, /Warning: ignoring a line with a NUL byte/)
    assert.match(d.stdout, /Warning: ignoring an empty line/)
    assert.equal(events(s), 'data: 1\n\ndata: \ufffd\ufffd\n\n'.replace(/\ufffd/g, '\xef\xbf\xbd') + 'data: still fine\n\ndata: from the other controller\n\n')
    s.close()
  })

  test('HTTP/1.0 gets a close-delimited HTTP/1.0 reply; idle streams get heartbeats', async () => {
    const s = openStream(port, 'GET /my/sse/old HTTP/1.0\r\n\r\n')
    await s.waitFor(/\r\n\r\n/)
    assert.equal(split(s.text).head,
      'HTTP/1.0 200 OK\r\nServer: SSE-Server/0.1\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Methods: GET\r\n' +
      'Access-Control-Allow-Headers: Cache-Control,Last-Event-Id,X-Requested-With\r\nContent-Type: text/event-stream\r\n' +
      'Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n\r\n')
    await raw(port, get('/my/sse/old?e=v'))
    await s.waitFor(/event: e\ndata: v\n\n/)
    await s.waitFor(/:\n\n/, 4000)
    assert.ok(!/\r\n[0-9A-F]+\r\n/.test(split(s.text).body), 'no chunk framing on HTTP/1.0')
    s.close()
  })

  test('a real EventSource client receives typed events', async () => {
    const es = new EventSource(`http://127.0.0.1:${port}/my/sse/news`)
    await new Promise((resolve) => { es.onopen = resolve })
    const got = new Promise((resolve) => es.addEventListener('headline', (e) => resolve(e.data)))
    await control(ctl, ['news/headline = hello world\n'])
    assert.equal(await got, 'hello world')
    es.close()
  })

  test('--metrics serves Prometheus text and JSON status on loopback', async () => {
    const mport = Number(d.stdout.match(/Metrics and status on http:\/\/127\.0\.0\.1:(\d+)\/metrics/)[1])
    const local = (target, host) => `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`
    const m = await raw(mport, local('/metrics', `127.0.0.1:${mport}`), { until: (t) => t.includes('ssehub_channels{') })
    assert.match(m, /ssehub_events_published_total\{mode="channels"\} [1-9]\d*/)
    assert.match(m, /ssehub_connections_total\{mode="channels"\} [1-9]/)
    const st = await raw(mport, local('/status', 'localhost'), { until: (t) => t.endsWith('}') })
    assert.equal(JSON.parse(split(st).body).mode, 'channels')
    // A page elsewhere reaching this loopback port (CSRF, DNS rebinding)
    // names its own host: refused.
    const rebound = await raw(mport, local('/status', 'attacker.example'), { until: (t) => t.endsWith('\n') })
    assert.match(rebound, /^HTTP\/1\.1 403 Forbidden/)
  })

  test('halt on the FIFO ends every stream with the chunked terminator and exits 0', async () => {
    const s = openStream(port, get('/my/sse/last'))
    await s.waitFor(/\r\n\r\n/)
    fs.appendFileSync(fifo, 'halt\n')
    await s.closedPromise
    assert.ok(chunkedDone(s.text), JSON.stringify(s.text))
    assert.equal((await d.done).code, 0)
    assert.match(d.stdout, /Closing connection \d+ \(http port\)\n.*Stopping\n$/)
  })
})

describe('channels mode: TLS, -a, logs, config, background, flags', () => {
  const cert = path.join(tmp, 'cert.pem')
  const key = path.join(tmp, 'key.pem')
  before(() => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
      '-days', '2', '-subj', '/CN=localhost'], { stdio: 'ignore' })
  })

  test('TLS on web and control port; -a allows status and halt by query', async () => {
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '-a', '-c', cert, '-k', key], { ready })
    try {
      await d.ready
      const port = Number(d.stdout.match(/Web server listening on port (\d+)/)[1])
      const ctl = Number(d.stdout.match(/Controller listening on port (\d+)/)[1])
      assert.match(d.stdout, /SSL enabled, cert .*cert\.pem and private key .*key\.pem\n/)
      assert.match(d.stdout, /Commands allowed on web and control port\n/)
      const s = openStream(port, get('/chan'), { secure: true })
      await s.waitFor(/\r\n\r\n/)
      assert.equal(await raw(port, get('/chan?t=v&status'), { secure: true }), OK_REPLY)
      await d.waitFor(/ {2}HTTP {4}127\.0\.0\.1\n/)
      await control(ctl, ['chan=via-tls-control\n'], { secure: true })
      await s.waitFor(/data: via-tls-control\n\n/)
      assert.equal(events(s), 'event: t\ndata: v\n\ndata: via-tls-control\n\n')
      const plain = await raw(port, get('/chan'), { timeout: 2000 })
      assert.doesNotMatch(plain, /200 OK/)
      await d.waitFor(/Cannot set up SSL to \d+: /)
      assert.equal(await raw(port, get('/?halt'), { secure: true }), OK_REPLY)
      await s.closedPromise
      assert.ok(chunkedDone(s.text))
      assert.equal((await d.done).code, 0)
    } finally { await d.stop() }
  })

  test('-l log file: line format, exclusive lock (exit 75), SIGTERM exits 0', async () => {
    const log = path.join(tmp, 'sse.log')
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-l', log])
    try {
      const deadline = Date.now() + 5000
      while (!(fs.existsSync(log) && /Commands not allowed/.test(fs.readFileSync(log, 'utf8'))) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50))
      }
      const text = fs.readFileSync(log, 'utf8')
      for (const line of text.trim().split('\n')) assert.match(line, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} /)
      assert.match(text, /Logging to file .*sse\.log\n/)
      assert.equal(d.stdout, '', 'nothing on stdout with -l')
      const second = await runToEnd(['channels', '-n', '-p', '127.0.0.1:0', '-l', log])
      assert.equal(second.code, 75)
      assert.match(second.stderr, /^ssehub channels: Cannot get an exclusive lock on /)
      d.child.kill('SIGTERM')
      assert.equal((await d.done).code, 0)
      assert.match(fs.readFileSync(log, 'utf8'), /Stopping\n$/)
    } finally { await d.stop() }
  })

  test('config file fills options; missing config, bad flags, bad paths: clear errors', async () => {
    const conf = path.join(tmp, 'sse.conf')
    fs.writeFileSync(conf, '# options\n-u /from/config\n--port 127.0.0.1:0\n')
    const d = start(['channels', '-n', '-C', conf], { ready })
    try {
      await d.ready
      assert.match(d.stdout, /Read configuration from .*sse\.conf\n/)
      assert.match(d.stdout, /URL path prefix is \/from\/config\n/)
    } finally { await d.stop() }
    let r = await runToEnd(['channels', '-n', '-C', path.join(tmp, 'missing.conf')])
    assert.equal(r.code, 66)
    assert.match(r.stderr, /^ssehub channels: cannot read configuration file .*missing\.conf: No such file or directory/)
    r = await runToEnd(['channels', '-n', '-u', 'relative'])
    assert.equal(r.code, 64)
    assert.equal(r.stderr, 'ssehub channels: The URL path (--urlpath, -u) must start with a slash (/)\n')
    r = await runToEnd(['channels', '-n', '-z'])
    assert.equal(r.code, 64)
    assert.match(r.stderr, /^ssehub channels: Unknown or ambiguous option z/)
    r = await runToEnd(['channels', '-n', '-c', cert])
    assert.equal(r.code, 64)
    r = await runToEnd(['channels', '-n', '-p', '127.0.0.1:0', '-c', cert, '-k', path.join(tmp, 'nokey.pem')])
    assert.equal(r.code, 69)
    assert.match(r.stderr, /Unable to use private key/)
    r = await runToEnd(['channels', '--help'])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /--controlport, -P/)
  })

  test('without -n the launcher starts a background daemon; halt on the control port stops it', async () => {
    const log = path.join(tmp, 'bg.log')
    const r = await runToEnd(['channels', '-p', '127.0.0.1:0', '-P', '0', '-l', log])
    assert.equal(r.code, 0)
    const pid = Number(r.stdout.match(/^Background process started, process id (\d+)\n$/)[1])
    try {
      let text = ''
      const deadline = Date.now() + 5000
      while (!/Commands not allowed/.test(text) && Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, 50))
        text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : ''
      }
      assert.match(text, new RegExp(`Running in background, process id ${pid}\n`))
      const ctl = Number(text.match(/Controller listening on port (\d+)/)[1])
      await control(ctl, ['halt\n'])
      const gone = Date.now() + 5000
      while (Date.now() < gone) {
        try { process.kill(pid, 0) } catch { break }
        await new Promise((res) => setTimeout(res, 50))
      }
      assert.throws(() => process.kill(pid, 0), 'the daemon exited')
    } finally { try { process.kill(pid, 'SIGKILL') } catch {} }
  })

  test('-U drops privileges after binding (when run as root)', { skip: process.getuid() !== 0 }, async () => {
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-U', 'nobody'], { ready })
    try {
      await d.ready
      assert.match(d.stdout, /Running as user nobody \((\d+)\)/)
      const uid = Number(d.stdout.match(/Running as user nobody \((\d+)\)/)[1])
      const status = fs.readFileSync(`/proc/${d.child.pid}/status`, 'utf8')
      assert.match(status, new RegExp(`^Uid:\\s+${uid}\\s+${uid}\\s+${uid}`, 'm'))
    } finally { await d.stop() }
    const r = await runToEnd(['channels', '-n', '-p', '127.0.0.1:0', '-U', 'no-such-user-here'])
    assert.equal(r.code, 67)
    assert.match(r.stderr, /Unknown user: no-such-user-here/)
  })
})
