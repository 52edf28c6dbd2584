#!/usr/bin/env node
// Builds the native addon and the daemon binary (release) and copies them
// next to index.js under the napi-rs names for this platform, e.g.
// ssehub.linux-x64-gnu.node and ssehub-daemon.linux-x64-gnu. The addon is
// its own crate (crates/node) and the binary another (crates/daemon):
// the addon carries no daemon code and the binary no napi.
// In the repository they are also copied into npm/<platform>/ (what
// `napi artifacts` does), so `npm pack` there makes the platform package.
//
// `--if-missing` (the install script) skips the build in an installed
// package when the prebuilt platform package is installed too
// (@ssehub/<platform>, an optional dependency): then nothing is compiled. Cargo builds in ./target in the
// repository, and outside node_modules for an installed package (see
// cargoTargetDir in platform.js), with its own progress on the terminal.
// With no terminal (CI logs, a Docker build, output captured), a line says
// it is still building once a minute, so a long first build is not silent.
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const {
  platformTriple,
  platformPackage,
  localAddonPath,
  localDaemonPath,
  packagedDaemonName,
  prebuiltAvailable,
  installedAsDependency,
  cargoTargetDir,
} = require('../lib/platform')

const root = path.join(__dirname, '..')
const ifMissing = process.argv.includes('--if-missing')

// In the repository the build always runs: the dev build must be the
// sources', whatever a registry might hold under the platform package's name.
if (ifMissing && installedAsDependency(root) && prebuiltAvailable()) {
  process.exit(0)
}

const profile = process.argv.includes('--debug') ? 'debug' : 'release'
const targetDir = cargoTargetDir(root)
const progress = progressStream()
const started = Date.now()
/** How often the no-terminal progress line comes (a test shortens it). */
const PROGRESS_MS = Number(process.env.SSEHUB_PROGRESS_MS) > 0 ? Number(process.env.SSEHUB_PROGRESS_MS) : 60000
// Cargo draws its own progress bar on a terminal; elsewhere it prints a
// line per crate, with minutes of silence while a big one compiles.
const ticking = !progress.tty

say(`building the addon and the daemon for ${platformTriple()} from source with cargo, in ${targetDir}` +
  (installedAsDependency(root) ? ` (no prebuilt ${platformPackage()} is installed)` : '') +
  `: the first build takes about 4-10 minutes (2 cores), later ones reuse ${targetDir}`)

function say(line) {
  const text = `ssehub: ${line}\n`
  if (progress.fd !== 2) fs.writeSync(progress.fd, text)
  process.stderr.write(text)
}

/**
 * Where cargo's progress goes. npm runs a dependency's install script with
 * its output captured (shown only if it fails, unless --foreground-scripts):
 * then cargo writes to the terminal itself, if there is one, so a source
 * build is not a silent minute.
 */
function progressStream() {
  const captured = process.env.npm_lifecycle_event && process.env.npm_config_foreground_scripts !== 'true'
  const tty = Boolean(process.stderr.isTTY)
  if (tty || !captured) return { fd: 2, stdio: 'inherit', tty }
  try {
    const fd = fs.openSync('/dev/tty', 'w')
    return { fd, stdio: ['ignore', fd, fd], tty: true }
  } catch {
    return { fd: 2, stdio: 'inherit', tty: false }
  }
}

/** Runs cargo (asynchronously, so the progress line can come while it works). */
function cargo(args) {
  if (profile === 'release') args.push('--release')
  return new Promise((resolve) => {
    const child = spawn('cargo', args, {
      cwd: root,
      stdio: progress.stdio,
      env: { ...process.env, CARGO_TARGET_DIR: targetDir },
    })
    const ticker = ticking ? setInterval(() => say(`still building (${minutes()} min)...`), PROGRESS_MS) : null
    // Stopped (Ctrl-C, a SIGTERM to npm's script): cargo stops with us.
    const stop = (signal) => child.kill(signal)
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, stop)
    const done = () => {
      if (ticker) clearInterval(ticker)
      for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.removeListener(signal, stop)
    }
    child.on('error', (err) => {
      done()
      if (err.code === 'ENOENT') {
        fail(`cargo is not installed, and no prebuilt ${platformPackage()} package is. Install the prebuilt binaries ` +
          `(npm install ${platformPackage()}) or a Rust toolchain (https://rustup.rs), then run \`npm rebuild ssehub\`.`)
      }
      fail(`\`cargo ${args.join(' ')}\` failed (${err.message}); or install the prebuilt ${platformPackage()} package.`)
    })
    child.on('exit', (code, signal) => {
      done()
      if (code !== 0) {
        fail(`\`cargo ${args.join(' ')}\` failed (${signal ? `killed by ${signal}` : `exit ${code}`}); ` +
          `or install the prebuilt ${platformPackage()} package.`)
      }
      resolve()
    })
  })
}

/** Whole minutes since the build started. */
function minutes() {
  return Math.round((Date.now() - started) / 60000)
}

/** `42 s`, `3 min 5 s`. */
function elapsed() {
  const s = Math.round((Date.now() - started) / 1000)
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`
}

function fail(message) {
  say(message)
  process.exit(1)
}

// Copied beside, then renamed over: a running daemon keeps its old file.
function install(from, to, mode) {
  const tmp = `${to}.${process.pid}.tmp`
  fs.copyFileSync(from, tmp)
  if (mode) fs.chmodSync(tmp, mode)
  fs.renameSync(tmp, to)
}

async function main() {
  await cargo(['build', '--package', 'ssehub-node'])
  const libName = { darwin: 'libssehub_node.dylib', win32: 'ssehub_node.dll' }[process.platform] || 'libssehub_node.so'
  const builtAddon = path.join(targetDir, profile, libName)
  install(builtAddon, localAddonPath())
  say(`built ${path.basename(localAddonPath())} (${elapsed()})`)

  await cargo(['build', '--package', 'ssehub-daemon', '--bin', 'ssehub'])
  const exe = process.platform === 'win32' ? 'ssehub.exe' : 'ssehub'
  const builtDaemon = path.join(targetDir, profile, exe)
  install(builtDaemon, localDaemonPath(), 0o755)
  say(`built ${path.basename(localDaemonPath())} (${elapsed()} in all)`)

  // The repository's platform folder gets the artifacts too (`napi artifacts`).
  const platformDir = path.join(root, 'npm', platformTriple())
  if (!installedAsDependency(root) && fs.existsSync(path.join(platformDir, 'package.json'))) {
    install(builtAddon, path.join(platformDir, path.basename(localAddonPath())))
    install(builtDaemon, path.join(platformDir, packagedDaemonName()), 0o755)
    install(path.join(root, 'LICENSE'), path.join(platformDir, 'LICENSE'))
    say(`copied both into npm/${platformTriple()}/ (npm pack there makes ${platformPackage()})`)
  }
}

main()
