'use strict'
// `node bin/ssehub.js` (what `npx ssehub` runs): it spawns the daemon
// binary, passes signals on, and the daemon never outlives it. Then the
// CLI itself: --version, --help, background start-up as SSE-Server does
// it (success only once the ports are bound), and every exit code
// DAEMON.md documents.
const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { start, runToEnd } = require('../helpers/daemon')

const LAUNCHER = path.join(__dirname, '..', '..', 'bin', 'ssehub.js')
const VERSION = require('../../package.json').version
const FIXTURES = path.join(__dirname, '..', 'fixtures')

/** Runs the launcher; resolves once `ready` shows, with its output so far. */
function launch(args, ready) {
  const child = spawn(process.execPath, [LAUNCHER, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  const l = { child, out: '' }
  l.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  l.ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${ready} in ${l.out}`)), 10000)
    const check = () => {
      const m = l.out.match(ready)
      if (m) { clearTimeout(timer); resolve(m) }
    }
    child.stdout.on('data', (b) => { l.out += b; check() })
    child.stderr.on('data', (b) => { l.out += b; check() })
  })
  return l
}

const connects = (port) => new Promise((resolve) => {
  const s = net.connect(port, '127.0.0.1')
  s.on('connect', () => { s.destroy(); resolve(true) })
  s.on('error', () => resolve(false))
})

async function until(fn, ms = 5000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await fn()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return false
}

/** A port that is taken for as long as the returned server lives. */
async function takenPort() {
  const server = net.createServer()
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  return server
}

describe('the npm launcher', () => {
  test('--version and --help come from the daemon, which lists each mode', async () => {
    const v = launch(['--version'], /ssehub \S+/)
    assert.equal((await v.ready)[0], `ssehub ${VERSION}`)
    assert.equal((await v.exited).code, 0)
    const h = launch(['--help'], /demo[\s\S]*mpetazzoni/)
    await h.ready
    assert.equal((await h.exited).code, 0)
    for (const replaced of ['SSE-Server', 'chabberwock/sse', 'mpetazzoni/sse-server']) assert.match(h.out, new RegExp(replaced))
  })

  test('a SIGTERM to the launcher stops the daemon gracefully; the exit status is the daemon\'s', async () => {
    const l = launch(['demo'], /Starting sse-server at :(\d+)/)
    const port = Number((await l.ready)[1])
    assert.ok(await connects(port))
    l.child.kill('SIGTERM')
    assert.deepEqual(await l.exited, { code: 0, signal: null })
    assert.match(l.out, /Received SIGTERM, stopping\./)
    assert.ok(await until(async () => !(await connects(port))), 'the daemon is gone')
  })

  test('npx ssehub: a SIGTERM to npx alone stops the daemon within 2 s', async (t) => {
    // npm -> /bin/sh -c -> node bin/ssehub.js -> daemon: npm passes the
    // SIGTERM to the shell only, and dash forks, so only the launcher can
    // notice (its parent changed) and stop the daemon.
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-npx-'))
    fs.mkdirSync(path.join(tmp, 'node_modules', '.bin'), { recursive: true })
    fs.symlinkSync(LAUNCHER, path.join(tmp, 'node_modules', '.bin', 'ssehub'))
    const npx = spawn('npx', ['--no-install', '--offline', 'ssehub', 'demo'], {
      cwd: tmp,
      detached: true, // its own process group, killed whole below whatever happens
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', npm_config_cache: path.join(tmp, 'cache'), npm_config_update_notifier: 'false' },
    })
    t.after(() => {
      try { process.kill(-npx.pid, 'SIGKILL') } catch {}
      fs.rmSync(tmp, { recursive: true, force: true })
    })
    let out = ''
    const started = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`npx did not start the demo: ${out}`)), 20000)
      const check = () => {
        const m = out.match(/Starting sse-server at :(\d+)/)
        if (m) { clearTimeout(timer); resolve(Number(m[1])) }
      }
      npx.stdout.on('data', (b) => { out += b; check() })
      npx.stderr.on('data', (b) => { out += b; check() })
    })
    const port = await started
    assert.ok(await connects(port))
    process.kill(npx.pid, 'SIGTERM')
    assert.ok(await until(async () => !(await connects(port)), 2000), `the daemon still serves 2 s after npx got SIGTERM: ${out}`)
  })

  test('a SIGKILL to the launcher, which cannot pass it on, still stops the daemon', async () => {
    const l = launch(['channels', '-n', '-p', '127.0.0.1:0'], /Web server listening on port (\d+)/)
    const port = Number((await l.ready)[1])
    l.child.kill('SIGKILL')
    await l.exited
    assert.ok(await until(async () => !(await connects(port)), 8000), 'the daemon followed its launcher')
  })
})

describe('background start-up (channels without -n)', () => {
  test('success is reported once the ports are bound; halt stops it', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-bg-'))
    const fifo = path.join(tmp, 'ctl.fifo')
    const r = await runToEnd(['channels', '-p', '127.0.0.1:0', '-F', fifo])
    try {
      assert.equal(r.code, 0, r.stderr)
      const pid = Number(r.stdout.match(/^Background process started, process id (\d+)$/m)[1])
      assert.ok(fs.existsSync(`/proc/${pid}`), 'the daemon runs on')
      fs.writeFileSync(fifo, 'halt\n')
      assert.ok(await until(async () => !fs.existsSync(`/proc/${pid}`)), 'halt stopped it')
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })

  test('a port in use: the child\'s error and its exit code, no success line', async () => {
    const server = await takenPort()
    try {
      const r = await runToEnd(['channels', '-p', `127.0.0.1:${server.address().port}`])
      assert.equal(r.code, 73)
      assert.match(r.stderr, /ssehub channels: Cannot listen on 127\.0\.0\.1:\d+: /)
      assert.doesNotMatch(r.stdout, /Background process started/)
    } finally {
      server.close()
    }
  })

  test('-np8080 and a nodaemon line in a config file mean the foreground', async () => {
    const d = start(['channels', '-np127.0.0.1:0'], { ready: /Web server listening on port (\d+)/ })
    try {
      await d.ready
      assert.doesNotMatch(d.stdout, /Background process started/)
      assert.equal(d.exited, null)
    } finally {
      await d.stop()
    }
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-conf-'))
    const conf = path.join(tmp, 'sse.conf')
    fs.writeFileSync(conf, 'nodaemon\nport 127.0.0.1:0\n')
    const c = start(['channels', '-C', conf], { ready: /Web server listening on port (\d+)/ })
    try {
      await c.ready
      assert.equal(c.exited, null, 'in the foreground')
    } finally {
      await c.stop()
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })
})

describe('exit codes, as DAEMON.md documents them', () => {
  test('64 65 66 67 69 73 75', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-exit-'))
    const server = await takenPort()
    const log = path.join(tmp, 'held.log')
    const held = start(['channels', '-n', '-p', '127.0.0.1:0', '-l', log])
    try {
      const listening = () => fs.existsSync(log) && /Web server listening/.test(fs.readFileSync(log, 'utf8'))
      assert.ok(await until(async () => listening()), 'the first daemon holds the log')
      const badConf = path.join(tmp, 'bad.conf')
      fs.writeFileSync(badConf, '--bogus 1\n')
      const cases = [
        [64, ['channels', '-n', '--no-such-flag']],
        [64, ['jwt', '-secret', 'x'.repeat(20), '-max-clients', 'lots']],
        [64, ['bogus-mode']],
        [65, ['channels', '-n', '-C', badConf]],
        [66, ['channels', '-n', '-C', path.join(tmp, 'missing.conf')]],
        [67, ['channels', '-n', '-p', '127.0.0.1:0', '-U', 'no-such-user-ssehub']],
        [69, ['channels', '-n', '-p', '127.0.0.1:0', '-c', path.join(FIXTURES, 'test-cert.pem'), '-k', path.join(tmp, 'missing-key.pem')]],
        [73, ['channels', '-n', '-p', `127.0.0.1:${server.address().port}`]],
        [73, ['jwt', '-secret', 'x'.repeat(20), '-bind', `127.0.0.1:${server.address().port}`]],
        [75, ['channels', '-n', '-p', '127.0.0.1:0', '-l', path.join(tmp, 'held.log')]],
      ]
      for (const [code, args] of cases) {
        const r = await runToEnd(args)
        assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`)
        assert.match(r.stderr, /^ssehub\b/m, 'a one-line error')
      }
    } finally {
      server.close()
      await held.stop()
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  })
})
