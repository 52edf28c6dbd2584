#!/usr/bin/env node
// `npm run measure:platforms`: what installing ssehub costs, next to
// better-sse and sse, and what each platform package weighs; the numbers
// of bench/PLATFORMS.md, printed as Markdown.
//
// - ssehub: `npm pack` of the package and of this machine's platform
//   package (npm/<platform>/, as build:platforms left it), installed
//   together into a fresh project with cargo and rustc off PATH (the
//   install script must find the prebuilt package and build nothing).
//   The tarballs are local, so nothing is downloaded; `--offline` keeps
//   npm from asking the registry for the other platforms' packages.
// - better-sse and sse: from the npm registry, at the versions of the
//   repository's devDependencies, each run with an empty npm cache (a
//   cold download: what a first install costs).
// - install time: `npm install` wall time, the median of --runs (5), each
//   into a new folder; installed size: the bytes of the files under
//   node_modules; require time: `require(name)` in a fresh process, the
//   median of 15.
// - each built platform package: `npm pack` size and unpacked size.
'use strict'
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TARGETS } = require('./targets')
const { platformTriple } = require('../../lib/platform')

const ROOT = path.join(__dirname, '..', '..')
const pkg = require(path.join(ROOT, 'package.json'))
const RUNS = Number((process.argv.find((a) => a.startsWith('--runs=')) || '--runs=5').slice(7))
const REQUIRE_RUNS = 15
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-measure-'))
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }))

/**
 * PATH with no Rust toolchain on it (as pack-install.js does): a folder of
 * Rust's programs only is left out; one that holds others too (/usr/bin,
 * where Debian's rustc-web puts cargo) becomes a folder of links to all
 * but Rust's programs.
 */
const RUST_BINS = /^(cargo|rustc|rustup|rustdoc|cargo-.*)$/
const NO_CARGO_PATH = process.env.PATH.split(path.delimiter)
  .map((dir, i) => {
    if (!['cargo', 'rustc'].some((bin) => fs.existsSync(path.join(dir, bin)))) return dir
    const names = fs.readdirSync(dir).filter((name) => !RUST_BINS.test(name) && !name.startsWith('.'))
    if (!names.length) return null
    const shim = path.join(tmp, 'path', String(i))
    fs.mkdirSync(shim, { recursive: true })
    for (const name of names) fs.symlinkSync(path.join(dir, name), path.join(shim, name))
    return shim
  })
  .filter(Boolean)
  .join(path.delimiter)

function cleanEnv(extra = {}) {
  const env = { ...process.env, PATH: NO_CARGO_PATH, ...extra }
  delete env.CARGO_TARGET_DIR
  for (const key of Object.keys(env)) if (key.startsWith('npm_')) delete env[key]
  return env
}

function npm(args, cwd, env = cleanEnv()) {
  const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed: ${r.error || r.stderr}`)
  return r.stdout
}

function pack(dir) {
  const [info] = JSON.parse(npm(['pack', '--json', '--pack-destination', tmp], dir, { ...process.env }))
  return { file: path.join(tmp, info.filename), size: info.size, unpacked: info.unpackedSize, files: info.entryCount }
}

function project(name) {
  const dir = fs.mkdtempSync(path.join(tmp, `${name}-`))
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'measure', version: '1.0.0', private: true }))
  return dir
}

function bytesUnder(dir) {
  let total = 0
  let files = 0
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    if (entry.isDirectory()) {
      const sub = bytesUnder(p)
      total += sub.total
      files += sub.files
    } else if (entry.isFile()) {
      total += fs.statSync(p).size
      files++
    }
  }
  return { total, files }
}

const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Installs `specs` RUNS times into new folders: times (ms) and the last folder. */
function installRuns(name, specs, flags) {
  const times = []
  let dir
  for (let i = 0; i < RUNS; i++) {
    dir = project(name)
    const cache = fs.mkdtempSync(path.join(tmp, 'cache-'))
    const started = process.hrtime.bigint()
    npm(['install', '--no-audit', '--no-fund', '--cache', cache, ...flags, ...specs], dir)
    times.push(Number(process.hrtime.bigint() - started) / 1e6)
    fs.rmSync(cache, { recursive: true, force: true })
  }
  return { times, dir }
}

function requireTimes(dir, name) {
  const times = []
  const source = `const t = process.hrtime.bigint(); require(${JSON.stringify(name)}); process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6))`
  for (let i = 0; i < REQUIRE_RUNS; i++) {
    times.push(Number(execFileSync(process.execPath, ['-e', source], { cwd: dir, env: cleanEnv(), encoding: 'utf8' })))
  }
  return times
}

const mb = (n) => (n / 1e6).toFixed(2) + ' MB'
const ms = (n) => (n >= 100 ? n.toFixed(0) : n.toFixed(1)) + ' ms'

function machine() {
  const cpus = os.cpus()
  const npmVersion = execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim()
  return `${cpus[0].model}, ${cpus.length} cores (shared), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; ` +
    `${os.type()} ${os.release()} ${os.arch()}; Node.js ${process.version}, npm ${npmVersion}`
}

function main() {
  const host = platformTriple()
  const hostTarget = TARGETS.find((t) => t.name === host)
  if (!hostTarget || !fs.existsSync(path.join(ROOT, 'npm', host, hostTarget.addon))) {
    throw new Error(`npm/${host}/ has no built package: run npm run build:platforms -- --only ${host}`)
  }
  const lines = []
  const out = (line = '') => lines.push(line)
  out(`Machine: ${machine()}. Date: ${new Date().toISOString().slice(0, 10)}.`)
  out()

  // The platform packages.
  const sizes = []
  for (const t of TARGETS) {
    if (!fs.existsSync(path.join(ROOT, 'npm', t.name, t.addon))) {
      sizes.push(`| \`${t.pkg}\` | not built here | | | |`)
      continue
    }
    const p = pack(path.join(ROOT, 'npm', t.name))
    const addon = fs.statSync(path.join(ROOT, 'npm', t.name, t.addon)).size
    const daemon = mb(fs.statSync(path.join(ROOT, 'npm', t.name, t.daemon)).size)
    sizes.push(`| \`${t.pkg}\` | ${mb(p.size)} | ${mb(p.unpacked)} | ${mb(addon)} | ${daemon} |`)
  }

  // ssehub from its tarballs, better-sse and sse from the registry.
  const main = pack(ROOT)
  const platform = pack(path.join(ROOT, 'npm', host))
  const candidates = [
    { name: 'ssehub', label: `ssehub ${pkg.version} + ${hostTarget.pkg}`, specs: [main.file, platform.file], flags: ['--offline'], from: 'local `npm pack` tarballs' },
    { name: 'better-sse', label: `better-sse ${pkg.devDependencies['better-sse']}`, specs: [`better-sse@${pkg.devDependencies['better-sse']}`], flags: [], from: 'registry, cold cache' },
    { name: 'sse', label: `sse ${pkg.devDependencies.sse}`, specs: [`sse@${pkg.devDependencies.sse}`], flags: [], from: 'registry, cold cache' },
  ]
  const rows = []
  for (const c of candidates) {
    process.stderr.write(`measure: installing ${c.label} ${RUNS} times\n`)
    const { times, dir } = installRuns(c.name, c.specs, c.flags)
    const size = bytesUnder(path.join(dir, 'node_modules'))
    if (c.name === 'ssehub') {
      // cargo was not reachable from the install.
      if (spawnSync('cargo', ['--version'], { env: cleanEnv() }).status === 0) throw new Error('cargo is on the install PATH')
      // The prebuilt package was used, nothing was built.
      if (!fs.existsSync(path.join(dir, 'node_modules', '@ssehub', host, hostTarget.addon))) throw new Error('the platform package was not installed')
      if (fs.readdirSync(path.join(dir, 'node_modules', 'ssehub')).some((f) => f.endsWith('.node'))) throw new Error('the install script built an addon')
    }
    const req = requireTimes(dir, c.name)
    rows.push(`| ${c.label} | ${c.from} | ${ms(median(times))} (${ms(Math.min(...times))}-${ms(Math.max(...times))}) | ${mb(size.total)} (${size.files} files) | ${ms(median(req))} (${ms(Math.min(...req))}-${ms(Math.max(...req))}) |`)
  }

  out(`Install (\`npm install\`, median of ${RUNS}, min-max), installed size (bytes of the files under node_modules) and \`require\` time (fresh process, median of ${REQUIRE_RUNS}):`)
  out()
  out('| package | from | install time | installed size | require time |')
  out('|---|---|---|---|---|')
  for (const r of rows) out(r)
  out()
  out(`ssehub's own tarball: ${mb(main.size)} packed, ${mb(main.unpacked)} unpacked, ${main.files} files (the JS, typings, docs and the Rust sources a source build needs).`)
  out()
  out('Each platform package (`npm pack` in npm/<platform>/):')
  out()
  out('| package | tarball | unpacked | addon | daemon |')
  out('|---|---|---|---|---|')
  for (const s of sizes) out(s)
  console.log(lines.join('\n'))
}

main()
