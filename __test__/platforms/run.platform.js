'use strict'
// Each platform package run where this machine can run it (see
// scripts/platforms/runtimes.js): linux-x64-gnu on this Node.js,
// linux-arm64-gnu under qemu, linux-{x64,arm64}-musl on a musl Node.js
// through musl's own loader, win32-x64-gnu under wine. For each:
//
// - an app in a temp folder whose node_modules holds ssehub (its JS, no
//   addon of its own) and the platform package, run on that platform's
//   Node.js: require('ssehub') loads the package's addon, and an event
//   sent through `new SSE(server)` and a broadcast reach a client; the
//   platform naming there picks the package and its daemon binary.
// - the package's daemon in demo mode, reached from here: the hello event,
//   then numbered messages whose random strings are the Go original's.
//
// Every server listens on a free loopback port and is stopped whatever
// happens. macOS cannot run here (darwin.platform.js checks those files).
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { ROOT, TARGETS, SLOW_MS, dirOf, artifacts, notBuilt, launch, stop, fetchText, waitForLog, wineserverToStop } = require('./common')
const { runtime } = require('../../scripts/platforms/runtimes')

const VECTORS = new Map(
  fs.readFileSync(path.join(ROOT, '__test__', 'fixtures', 'mpetazzoni-random-vectors.tsv'), 'latin1')
    .split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('\t'))
)
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-platforms-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

function copyDir(from, to, filter = () => true) {
  fs.mkdirSync(to, { recursive: true })
  for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
    if (!filter(entry.name)) continue
    const a = path.join(from, entry.name)
    const b = path.join(to, entry.name)
    if (entry.isDirectory()) copyDir(a, b)
    else fs.copyFileSync(a, b)
  }
}

const JS = ['package.json', 'index.js', 'index.mjs', 'binding.js', 'LICENSE', 'lib', 'bin']

/**
 * An app folder: node_modules/ssehub (JS only) and node_modules/@ssehub/<platform>.
 * The JS is the commit's the binaries were built from (npm/<platform>/.built-from),
 * so a newer working tree's JS does not meet older binaries; else the working tree's.
 */
function appFor(t) {
  const app = path.join(tmp, t.name)
  const mod = path.join(app, 'node_modules', 'ssehub')
  fs.mkdirSync(mod, { recursive: true })
  const from = builtFrom(t)
  if (from && from.commit && !from.dirty) {
    const tar = execFileSync('git', ['archive', '--format=tar', from.commit, ...JS], { cwd: ROOT, maxBuffer: 1 << 28 })
    execFileSync('tar', ['-x', '-C', mod], { input: tar })
  } else {
    for (const file of JS) {
      const stat = fs.statSync(path.join(ROOT, file))
      if (stat.isDirectory()) copyDir(path.join(ROOT, file), path.join(mod, file))
      else fs.copyFileSync(path.join(ROOT, file), path.join(mod, file))
    }
  }
  const pkg = path.join(app, 'node_modules', '@ssehub', t.name)
  copyDir(dirOf(t), pkg, (name) => name !== 'README.md' && name !== '.built-from')
  fs.chmodSync(path.join(pkg, t.daemon), 0o755)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
  fs.writeFileSync(path.join(app, 'app.js'), APP)
  return app
}

// The app, run on the platform's Node.js; it writes what it saw to
// result.json (relative paths: under wine the folder is a Z: path).
const APP = `
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const result = { platform: process.platform, arch: process.arch, node: process.version }
const rel = (file) => path.relative(process.cwd(), file).split(path.sep).join('/')
const done = (extra) => { fs.writeFileSync('result.json', JSON.stringify({ ...result, ...extra })); process.exit(0) }
setTimeout(() => done({ error: 'timed out' }), 90000).unref()
try {
  const SSE = require('ssehub')
  const platform = require(path.join(path.dirname(require.resolve('ssehub')), 'lib', 'platform.js'))
  result.triple = platform.platformTriple()
  try {
    result.daemon = rel(platform.daemonBinaryPath())
  } catch (err) {
    result.daemon = 'error: ' + err.message
  }
  const server = http.createServer((req, res) => res.end('app'))
  server.listen(0, '127.0.0.1', () => {
    const sse = new SSE(server, { path: '/sse' })
    sse.on('connection', (client) => {
      client.send({ event: 'greeting', id: '7', data: 'hello from ' + process.platform + '-' + process.arch })
      setTimeout(() => { result.broadcastCount = sse.broadcast('to all') }, 50)
    })
    http.get({ host: '127.0.0.1', port: server.address().port, path: '/sse' }, (res) => {
      result.status = res.statusCode
      result.type = res.headers['content-type']
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        body += chunk
        if (body.includes('data: to all\\n\\n')) {
          result.addons = Object.keys(require.cache).filter((k) => k.endsWith('.node')).map(rel)
          res.destroy()
          done({ body })
        }
      })
    }).on('error', (err) => done({ error: String(err) }))
  })
} catch (err) {
  done({ error: String(err && err.stack || err) })
}
`

function builtFrom(t) {
  try {
    return JSON.parse(fs.readFileSync(path.join(dirOf(t), '.built-from'), 'utf8'))
  } catch {
    return null
  }
}

// macOS runs only on a macOS machine (a CI runner): then natively.
const RUNNABLE = TARGETS.filter((t) => t.os !== 'darwin' || process.platform === 'darwin')

for (const t of RUNNABLE) {
  const rt = runtime(t.name)
  const files = artifacts(t)
  const skip = !files ? notBuilt(t) : rt.skip
  wineserverToStop(rt)

  test(`${t.pkg}: require('ssehub') on ${rt.describe || 'its Node.js'} loads the package's addon and streams through new SSE(server)`, { skip, timeout: SLOW_MS + 30000 }, async () => {
    const app = appFor(t)
    const child = launch([...rt.node, 'app.js'], { cwd: app, env: rt.env, log: path.join(app, 'app.log') })
    const exit = await child.exited
    const log = fs.readFileSync(path.join(app, 'app.log'), 'utf8')
    assert.ok(fs.existsSync(path.join(app, 'result.json')), `no result (exit ${JSON.stringify(exit)}): ${log}`)
    const r = JSON.parse(fs.readFileSync(path.join(app, 'result.json'), 'utf8'))
    assert.equal(r.error, undefined, `${r.error}\n${log}`)
    assert.equal(r.platform, t.os)
    assert.equal(r.arch, t.cpu)
    assert.equal(r.triple, t.name, 'lib/platform.js names this platform on its own Node.js')
    assert.deepEqual(r.addons, [`node_modules/@ssehub/${t.name}/${t.addon}`], 'the addon came from the platform package')
    assert.equal(r.daemon, `node_modules/@ssehub/${t.name}/${t.daemon}`, 'the daemon binary is the package\'s')
    assert.equal(r.status, 200)
    assert.match(r.type, /^text\/event-stream/)
    assert.match(r.body, new RegExp(`event: greeting\\nid: 7\\ndata: hello from ${t.os}-${t.cpu}\\n\\n`))
    assert.match(r.body, /\ndata: to all\n\n$/)
    assert.equal(r.broadcastCount, 1)
    const from = builtFrom(t)
    console.log(`${t.name}: ${r.node} on ${rt.describe}, binaries and JS of ${from && !from.dirty ? from.commit.slice(0, 10) : 'the working tree'}: ${JSON.stringify(r.body)}`)
  })

  test(`${t.pkg}: ${t.daemon} demo on ${rt.describe || 'its platform'} streams the hello event and the original's messages`, { skip, timeout: SLOW_MS + 30000 }, async () => {
    const dir = fs.mkdtempSync(path.join(tmp, `${t.name}-demo-`))
    const daemon = path.join(dir, t.daemon)
    fs.copyFileSync(files.daemon, daemon)
    fs.chmodSync(daemon, 0o755)
    const log = path.join(dir, 'daemon.log')
    const env = { ...rt.env, PORT: '0', HOST: '127.0.0.1', SSEHUB_DEMO_INTERVAL_MS: '20' }
    const child = launch([...rt.exec(rt.wine ? t.daemon : daemon), 'demo'], { cwd: dir, env, log })
    try {
      const port = Number((await waitForLog(log, /Starting sse-server at :(\d+) \.\.\./, child))[1])
      const r = await fetchText(port, '/stream?count=3')
      assert.equal(r.status, 200)
      assert.equal(r.headers['content-type'], 'text/event-stream')
      assert.match(r.body, /^id: hello\ndata: Hello, 127\.0\.0\.1:\d+!\n\n/)
      const got = [...r.body.matchAll(/id: message-(\d+)\ndata: \{\ndata: {3}"time": (\d+),\ndata: {3}"random": "([^"]*)"\ndata: \}\n\n/g)]
      assert.deepEqual(got.map((m) => m[1]), ['1', '2', '3'], r.body)
      for (const m of got) assert.equal(m[3], VECTORS.get(m[1]), `message-${m[1]}'s random string is the Go original's`)
      assert.ok(Math.abs(Number(got[0][2]) - Date.now() / 1000) < 60, 'time is the current unix time')
      const status = await fetchText(port, '/status')
      assert.equal(status.status, 200)
      assert.doesNotThrow(() => JSON.parse(status.body), status.body)
      console.log(`${t.name}: ${t.daemon} demo on ${rt.describe}: ${got.length} messages`)
    } finally {
      stop(child)
    }
  })
}
