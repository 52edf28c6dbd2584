'use strict'
// The operator side of each mode, on the listener that serves /metrics
// (channels: --metrics; jwt: the control listener; demo: its port, to
// loopback peers): /healthz, /readyz, the status page /ui/ and its JSON,
// build info and the standard process metrics.
const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const http2 = require('node:http2')
const { start, raw, openStream, split } = require('../helpers/daemon')

const VERSION = require('../../package.json').version
const get = (target) => `GET ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`
const complete = (t) => {
  const m = t.match(/Content-Length: (\d+)\r\n/i)
  const at = t.indexOf('\r\n\r\n')
  return m && at >= 0 && Buffer.byteLength(t.slice(at + 4), 'latin1') >= Number(m[1])
}
const fetchRaw = async (port, target) => {
  const r = await raw(port, get(target), { until: complete })
  return { status: Number(r.split(' ')[1]), ...split(r) }
}

const MODES = [
  {
    name: 'channels',
    args: ['channels', '-n', '-p', '127.0.0.1:0', '--metrics', '0', '--heartbeat', '0'],
    ready: /Web server listening on port (\d+)[\s\S]*?Metrics and status on http:\/\/127\.0\.0\.1:(\d+)/,
    ports: (m) => ({ web: Number(m[1]), ops: Number(m[2]) }),
    stream: '/news',
    channel: 'news',
  },
  {
    name: 'jwt',
    args: ['jwt', '-secret', 'ops-secret-0123456789abcdef', '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0'],
    ready: /Listening for clients on 127\.0\.0\.1:(\d+), control on 127\.0\.0\.1:(\d+)/,
    ports: (m) => ({ web: Number(m[1]), ops: Number(m[2]) }),
  },
  {
    name: 'demo',
    args: ['demo'],
    env: { PORT: '0', HOST: '127.0.0.1' },
    ready: /Starting sse-server at :(\d+)/,
    ports: (m) => ({ web: Number(m[1]), ops: Number(m[1]) }),
    stream: '/stream',
  },
]

describe('operator endpoints', () => {
  for (const mode of MODES) {
    test(`${mode.name}: /healthz, /readyz, /ui/, its status JSON and /metrics`, async () => {
      const d = start(mode.args, { ready: mode.ready, env: mode.env })
      try {
        const { web, ops } = mode.ports(await d.ready)
        const s = mode.stream && openStream(web, get(mode.stream))
        if (s) await s.waitFor(/\r\n\r\n/)
        assert.deepEqual(await fetchRaw(ops, '/healthz').then((r) => [r.status, r.body]), [200, 'ok\n'])
        assert.deepEqual(await fetchRaw(ops, '/readyz').then((r) => [r.status, r.body]), [200, 'ready\n'])
        const page = await fetchRaw(ops, '/ui/')
        assert.equal(page.status, 200)
        assert.match(page.head, /Content-Type: text\/html; charset=utf-8/)
        assert.match(page.body, /<title>ssehub status<\/title>/)
        assert.doesNotMatch(page.body, /<(script|link|img)[^>]+(src|href)=["']?https?:/, 'no external assets')
        const st = JSON.parse((await fetchRaw(ops, '/ui/status')).body)
        assert.equal(st.mode, mode.name)
        assert.equal(st.version, VERSION)
        assert.equal(typeof st.uptime_seconds, 'number')
        for (const key of Object.keys(st)) assert.match(key, /^[a-z_]+$/, 'one key style: snake_case')
        if (s) {
          assert.equal(st.connected_clients, 1)
          if (mode.channel) assert.deepEqual(st.largest_channels[0], { channel: mode.channel, clients: 1 })
        }
        const m = (await fetchRaw(ops, '/metrics')).body
        assert.match(m, new RegExp(`ssehub_build_info\\{mode="${mode.name}",version="${VERSION.replace(/\./g, '\\.')}"\\} 1\n`))
        for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_open_fds', 'process_max_fds', 'process_start_time_seconds']) {
          assert.match(m, new RegExp(`^${name} [0-9.e+]+$`, 'm'), name)
        }
        if (s) s.close()
      } finally {
        await d.stop()
      }
    })
  }
})

// Every operator page, and /status. (The demo's /status is the original's
// public page: for a foreign host it answers the public view, see below.)
const OPS_PATHS = ['/ui/', '/ui/status', '/ui/app.css', '/ui/app.js', '/metrics', '/status', '/healthz', '/readyz']
const REBIND = 'rebind.attacker.example'
const statusOf = (text) => Number(text.split(' ')[1])

/** The status of an HTTP/2 request on `session` (h2c, prior knowledge). */
function h2status(session, headers) {
  return new Promise((resolve, reject) => {
    const req = session.request(headers)
    req.on('response', (h) => { resolve(h[':status']); req.close() })
    req.on('error', reject)
    req.end()
  })
}

describe('operator pages answer only a loopback host (DNS rebinding), on HTTP/1 and HTTP/2', () => {
  for (const mode of MODES) {
    test(`${mode.name}: Host, duplicate Host, absolute-form and :authority`, async (t) => {
      const d = start(mode.args, { ready: mode.ready, env: mode.env })
      t.after(() => d.stop())
      const { ops } = mode.ports(await d.ready)
      const ask = async (head) => statusOf(await raw(ops, head, { until: complete }))
      for (const path of OPS_PATHS) {
        const refused = mode.name === 'demo' && path === '/status' ? 200 : 403
        const req = (line, hosts) => `${line} HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join('')}\r\n`
        assert.equal(await ask(req(`GET ${path}`, [`localhost:${ops}`])), 200, `${path} for localhost`)
        assert.equal(await ask(req(`GET ${path}`, [`127.0.0.1:${ops}`])), 200, `${path} for 127.0.0.1`)
        assert.equal(await ask(req(`GET ${path}`, [REBIND])), refused, `${path} for ${REBIND}`)
        assert.equal(await ask(req(`GET ${path}`, [`${REBIND}:${ops}`])), refused, `${path} for ${REBIND} with a port`)
        assert.equal(await ask(req(`GET ${path}`, ['localhost', REBIND])), refused, `${path} with a second Host`)
        assert.equal(await ask(req(`GET ${path}`, [REBIND, 'localhost'])), refused, `${path} with a second Host first`)
        assert.equal(await ask(req(`GET http://${REBIND}${path}`, ['localhost'])), refused, `${path}, absolute-form for ${REBIND}`)
        assert.equal(await ask(req(`GET http://127.0.0.1:${ops}${path}`, ['localhost'])), 200, `${path}, absolute-form for 127.0.0.1`)
      }
      const session = http2.connect(`http://127.0.0.1:${ops}`)
      session.on('error', () => {})
      t.after(() => session.close())
      for (const path of OPS_PATHS) {
        const refused = mode.name === 'demo' && path === '/status' ? 200 : 403
        assert.equal(await h2status(session, { ':path': path }), 200, `h2 ${path}, :authority 127.0.0.1:${ops}`)
        assert.equal(await h2status(session, { ':path': path, ':authority': `localhost:${ops}` }), 200, `h2 ${path}, :authority localhost`)
        assert.equal(await h2status(session, { ':path': path, ':authority': REBIND }), refused, `h2 ${path}, :authority ${REBIND}`)
        assert.equal(await h2status(session, { ':path': path, host: REBIND }), refused, `h2 ${path}, host ${REBIND}`)
      }
    })
  }
})

test('demo: /status for a foreign host is the public view, without the peers\' addresses', async (t) => {
  const d = start(['demo'], { ready: /Starting sse-server at :(\d+)/, env: { PORT: '0', HOST: '127.0.0.1' } })
  t.after(() => d.stop())
  const port = Number((await d.ready)[1])
  const stream = openStream(port, get('/stream'))
  t.after(() => stream.sock.destroy())
  await stream.waitFor(/hello/)
  const status = async (host) => split(await raw(port, `GET /status HTTP/1.1\r\nHost: ${host}\r\n\r\n`, { until: complete })).body
  assert.match(await status(`127.0.0.1:${port}`), /"127\.0\.0\.1:\d+":\{"remote":"127\.0\.0\.1/)
  const rebound = await status(REBIND)
  assert.match(rebound, /"stream-1":\{"remote":"stream-1"/)
  assert.doesNotMatch(rebound, /127\.0\.0\.1/)
})

describe('the status page: security headers, no inline script or style', () => {
  const CSP = "default-src 'self'; frame-ancestors 'none'"
  for (const mode of MODES) {
    test(`${mode.name}: /ui/, /ui/status, /ui/app.css and /ui/app.js`, async (t) => {
      const d = start(mode.args, { ready: mode.ready, env: mode.env })
      t.after(() => d.stop())
      const { ops } = mode.ports(await d.ready)
      const types = { '/ui/': 'text/html; charset=utf-8', '/ui/status': 'application/json', '/ui/app.css': 'text/css; charset=utf-8', '/ui/app.js': 'text/javascript; charset=utf-8' }
      for (const [path, type] of Object.entries(types)) {
        const r = await fetchRaw(ops, path)
        assert.equal(r.status, 200, path)
        const header = (name) => (r.head.match(new RegExp(`^${name}: (.*)\r$`, 'mi')) || [])[1]
        assert.equal(header('Content-Type'), type, path)
        assert.equal(header('Content-Security-Policy'), CSP, path)
        assert.equal(header('X-Content-Type-Options'), 'nosniff', path)
        assert.equal(header('Referrer-Policy'), 'no-referrer', path)
      }
      const page = (await fetchRaw(ops, '/ui/')).body
      assert.doesNotMatch(page, /<style\b/i, 'no inline <style>')
      assert.doesNotMatch(page, /\sstyle=/i, 'no style attribute')
      assert.doesNotMatch(page, /<script(?![^>]*\ssrc=)[^>]*>/i, 'every <script> has a src')
      assert.match(page, /<script src="app\.js"/)
      assert.match(page, /<link rel="stylesheet" href="app\.css">/)
      const js = (await fetchRaw(ops, '/ui/app.js')).body
      assert.doesNotMatch(js, /style=|innerHTML/, 'no inline style made by the script either')
    })
  }
})

describe('--refuse retry: browsers come back by themselves', () => {
  test('past the client limit: 200, a retry: hint and the end, instead of a 503 (every mode)', async () => {
    const cases = [
      [['channels', '-n', '-p', '127.0.0.1:0', '--max-clients', '1', '--refuse', 'retry', '--heartbeat', '0'], {}, /Web server listening on port (\d+)/, '/news'],
      [['demo'], { PORT: '0', HOST: '127.0.0.1', MAX_CLIENTS: '1', REFUSE: 'retry' }, /Starting sse-server at :(\d+)/, '/stream'],
    ]
    for (const [args, env, ready, path] of cases) {
      const d = start(args, { ready, env })
      try {
        const port = Number((await d.ready)[1])
        const first = openStream(port, get(path))
        await first.waitFor(/\r\n\r\n/)
        const second = await raw(port, get(path), { until: complete })
        assert.match(second, /^HTTP\/1\.1 200 OK\r\n/, args[0])
        assert.match(second, /Content-Type: text\/event-stream\r\n/)
        assert.match(split(second).body, /^: no room now; come back later\nretry: 5000\n\n$/)
        first.close()
      } finally {
        await d.stop()
      }
    }
    const d = start(['jwt', '-secret', 'refuse-secret-0123456789abc', '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0', '-max-clients', '0', '-refuse', 'retry'],
      { ready: /Listening for clients/ })
    try {
      await d.ready
    } finally {
      await d.stop()
    }
    const bad = await require('../helpers/daemon').runToEnd(['channels', '-n', '--refuse', 'maybe'])
    assert.equal(bad.code, 64)
    assert.match(bad.stderr, /refuse takes 503 or retry/)
  })
})
