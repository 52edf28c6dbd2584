'use strict'
// The daemon's one request path: every mode, both paths (a stream target,
// which the native writer would take, and a one-shot target, which hyper
// serves; channels over TLS, hyper only) answer the same bad request with
// the same status, the one Node's own HTTP parser gives. Then what the
// request gate and the log protect: descriptors kept for the control side,
// forged log lines, a replaced FIFO, loopback listeners asked for another
// host.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const net = require('node:net')
const { execFileSync } = require('node:child_process')
const { start, raw, openStream } = require('../helpers/daemon')

const FIXTURES = path.join(__dirname, '..', 'fixtures')
const SECRET = 'requests-secret-0123456789abcdef'
const statusOf = (text) => {
  const m = text.match(/^HTTP\/1\.[01] (\d{3})/)
  return m ? Number(m[1]) : 0
}
const headEnd = (t) => t.includes('\r\n\r\n')

/** Bad requests, built for a target, and the status Node answers them with. */
const BAD = [
  ['Content-Length with Transfer-Encoding', (t) => `GET ${t} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['two different Content-Lengths', (t) => `GET ${t} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`, 400],
  ['a malformed Content-Length', (t) => `GET ${t} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1x\r\n\r\n`, 400],
  ['Transfer-Encoding not ending in chunked', (t) => `GET ${t} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n`, 400],
  ['200 KB of headers', (t) => `GET ${t} HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(200_000)}\r\n\r\n`, 431],
  ['500 header lines', (t) => `GET ${t} HTTP/1.1\r\n${Array.from({ length: 500 }, (_, i) => `X-${i}: y\r\n`).join('')}\r\n`, 431],
  ['a 20 KB request line', (t) => `GET ${t}${t.includes('?') ? '&' : '?'}${'q'.repeat(20_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`, 414],
  ['obs-fold', (t) => `GET ${t} HTTP/1.1\r\nHost: localhost\r\nX-A: 1\r\n folded\r\n\r\n`, 400],
  ['a NUL in a header', (t) => `GET ${t} HTTP/1.1\r\nHost: localhost\r\nX-A: a\0b\r\n\r\n`, 400],
  ['HTTP/0.9', (t) => `GET ${t}\r\n\r\n`, 400],
]

/** Each mode: how to start it, a stream target, a one-shot target. */
function modes(tmp) {
  return [
    {
      name: 'channels',
      args: ['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--heartbeat', '0'],
      ready: /Web server listening on port (\d+)[\s\S]*?Commands/,
      stream: '/news',
      oneShot: '/news?e=1',
    },
    {
      name: 'channels over TLS',
      args: ['channels', '-n', '-p', '127.0.0.1:0', '-c', path.join(FIXTURES, 'test-cert.pem'), '-k', path.join(FIXTURES, 'test-key.pem')],
      ready: /Web server listening on port (\d+)[\s\S]*?Commands/,
      stream: '/news',
      oneShot: '/news?e=1',
      secure: true,
    },
    {
      name: 'jwt',
      args: ['jwt', '-secret', SECRET, '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0'],
      ready: /Listening for clients on 127\.0\.0\.1:(\d+)/,
      stream: '/events/',
      oneShot: '/nothing-here',
    },
    {
      name: 'demo',
      args: ['demo'],
      env: { PORT: '0', HOST: '127.0.0.1' },
      ready: /Starting sse-server at :(\d+)/,
      stream: '/stream',
      oneShot: '/status',
    },
  ].map((m) => ({ ...m, tmp }))
}

describe('one request path: the same status on both paths of every mode, as Node', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-requests-'))
  after(() => fs.rmSync(tmp, { recursive: true, force: true }))

  for (const mode of modes(tmp)) {
    describe(mode.name, () => {
      let d, port
      before(async () => {
        d = start(mode.args, { ready: mode.ready, env: mode.env })
        port = Number((await d.ready)[1])
      })
      after(() => d.stop())

      for (const [what, build, want] of BAD) {
        test(`${what}: ${want}`, async () => {
          const opts = { secure: mode.secure, until: headEnd }
          const onStream = statusOf(await raw(port, build(mode.stream), opts))
          const onOneShot = statusOf(await raw(port, build(mode.oneShot), opts))
          assert.deepEqual({ stream: onStream, oneShot: onOneShot }, { stream: want, oneShot: want })
        })
      }

      test('a well-formed 15 KB head is served on both paths', async () => {
        const big = `X-Big: ${'a'.repeat(15_000)}\r\n`
        const opts = { secure: mode.secure, until: headEnd }
        const oneShot = statusOf(await raw(port, `GET ${mode.oneShot} HTTP/1.1\r\nHost: localhost\r\n${big}\r\n`, opts))
        assert.notEqual(oneShot, 431)
        assert.ok(oneShot >= 200 && oneShot < 500, `served: ${oneShot}`)
      })
    })
  }
})

describe('--max-header-size raises the head limit', () => {
  test('a 20 KB header passes with --max-header-size 32768 and not without', async () => {
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '--max-header-size', '32768'], { ready: /Web server listening on port (\d+)/ })
    try {
      const port = Number((await d.ready)[1])
      const big = `GET /x?a=1 HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`
      assert.equal(statusOf(await raw(port, big, { until: headEnd })), 200)
      const bigger = big.replace('a'.repeat(20_000), 'a'.repeat(40_000))
      assert.equal(statusOf(await raw(port, bigger, { until: headEnd })), 431)
    } finally {
      await d.stop()
    }
  })
})

describe('demo: MAX_HEADER_SIZE raises the head limit', () => {
  test('a 20 KB header passes with MAX_HEADER_SIZE=32768 and not without', async () => {
    for (const [env, want] of [[{ MAX_HEADER_SIZE: '32768' }, 200], [{}, 431]]) {
      const d = start(['demo'], { env: { PORT: '0', HOST: '127.0.0.1', ...env }, ready: /Starting sse-server at :(\d+)/ })
      try {
        const port = Number((await d.ready)[1])
        const big = `GET /status HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`
        assert.equal(statusOf(await raw(port, big, { until: headEnd })), want, JSON.stringify(env))
      } finally {
        await d.stop()
      }
    }
  })
})

describe('the channels log', () => {
  test('a client cannot forge a log line with CR/LF in a channel name or query', async () => {
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '--heartbeat', '0'], { ready: /Web server listening on port (\d+)[\s\S]*?Commands/ })
    try {
      const port = Number((await d.ready)[1])
      const s = openStream(port, 'GET /x%0d%0a2026-01-01%2000:00:00+0000%20Forged HTTP/1.1\r\nHost: localhost\r\n\r\n')
      await s.waitFor(/\r\n\r\n/)
      await raw(port, 'GET /y?ev%0aForged=1 HTTP/1.1\r\nHost: localhost\r\n\r\n')
      await d.waitFor(/Received from \d+ \(127\.0\.0\.1\): ev\\nForged=1/)
      await d.waitFor(/requests channel "x\\r\\n2026-01-01 00:00:00\+0000 Forged"/)
      const lines = d.stdout.split('\n')
      assert.ok(!lines.some((l) => /^Forged|^2026-01-01 00:00:00\+0000 Forged/.test(l)), d.stdout)
      s.close()
    } finally {
      await d.stop()
    }
  })

  test('with stdout on a pipe nobody reads, deliveries go on and lost lines are counted', async () => {
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--metrics', '0', '--heartbeat', '0'], { ready: /Metrics and status on http:\/\/127\.0\.0\.1:(\d+)/ })
    try {
      const mport = Number((await d.ready)[1])
      const port = Number(d.stdout.match(/Web server listening on port (\d+)/)[1])
      const ctl = Number(d.stdout.match(/Controller listening on port (\d+)/)[1])
      d.child.stdout.pause() // nobody reads: the pipe fills, the log writer blocks
      const streams = Array.from({ length: 60 }, () => openStream(port, 'GET /busy HTTP/1.1\r\nHost: localhost\r\n\r\n'))
      for (const s of streams) await s.waitFor(/\r\n\r\n/)
      const c = net.connect(ctl, '127.0.0.1')
      await new Promise((r) => c.on('connect', r))
      const N = 3000
      let lines = ''
      for (let i = 0; i < N; i++) lines += `busy = ${'p'.repeat(200)} ${i}\n`
      c.end(lines)
      for (const s of streams) await s.waitFor(new RegExp(`p ${N - 1}\n\n`), 20_000)
      const status = await raw(mport, 'GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: (t) => t.includes('ssehub_log_lines_dropped_total{') && t.endsWith('\n') })
      const dropped = Number(status.match(/ssehub_log_lines_dropped_total\{mode="channels"\} (\d+)/)[1])
      assert.ok(dropped > 0, `lines dropped and counted: ${dropped}`)
      // A new client is still served while the log is stuck.
      const late = openStream(port, 'GET /late HTTP/1.1\r\nHost: localhost\r\n\r\n')
      await late.waitFor(/^HTTP\/1\.1 200 OK/)
      late.close()
      streams.forEach((s) => s.close())
      d.child.stdout.resume()
    } finally {
      await d.stop()
    }
  })
})

describe('the FIFO', () => {
  test('removed and made again, the new FIFO is read', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-fifo-'))
    const fifo = path.join(tmp, 'ctl.fifo')
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-F', fifo, '--heartbeat', '0'], { ready: /Web server listening on port (\d+)[\s\S]*?Commands/ })
    try {
      const port = Number((await d.ready)[1])
      const s = openStream(port, 'GET /f HTTP/1.1\r\nHost: localhost\r\n\r\n')
      await s.waitFor(/\r\n\r\n/)
      fs.writeFileSync(fifo, 'f = before\n')
      await s.waitFor(/data: before\n\n/)
      fs.rmSync(fifo)
      execFileSync('mkfifo', ['-m', '600', fifo])
      await d.waitFor(/FIFO .* was replaced; reading the new one/)
      // A writer to the new FIFO does not hang: the daemon reads it.
      execFileSync('sh', ['-c', `printf 'f = after\\n' > ${fifo}`], { timeout: 5000 })
      await s.waitFor(/data: after\n\n/)
      s.close()
    } finally {
      await d.stop()
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })
})

describe('descriptors', () => {
  test('with the web port full, the control port and metrics are still served', async () => {
    // 300 descriptors: the web port gets what is left after the reserve.
    const bin = require('../../lib/platform').daemonBinaryPath()
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--metrics', '0', '--heartbeat', '0'], {
      ready: /Metrics and status on http:\/\/127\.0\.0\.1:(\d+)/,
      via: ['sh', '-c', `ulimit -n 300 && exec "$0" "$@"`, bin],
    })
    const socks = []
    try {
      const mport = Number((await d.ready)[1])
      const port = Number(d.stdout.match(/Web server listening on port (\d+)/)[1])
      const ctl = Number(d.stdout.match(/Controller listening on port (\d+)/)[1])
      const first = openStream(port, 'GET /full HTTP/1.1\r\nHost: localhost\r\n\r\n')
      await first.waitFor(/\r\n\r\n/)
      for (let i = 0; i < 400; i++) {
        const s = net.connect(port, '127.0.0.1')
        s.on('error', () => {})
        socks.push(s)
      }
      await new Promise((r) => setTimeout(r, 500))
      const c = net.connect(ctl, '127.0.0.1')
      c.on('error', () => {})
      await new Promise((r) => c.on('connect', r))
      c.write('full = through the control port\n')
      await first.waitFor(/data: through the control port\n\n/)
      c.destroy()
      const m = await raw(mport, 'GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n', { until: (t) => t.trimEnd().endsWith('}') })
      assert.match(m, /^HTTP\/1\.1 200 OK/)
      first.close()
    } finally {
      socks.forEach((s) => s.destroy())
      await d.stop()
    }
  })
})

describe('loopback control listeners', () => {
  test('jwt /token/ refuses a request for another host (CSRF, DNS rebinding)', async () => {
    const d = start(['jwt', '-secret', SECRET, '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0'], { ready: /control on 127\.0\.0\.1:(\d+)/ })
    try {
      const ctl = Number((await d.ready)[1])
      const body = 'userId=u&channel=c&exp=60'
      const post = (host) => `POST /token/ HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n${body}`
      const evil = await raw(ctl, post('attacker.example'), { until: (t) => t.endsWith('\n') })
      assert.match(evil, /^HTTP\/1\.1 403 Forbidden/)
      assert.doesNotMatch(evil, /eyJ/, 'no token minted')
      const good = await raw(ctl, post(`127.0.0.1:${ctl}`), { until: (t) => /eyJ[\w.-]+$/.test(t) })
      assert.match(good, /^HTTP\/1\.1 200 OK/)
    } finally {
      await d.stop()
    }
  })

  test('jwt: a request body trickled forever is cut off (408)', async () => {
    const d = start(['jwt', '-secret', SECRET, '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0'], {
      ready: /control on 127\.0\.0\.1:(\d+)/,
      env: { SSEHUB_HEADER_TIMEOUT_MS: '600' },
    })
    try {
      const ctl = Number((await d.ready)[1])
      const sock = net.connect(ctl, '127.0.0.1')
      await new Promise((r) => sock.on('connect', r))
      let got = ''
      sock.on('data', (b) => { got += b })
      sock.write('POST /emit/ HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\npayload=')
      const trickle = setInterval(() => sock.write('x'), 100)
      const closed = new Promise((r) => sock.on('close', r))
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))])
      clearInterval(trickle)
      sock.destroy()
      assert.match(got, /^HTTP\/1\.1 408 Request Timeout/)
    } finally {
      await d.stop()
    }
  })
})

describe('--log-summary', () => {
  test('one line per event instead of one per recipient', async () => {
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--heartbeat', '0', '--log-summary'], { ready: /Controller listening on port (\d+)/ })
    try {
      await d.ready
      const port = Number(d.stdout.match(/Web server listening on port (\d+)/)[1])
      const ctl = Number(d.stdout.match(/Controller listening on port (\d+)/)[1])
      const streams = Array.from({ length: 3 }, () => openStream(port, 'GET /sum HTTP/1.1\r\nHost: localhost\r\n\r\n'))
      for (const s of streams) await s.waitFor(/\r\n\r\n/)
      const c = net.connect(ctl, '127.0.0.1')
      await new Promise((r) => c.on('connect', r))
      c.end('sum = hello\n')
      for (const s of streams) await s.waitFor(/data: hello\n\n/)
      await d.waitFor(/Sent event "message" with data "hello" to 3 web clients/)
      assert.doesNotMatch(d.stdout, /to web client \d+/)
      streams.forEach((s) => s.close())
    } finally {
      await d.stop()
    }
  })
})
