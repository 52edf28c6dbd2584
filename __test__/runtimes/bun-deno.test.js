'use strict'
// Bun and Deno, installed from npm as devDependencies (`bun`, `deno`), run
// ssehub: node:http with `new SSE(server)`, their own serve with
// `sse.fetch`, broadcast, replay, the slow-client drop
// (__test__/fixtures/runtime-smoke.mjs, one process per scenario), loading
// the addon with the fewest Deno permissions (and naming --allow-ffi when
// it is missing), and the daemon's demo mode through the launcher (`bun x
// ssehub demo`, `deno run bin/ssehub.js demo`). A runtime that is not
// installed makes its tests skip, with the reason.

const { describe, test, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync, execFile } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')
const { platformTriple, localAddonPath } = require('../../lib/platform')

const ROOT = path.join(__dirname, '..', '..')
const MODULES = path.join(ROOT, 'node_modules')
const FIXTURE = path.join(ROOT, '__test__', 'fixtures', 'runtime-smoke.mjs')
// Deno's permissions for the scenarios: the addon (ffi), the repository's
// files (read: outside node_modules) and loopback; no --allow-sys or --allow-env.
const DENO_RUN = ['run', '--no-prompt', '--allow-ffi', '--allow-read', '--allow-net=127.0.0.1']
const ENV = { ...process.env, NO_COLOR: '1' }

/**
 * The runtime's binary: node_modules/.bin (linked by the package's
 * postinstall), else the platform package's own binary (installed even
 * with --ignore-scripts). Null with the reason when none runs.
 */
function findRuntime(name) {
  const candidates = [path.join(MODULES, '.bin', name)]
  const scope = path.join(MODULES, name === 'bun' ? '@oven' : '@deno')
  for (const dir of fs.existsSync(scope) ? fs.readdirSync(scope) : []) {
    candidates.push(path.join(scope, dir, ...(name === 'bun' ? ['bin', 'bun'] : ['deno'])))
  }
  const tried = []
  for (const bin of candidates.filter((c) => fs.existsSync(c))) {
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 20000, env: ENV })
    if (r.status === 0 && /\d+\.\d+/.test(r.stdout)) return { bin, version: r.stdout.trim().split('\n')[0].replace(/ \(.*/, '') }
    tried.push(`${bin}: ${r.error ? r.error.message : `exit ${r.status} ${String(r.stderr).trim().slice(0, 200)}`}`)
  }
  return {
    skip: tried.length
      ? `${name} does not run here (${tried.join('; ')})`
      : `${name} is not installed (npm install puts it in node_modules from the devDependencies)`,
  }
}

/** Runs `bin args`; resolves { code, stdout, stderr, json } (json: the last stdout line, parsed). */
function run(bin, args, { cwd = ROOT, timeout = 30000 } = {}) {
  return new Promise((resolve) => {
    execFile(bin, args, { cwd, env: ENV, timeout, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      let json = null
      try {
        json = JSON.parse(stdout.trim().split('\n').pop())
      } catch {}
      resolve({ code: err ? err.code ?? err.signal : 0, stdout, stderr, json })
    })
  })
}

const RUNTIMES = {
  bun: { scenario: (rt, name) => run(rt.bin, [FIXTURE, name]) },
  deno: { scenario: (rt, name) => run(rt.bin, [...DENO_RUN, FIXTURE, name]) },
}

/** What each scenario must have seen (the fixture prints it). */
const EXPECT = {
  order(r) {
    assert.equal(r.total, 40)
    assert.equal(r.wrong, 0, `streams out of call order, e.g. ${JSON.stringify(r.example)}`)
  },
  http(r) {
    assert.equal(r.status, 200)
    assert.equal(r.type, 'text/event-stream')
    assert.equal(r.text, ':ok\n\nevent: hello\nid: 1\ndata: world\n\n')
    // Neither runtime gives Rust the socket: the JS fallback writes `res`.
    assert.equal(r.transport, 'fallback')
    assert.equal(r.app, 'app', 'a request off the path reaches the app')
  },
  serve(r) {
    assert.equal(r.status, 200)
    assert.equal(r.type, 'text/event-stream')
    assert.equal(r.text, ':ok\n\nevent: hello\ndata: fetch\n\n')
    assert.equal(r.reason, 'client', 'a reader that leaves closes its client')
    assert.equal(r.clients, 0)
  },
  broadcast(r) {
    const frame = ':ok\n\nevent: tick\nid: 7\ndata: to both\n\n'
    assert.equal(r.count, 2)
    assert.equal(r.a, frame, 'the node:http client')
    assert.equal(r.b, frame, 'the serve client')
    assert.equal(r.stats.eventsDelivered, 2)
  },
  replay(r) {
    const event = (n) => `event: n\nid: ${n}\ndata: event ${n}\n\n`
    assert.equal(r.http, `:ok\n\n${event(2)}${event(3)}`, 'node:http, Last-Event-ID: 1')
    assert.equal(r.serve, `:ok\n\n${event(3)}`, 'serve, ?lastEventId=2')
  },
  slow(r) {
    assert.deepEqual(r.reasons, ['stalled-fetch:slow', 'stalled-http:slow'])
    assert.equal(r.droppedSlow, 2)
    assert.equal(r.clients, 1, 'the reader beside them stays, and got its event')
  },
}

const temps = []
after(() => {
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true })
})
function tempDir(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  temps.push(dir)
  return dir
}

/**
 * An app with ssehub installed as npm would lay it out: the package's JS
 * in node_modules/ssehub and the addon in the platform package
 * node_modules/@ssehub/<platform> (copies, so Deno sees them inside
 * node_modules).
 */
function installedApp() {
  const dir = tempDir('ssehub-app-')
  const pkg = path.join(dir, 'node_modules', 'ssehub')
  fs.mkdirSync(pkg, { recursive: true })
  for (const file of ['index.js', 'index.mjs', 'binding.js', 'package.json']) fs.copyFileSync(path.join(ROOT, file), path.join(pkg, file))
  fs.cpSync(path.join(ROOT, 'lib'), path.join(pkg, 'lib'), { recursive: true })
  const platform = path.join(dir, 'node_modules', '@ssehub', platformTriple())
  fs.mkdirSync(platform, { recursive: true })
  const addon = path.basename(localAddonPath())
  fs.copyFileSync(localAddonPath(), path.join(platform, addon))
  fs.writeFileSync(path.join(platform, 'package.json'), JSON.stringify({ name: `@ssehub/${platformTriple()}`, version: '0.0.0', main: addon }))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true, dependencies: { ssehub: '*' } }))
  fs.writeFileSync(path.join(dir, 'app.mjs'), [
    "import SSE from 'ssehub'",
    'const sse = new SSE(null, { history: 2 })',
    "console.log(JSON.stringify({ broadcast: sse.broadcast('x'), clients: sse.clients }))",
    'await sse.close()',
  ].join('\n'))
  return dir
}

/**
 * Starts `bin args` (the launcher), reads the stream URL the demo prints,
 * GETs it for the hello event, then stops the launcher with SIGTERM and
 * checks the daemon is gone. The process is killed whatever happens.
 */
async function demoThrough(bin, args, cwd) {
  const child = spawn(bin, args, {
    cwd,
    env: { ...ENV, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (b) => (out += b))
  child.stderr.on('data', (b) => (out += b))
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  try {
    const url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no stream URL within 15 s:\n${out}`)), 15000)
      const look = () => {
        const m = out.match(/Starting sse-server at :(\d+) \.\.\.\n {2}stream: +(http:\/\/127\.0\.0\.1:(\d+)\/stream)\n/)
        if (m) {
          clearTimeout(timer)
          assert.equal(m[1], m[3], 'the URL has the port it listens on')
          resolve(m[2])
        }
      }
      child.stdout.on('data', look)
      child.stderr.on('data', look)
      exited.then((ex) => reject(new Error(`launcher exited (${JSON.stringify(ex)}):\n${out}`)))
      look()
    })
    const hello = await firstEvent(url)
    assert.match(hello, /^id: hello\ndata: Hello, 127\.0\.0\.1:\d+!\n\n/)
    child.kill('SIGTERM')
    const ex = await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10000, 'still running'))])
    assert.notEqual(ex, 'still running', out)
    assert.match(out, /Received SIGTERM, stopping\./, 'the daemon got the launcher\'s SIGTERM')
    await assert.rejects(firstEvent(url), /ECONNREFUSED/, 'the daemon is gone')
    return url
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
}

/** GETs an SSE URL and resolves the text up to the end of its first event. */
function firstEvent(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        text += chunk
        const end = text.indexOf('\n\n')
        if (end >= 0) {
          req.destroy()
          resolve(text.slice(0, end + 2))
        }
      })
      res.on('end', () => reject(new Error(`stream ended: ${text}`)))
    })
    req.on('error', reject)
    req.setTimeout(5000, () => req.destroy(new Error('no event within 5 s')))
  })
}

for (const [name, runtime] of Object.entries(RUNTIMES)) {
  const rt = findRuntime(name)
  const skip = rt.skip || false
  describe(`${name}${rt.version ? ` (${rt.version})` : ''}`, () => {
    for (const scenario of Object.keys(EXPECT)) {
      test(scenario, { skip }, async () => {
        const r = await runtime.scenario(rt, scenario)
        assert.ok(r.json, `no result line (exit ${r.code}):\n${r.stdout}\n${r.stderr}`)
        assert.equal(r.json.error, undefined, `${r.json.error}\n${r.stderr}`)
        EXPECT[scenario](r.json)
        assert.equal(r.code, 0, r.stderr)
        if (name === 'deno') assert.doesNotMatch(r.stderr, /request\.signal aborts/, 'no Deno deprecation warning from sse.fetch')
      })
    }

    test('loads the addon from an installed app (platform package)', { skip }, async () => {
      const app = installedApp()
      const args = name === 'deno' ? ['run', '--no-prompt', '--allow-ffi', 'app.mjs'] : ['app.mjs']
      const r = await run(rt.bin, args, { cwd: app })
      assert.equal(r.code, 0, r.stderr)
      assert.deepEqual(r.json, { broadcast: 0, clients: 0 })
    })

    if (name === 'deno') {
      test('a missing --allow-ffi is named as such, not as a broken install', { skip }, async () => {
        const app = installedApp()
        for (const flags of [[], ['--allow-read'], ['--allow-read', '--allow-env', '--allow-sys']]) {
          const r = await run(rt.bin, ['run', '--no-prompt', ...flags, 'app.mjs'], { cwd: app })
          assert.notEqual(r.code, 0, r.stdout)
          assert.match(r.stderr, /ssehub: Deno did not allow loading the native addon: run with --allow-ffi/, flags.join(' '))
          assert.doesNotMatch(r.stderr, /npm rebuild/, flags.join(' '))
        }
      })
    }

    test('the demo through the launcher: the printed URL streams the hello event', { skip }, async () => {
      if (name === 'bun') {
        // `bunx ssehub demo` as an app runs it: the package's bin, under Bun (--bun).
        const app = tempDir('ssehub-bunx-')
        fs.mkdirSync(path.join(app, 'node_modules', '.bin'), { recursive: true })
        fs.symlinkSync(ROOT, path.join(app, 'node_modules', 'ssehub'), 'dir')
        fs.symlinkSync(path.join('..', 'ssehub', 'bin', 'ssehub.js'), path.join(app, 'node_modules', '.bin', 'ssehub'))
        fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }))
        await demoThrough(rt.bin, ['x', '--bun', 'ssehub', 'demo'], app)
      } else {
        // The launcher reads its binary's path and /proc, spawns it, and passes the environment on.
        await demoThrough(rt.bin, ['run', '--no-prompt', '--allow-read', '--allow-run', '--allow-env', 'bin/ssehub.js', 'demo'], ROOT)
      }
    })
  })
}
