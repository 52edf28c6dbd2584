'use strict'
// Packaging as a user gets it: `npm pack` of the main package and of this
// platform's package (npm/<platform>/, filled by `npm install`), both
// installed into a fresh project with `cargo` not on PATH and no registry
// (--offline); there `require`, `import` and `npx ssehub demo` work. Then
// with install scripts disabled and no platform package: the load error
// names the fixes, and both fixes work (the source build goes to
// CARGO_TARGET_DIR, never into node_modules, and shows cargo's progress).
// `npm test` runs this file on its own, after the rest: the source build
// takes longer than the per-file timeout of the main run.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { raw, split, dechunk, chunkedDone } = require('../helpers/daemon')
const { platformTriple, cargoTargetDir } = require('../../lib/platform')

const ROOT = path.join(__dirname, '..', '..')
const TRIPLE = platformTriple()
const PLATFORM_DIR = path.join(ROOT, 'npm', TRIPLE)
const pkg = require('../../package.json')
const platformPkg = require(path.join(PLATFORM_DIR, 'package.json'))
const ADDON = `ssehub.${TRIPLE}.node`
const DAEMON = process.platform === 'win32' ? 'ssehub-daemon.exe' : 'ssehub-daemon'

/** A Rust toolchain's programs, which an install without cargo must not find. */
const RUST_BINS = /^(cargo|rustc|rustup|rustdoc|cargo-.*)$/

/**
 * PATH as it is, but with no Rust toolchain on it: a folder holding only
 * Rust's programs (~/.cargo/bin) is left out, and one that holds others
 * too (/usr/bin, where Debian's rustc-web puts cargo) is replaced by a
 * folder of links to everything in it but Rust's programs.
 */
function pathWithoutCargo(shims) {
  return process.env.PATH.split(path.delimiter)
    .map((dir, i) => {
      if (!['cargo', 'rustc'].some((bin) => fs.existsSync(path.join(dir, bin)))) return dir
      const names = fs.readdirSync(dir).filter((name) => !RUST_BINS.test(name))
      if (names.every((name) => RUST_BINS.test(name) || name.startsWith('.'))) return null
      const shim = path.join(shims, String(i))
      fs.mkdirSync(shim, { recursive: true })
      for (const name of names) fs.symlinkSync(path.join(dir, name), path.join(shim, name))
      return shim
    })
    .filter(Boolean)
    .join(path.delimiter)
}
let NO_CARGO_PATH
const noCargoEnv = () => {
  const env = { ...process.env, PATH: NO_CARGO_PATH }
  delete env.CARGO_TARGET_DIR
  for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key]
  return env
}

let tmp
let mainTarball
let platformTarball
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-pack-'))
  NO_CARGO_PATH = pathWithoutCargo(path.join(tmp, 'path'))
})
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

function npm(args, { cwd, env = noCargoEnv() } = {}) {
  return execFileSync('npm', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** `npm pack --json` in `dir`; returns the one entry npm reports. */
function pack(dir) {
  const [info] = JSON.parse(npm(['pack', '--json', '--pack-destination', tmp], { cwd: dir, env: { ...process.env } }))
  info.file = path.join(tmp, info.filename)
  console.log(`${info.filename}: ${info.size} bytes packed, ${info.unpackedSize} unpacked, ${info.entryCount} files`)
  return info
}

/** A fresh project folder. */
function project(name) {
  const dir = path.join(tmp, name)
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }))
  return dir
}

function run(cwd, file, source, env = noCargoEnv()) {
  fs.writeFileSync(path.join(cwd, file), source)
  return execFileSync(process.execPath, [file], { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

// Uses the package as an app would: a server, a stream, a broadcast.
const USE_IT = `
const http = require('node:http')
const net = require('node:net')
const SSE = require('ssehub')
const server = http.createServer((req, res) => res.end('app'))
server.listen(0, '127.0.0.1', () => {
  const sse = new SSE(server, { path: '/sse', heartbeat: 0 })
  sse.on('connection', (client) => { sse.broadcast('hello from ' + client.transport); })
  const socket = net.connect(server.address().port, '127.0.0.1', () => socket.write('GET /sse HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'))
  let text = ''
  socket.on('data', (d) => {
    text += d
    if (/data: hello.*\\n\\n/.test(text)) {
      console.log(text.includes('data: hello from native') ? 'OK' : 'BAD ' + JSON.stringify(text))
      socket.destroy()
      sse.close().then(() => server.close())
    }
  })
})
`

test('this platform folder has the built artifacts (npm install copies them there)', () => {
  for (const file of [ADDON, DAEMON]) {
    assert.ok(fs.existsSync(path.join(PLATFORM_DIR, file)), `npm/${TRIPLE}/${file} is missing: run \`npm install\` (or \`npm run build\`)`)
  }
  assert.equal(platformPkg.name, `@ssehub/${TRIPLE}`)
  assert.equal(platformPkg.version, pkg.version)
  assert.equal(pkg.optionalDependencies[`@ssehub/${TRIPLE}`], pkg.version, 'the platform package is an optional dependency, pinned')
})

test('npm pack: the main package has its documents and no binaries; the platform package has both binaries', () => {
  mainTarball = pack(ROOT)
  platformTarball = pack(PLATFORM_DIR)
  const files = new Map(mainTarball.files.map((f) => [f.path, f]))
  // Every local link of the README is in the tarball.
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const links = [...readme.matchAll(/\]\(([^)#\s]+)/g)].map((m) => m[1]).filter((l) => !/^[a-z]+:/.test(l))
  assert.ok(links.length >= 8, links.join(' '))
  for (const link of links) assert.ok(files.has(link), `README links ${link}, which is not in the tarball`)
  for (const file of ['LICENSE', 'README.md', 'package.json', 'index.js', 'index.mjs', 'index.d.ts', 'binding.js', 'bin/ssehub.js', 'Cargo.toml', 'Cargo.lock']) {
    assert.ok(files.has(file), `${file} is not in the tarball`)
  }
  assert.match(fs.readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/)
  for (const name of files.keys()) {
    assert.doesNotMatch(name, /\.node$|^target\/|^node_modules\/|^__test__\/|^npm\//, `${name} does not belong in the main tarball`)
  }
  assert.ok(mainTarball.size < 1024 * 1024, `main tarball is ${mainTarball.size} bytes`)
  assert.equal(pkg.license, 'MIT')
  assert.ok(pkg.repository && pkg.repository.url, 'repository')
  assert.ok(pkg.homepage, 'homepage')
  assert.ok(Array.isArray(pkg.keywords) && pkg.keywords.includes('server-sent-events'), 'keywords')

  const platformFiles = new Map(platformTarball.files.map((f) => [f.path, f]))
  assert.ok(platformFiles.has(ADDON), `${ADDON} in the platform tarball`)
  assert.ok(platformFiles.has(DAEMON), `${DAEMON} in the platform tarball`)
  if (process.platform !== 'win32') assert.equal(platformFiles.get(DAEMON).mode & 0o111, 0o111, 'the daemon is executable')
  assert.ok(platformFiles.has('LICENSE'))
})

test('installed from the two tarballs without cargo: require, import and `npx ssehub demo` work', { timeout: 120000 }, async (t) => {
  assert.ok(mainTarball && platformTarball, 'packed by the previous test')
  assert.throws(() => execFileSync('cargo', ['--version'], { env: noCargoEnv(), stdio: 'ignore' }), 'cargo is not on this PATH')
  const dir = project('app')
  npm(['install', '--offline', '--no-audit', '--no-fund', mainTarball.file, platformTarball.file], { cwd: dir })
  const installed = path.join(dir, 'node_modules', 'ssehub')
  assert.ok(!fs.existsSync(path.join(installed, 'target')), 'no target/ in node_modules')
  assert.ok(!fs.existsSync(path.join(installed, ADDON)), 'nothing was built: the prebuilt package is used')
  assert.ok(!fs.readdirSync(installed).some((f) => f.startsWith('ssehub-daemon')), 'no daemon was built either')
  assert.ok(fs.existsSync(path.join(dir, 'node_modules', '@ssehub', TRIPLE, ADDON)))

  assert.equal(run(dir, 'use.cjs', USE_IT).trim(), 'OK')
  const esm = run(dir, 'use.mjs', `
import SSE, { Client, SSE as Named } from 'ssehub'
const sse = new SSE(null)
console.log(typeof sse.broadcast, Named === SSE, typeof Client, sse.broadcast('nobody'))
await sse.close()
`)
  assert.equal(esm.trim(), 'function true function 0')

  // npx ssehub demo: starts the daemon from the platform package and serves.
  const child = spawn('npx', ['--no-install', 'ssehub', 'demo'], {
    cwd: dir,
    env: { ...noCargoEnv(), PORT: '0', SSEHUB_DEMO_INTERVAL_MS: '20' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group: stopped whole below
  })
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const killGroup = (signal) => {
    try {
      process.kill(-child.pid, signal)
    } catch {}
  }
  t.after(async () => {
    killGroup('SIGKILL')
    await exited
  })
  let output = ''
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npx ssehub demo did not start: ${output}`)), 30000)
    const onData = (b) => {
      output += b
      const m = output.match(/Starting sse-server at :(\d+) \.\.\./)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    exited.then((e) => reject(new Error(`npx ssehub demo exited ${JSON.stringify(e)}: ${output}`)))
  })
  const reply = await raw(port, 'GET /stream?count=2 HTTP/1.1\r\nHost: x\r\n\r\n', { until: chunkedDone })
  assert.match(dechunk(split(reply).body).data, /^id: hello\ndata: Hello, 127\.0\.0\.1:\d+!\n\nid: message-1\n[\s\S]*id: message-2\n/)
  // SIGTERM to npx alone, as a supervisor that knows only its pid sends it
  // (npm does not pass it on): the daemon must still stop, within 2 s.
  child.kill('SIGTERM')
  await exited
  const listening = () =>
    new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1')
      sock.on('connect', () => (sock.destroy(), resolve(true)))
      sock.on('error', () => resolve(false))
    })
  const deadline = Date.now() + 2000
  while (await listening()) {
    assert.ok(Date.now() < deadline, 'the daemon still listens 2 s after npx got SIGTERM')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
})

test('--ignore-scripts and no platform package: the error names the fixes, and both work', { timeout: 600000 }, async () => {
  assert.ok(mainTarball && platformTarball, 'packed by an earlier test')
  const dir = project('noscripts')
  npm(['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', mainTarball.file], { cwd: dir })
  const check = `try { require('ssehub'); console.log('loaded') } catch (err) { console.log(err.message) }`
  const message = run(dir, 'check.cjs', check)
  assert.match(message, new RegExp(`npm install @ssehub/${TRIPLE}`))
  assert.match(message, /npm rebuild ssehub/)

  // Fix 1: the platform package (the tarball stands in for the registry).
  npm(['install', '--offline', '--no-audit', '--no-fund', platformTarball.file], { cwd: dir })
  assert.equal(run(dir, 'check.cjs', check).trim(), 'loaded')

  // Fix 2, in another such project: `npm rebuild ssehub` builds from source
  // with cargo, into a CARGO_TARGET_DIR outside node_modules (here the
  // repository's, so the build is warm).
  const dir2 = project('rebuild')
  npm(['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', mainTarball.file], { cwd: dir2 })
  assert.match(run(dir2, 'check.cjs', check), /npm rebuild ssehub/)
  const env = { ...process.env, CARGO_TARGET_DIR: path.join(ROOT, 'target') }
  for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key]
  // Under a terminal (util-linux `script` gives one) and npm's default of
  // capturing a dependency's script output, as a user runs it.
  const transcript = path.join(tmp, 'rebuild.log')
  const [cmd, args] = fs.existsSync('/usr/bin/script')
    ? ['/usr/bin/script', ['-qec', 'npm rebuild ssehub', transcript]]
    : ['npm', ['rebuild', 'ssehub', '--foreground-scripts']]
  const out = await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: dir2, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let text = ''
    child.stdout.on('data', (d) => (text += d))
    child.stderr.on('data', (d) => (text += d))
    child.on('exit', (code) => {
      if (fs.existsSync(transcript)) text += fs.readFileSync(transcript, 'utf8')
      text = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '') // a terminal gets cargo's colours
      if (code === 0 && !/COMMAND_EXIT_CODE="[1-9]/.test(text)) resolve(text)
      else reject(new Error(`npm rebuild failed (${code}):\n${text}`))
    })
  })
  assert.match(out, /Compiling ssehub-(core|node|daemon) v[\s\S]*Finished `release` profile/, 'cargo shows its progress')
  const installed = path.join(dir2, 'node_modules', 'ssehub')
  assert.ok(!fs.existsSync(path.join(installed, 'target')), 'no target/ inside node_modules')
  assert.ok(fs.existsSync(path.join(installed, ADDON)))
  assert.equal(run(dir2, 'check.cjs', check).trim(), 'loaded')
  assert.equal(run(dir2, 'use.cjs', USE_IT).trim(), 'OK')
})

test('a source build of an installed package goes to a cache folder, in the repository to ./target', () => {
  const home = os.homedir()
  const inDeps = path.join(tmp, 'x', 'node_modules', 'ssehub')
  assert.equal(cargoTargetDir(ROOT, {}), path.join(ROOT, 'target'))
  assert.equal(cargoTargetDir(inDeps, { CARGO_TARGET_DIR: '/somewhere' }), '/somewhere')
  assert.equal(cargoTargetDir(inDeps, { XDG_CACHE_HOME: '/cache' }), path.join('/cache', 'ssehub', 'target'))
  if (process.platform === 'linux') assert.equal(cargoTargetDir(inDeps, {}), path.join(home, '.cache', 'ssehub', 'target'))
})
