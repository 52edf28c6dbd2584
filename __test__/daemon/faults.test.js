'use strict'
// The daemon under faults: clients reset mid-write, a FIFO whose writers
// come and go, a log on a full disk or removed, SIGTERM with a backlog;
// and its security defaults: private control side, TLS 1.2+ only, clear
// errors for bad certificate files.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const net = require('node:net')
const path = require('node:path')
const tls = require('node:tls')
const { start, runToEnd, raw, openStream, split, dechunk, chunkedDone } = require('../helpers/daemon')

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-faults-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

const get = (target) => `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`
const events = (s) => dechunk(split(s.text).body).data.replace(/^:\n\n/gm, '')
const ready = /Web server listening on port (\d+)[\s\S]*?Commands (not )?allowed/
const FIXTURES = path.join(__dirname, '..', 'fixtures')

function channels(args, opts = {}) {
  const d = start(['channels', '-n', '-p', '127.0.0.1:0', '--heartbeat', '0', ...args], { ready, ...opts })
  d.port = () => Number((d.stdout + d.stderr).match(/Web server listening on port (\d+)/)[1])
  d.ctl = () => Number(d.stdout.match(/Controller listening on port (\d+)/)[1])
  d.metrics = () => Number(d.stdout.match(/Metrics and status on http:\/\/127\.0\.0\.1:(\d+)\//)[1])
  return d
}

/** Writes lines to the control port and closes it cleanly. */
function control(port, text) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.end(text))
    sock.on('close', resolve)
    sock.on('error', reject)
  })
}

async function status(port) {
  const r = await raw(port, `GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n`, { until: (t) => t.trimEnd().endsWith('}') })
  return JSON.parse(split(r).body)
}

async function until(fn, ms = 5000, what = 'condition') {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('channels mode under faults', () => {
  let d
  const fifo = path.join(tmp, 'faults.fifo')
  before(async () => {
    d = channels(['-P', '0', '-F', fifo, '--metrics', '0'])
    await d.ready
  })
  after(() => d.stop())

  test('clients reset mid-write are dropped; the others get every event; the count returns', async () => {
    const streams = Array.from({ length: 6 }, () => openStream(d.port(), get('/rst')))
    for (const s of streams) await s.waitFor(/\r\n\r\n/)
    const before = (await status(d.metrics())).connected_clients
    const payload = 'r'.repeat(16 * 1024)
    let lines = ''
    for (let i = 0; i < 400; i++) lines += `rst/e${i} = ${payload}\n`
    const sending = control(d.ctl(), lines)
    await new Promise((r) => setTimeout(r, 20))
    for (const s of streams.slice(0, 3)) s.sock.resetAndDestroy()
    await sending
    for (const s of streams.slice(3)) {
      await s.waitFor(/event: e399\n/, 10000)
      assert.equal((events(s).match(/^event: e\d+$/gm) || []).length, 400)
    }
    await until(async () => (await status(d.metrics())).connected_clients === before - 3, 5000, 'the reset clients to go')
    streams.slice(3).forEach((s) => s.close())
    assert.equal(d.exited, null)
  })

  test('the FIFO keeps working while writers open, write and close it again and again', async () => {
    const s = openStream(d.port(), get('/fifo'))
    await s.waitFor(/\r\n\r\n/)
    for (let i = 0; i < 20; i++) {
      const fd = fs.openSync(fifo, 'w')
      fs.writeSync(fd, `fifo = w${i}\n`)
      fs.closeSync(fd)
    }
    await s.waitFor(/data: w19\n\n/)
    assert.equal(events(s), Array.from({ length: 20 }, (_, i) => `data: w${i}\n\n`).join(''))
    s.close()
  })
})

test('a log on a full disk is reported once; the daemon serves on', async () => {
  const d = channels(['-P', '0', '-l', '/dev/full'], { ready: /cannot write the log/ })
  try {
    await d.ready
    // No log, so find the ports from /proc: the web port is the first listener.
    const ports = listeningPorts(d.child.pid)
    assert.equal(ports.length, 2, `two listeners: ${ports}`)
    const [web, ctl] = ports
    let s = openStream(web, get('/full'))
    if (!(await s.waitFor(/\r\n\r\n/, 2000).then(() => true, () => false))) {
      s = openStream(ctl, get('/full')) // the order of listeners was the other way round
      await s.waitFor(/\r\n\r\n/)
    }
    const ctlPort = s.sock.remotePort === web ? ctl : web
    await control(ctlPort, 'full = still served\n')
    await s.waitFor(/data: still served\n\n/)
    assert.equal((d.stderr.match(/cannot write the log/g) || []).length, 1, d.stderr)
    s.close()
  } finally {
    await d.stop()
  }
})

/** The TCP ports a process listens on (from /proc/net/tcp*). */
function listeningPorts(pid) {
  const inodes = new Set()
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))
    if (m) inodes.add(m[1])
  }
  const ports = []
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      if (f[3] === '0A' && inodes.has(f[9])) ports.push(parseInt(f[1].split(':').pop(), 16))
    }
  }
  return ports
}

test('a log file removed while running: no crash, streams go on, SIGTERM exits 0', async () => {
  const log = path.join(tmp, 'removed.log')
  const d = channels(['-P', '0', '-l', log], { ready: null })
  try {
    await until(() => fs.existsSync(log) && /Commands not allowed/.test(fs.readFileSync(log, 'utf8')), 5000, 'the log')
    const text = fs.readFileSync(log, 'utf8')
    const web = Number(text.match(/Web server listening on port (\d+)/)[1])
    const ctl = Number(text.match(/Controller listening on port (\d+)/)[1])
    fs.rmSync(log)
    const s = openStream(web, get('/gone'))
    await s.waitFor(/\r\n\r\n/)
    await control(ctl, 'gone = after the log went\n')
    await s.waitFor(/data: after the log went\n\n/)
    d.child.kill('SIGTERM')
    await s.closedPromise
    assert.ok(chunkedDone(s.text))
    assert.equal((await d.done).code, 0)
  } finally {
    await d.stop()
  }
})

test('SIGTERM loses nothing: every accepted event reaches every client, then the streams end', async () => {
  const d = channels(['-P', '0'])
  try {
    await d.ready
    const streams = Array.from({ length: 3 }, () => openStream(d.port(), get('/term')))
    for (const s of streams) await s.waitFor(/\r\n\r\n/)
    streams[0].sock.pause() // a reader that is behind when the signal comes
    // One query publishes 150 events (within the 16 KiB head limit); its
    // OK means all were accepted.
    const pairs = Array.from({ length: 150 }, (_, i) => `e${i}=${'t'.repeat(90)}`).join('&')
    assert.match(await raw(d.port(), get(`/term?${pairs}`)), /^HTTP\/1\.1 200 OK/)
    d.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 300))
    streams[0].sock.resume()
    for (const s of streams) {
      await s.closedPromise
      assert.ok(chunkedDone(s.text), 'the chunked stream was terminated')
      const got = events(s).match(/^event: e\d+$/gm) || []
      assert.equal(got.length, 150)
      assert.equal(got[149], 'event: e149')
    }
    assert.equal((await d.done).code, 0)
  } finally {
    await d.stop()
  }
})

describe('security defaults and TLS', () => {
  const cert = path.join(FIXTURES, 'test-cert.pem')
  const key = path.join(FIXTURES, 'test-key.pem')

  test('control port, metrics and FIFO are private unless opened deliberately', async () => {
    const fifo = path.join(tmp, 'private.fifo')
    const open = path.join(tmp, 'open.fifo')
    const d = channels(['-P', '0', '--metrics', '0', '-F', fifo])
    const o = channels(['-P', '0', '-F', open, '--fifo-mode', '0666'])
    try {
      await Promise.all([d.ready, o.ready])
      assert.match(d.stdout, /Controller listening on port \d+ \(127\.0\.0\.1\)/)
      assert.match(d.stdout, /Metrics and status on http:\/\/127\.0\.0\.1:\d+\/metrics/)
      assert.equal(fs.statSync(fifo).mode & 0o777, 0o600)
      assert.equal(fs.statSync(open).mode & 0o777, 0o666)
    } finally {
      await d.stop()
      await o.stop()
    }
    // A FIFO that already exists world-writable is used, with a warning.
    const again = channels(['-P', '0', '-F', open])
    try {
      await again.ready
      await again.waitFor(/Warning: FIFO .*open\.fifo is writable by every user \(mode 0666\)/, 3000)
    } finally {
      await again.stop()
    }
  })

  test('TLS 1.2 and 1.3 only; the control port handshake times out too', async () => {
    const d = channels(['-P', '0', '-c', cert, '-k', key], { env: { SSEHUB_HEADER_TIMEOUT_MS: '500' } })
    try {
      await d.ready
      for (const version of ['TLSv1.2', 'TLSv1.3']) {
        const s = openStream(d.port(), get('/tls'), { secure: true })
        await s.waitFor(/^HTTP\/1\.1 200 OK/)
        s.close()
        const sock = tls.connect({ port: d.port(), host: '127.0.0.1', rejectUnauthorized: false, minVersion: version, maxVersion: version })
        const got = await new Promise((resolve, reject) => { sock.on('secureConnect', () => resolve(sock.getProtocol())); sock.on('error', reject) })
        assert.equal(got, version)
        sock.destroy()
      }
      const old = tls.connect({ port: d.port(), host: '127.0.0.1', rejectUnauthorized: false, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' })
      const err = await new Promise((resolve) => { old.on('secureConnect', () => resolve(null)); old.on('error', resolve) })
      assert.ok(err, 'a TLS 1.0/1.1 handshake must fail')
      // An alert received from the server: it refused the old version.
      assert.match(String(err.code), /^ERR_SSL_\w*ALERT_(PROTOCOL_VERSION|HANDSHAKE_FAILURE)$/)
      // A silent peer on the TLS control port is dropped after the timeout.
      const t0 = Date.now()
      assert.equal(await raw(d.ctl(), '', { timeout: 4000 }), '')
      assert.ok(Date.now() - t0 < 3000, `dropped after ${Date.now() - t0} ms`)
    } finally {
      await d.stop()
    }
  })

  test('bad certificate or key files are a clear start error (exit 69)', async () => {
    const garbage = path.join(tmp, 'garbage.pem')
    fs.writeFileSync(garbage, 'not a pem file\n')
    const otherKey = path.join(tmp, 'other-key.pem')
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
    fs.writeFileSync(otherKey, privateKey.export({ type: 'pkcs8', format: 'pem' }))
    const cases = [
      [garbage, key, /Unable to use certificate .*garbage\.pem: no certificate in the file/],
      [cert, garbage, /Unable to use private key .*garbage\.pem/],
      [cert, otherKey, /Unable to use certificate .*test-cert\.pem with its key/],
      [path.join(tmp, 'missing.pem'), key, /Unable to use certificate .*missing\.pem/],
    ]
    for (const [c, k, message] of cases) {
      const r = await runToEnd(['channels', '-n', '-p', '127.0.0.1:0', '-c', c, '-k', k])
      assert.equal(r.code, 69, r.stderr)
      assert.match(r.stderr, message)
      assert.equal(r.stderr.trim().split('\n').length, 1, 'one line')
    }
  })
})
