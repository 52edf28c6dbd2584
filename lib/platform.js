'use strict'
// The napi-rs platform naming: which addon file or package fits this machine,
// and where the daemon binary is.
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

let musl = null

/**
 * Whether this Linux runs on musl (Alpine), asked once: on Deno from
 * `Deno.build.env` (no permission needed); else from the libc this very
 * process loaded (/proc/self/maps: a musl Node.js on a glibc system, or the
 * reverse, gets its own kind); else from the text of `ldd` (a file read,
 * well under a millisecond; `process.report` costs ~8 ms a call and needs
 * `--allow-sys` on Deno), else from Node's report, else glibc.
 */
function isMusl() {
  if (process.platform !== 'linux') return false
  if (musl === null) musl = muslFromDeno() ?? muslFromMaps() ?? muslFromLdd() ?? muslFromReport() ?? false
  return musl
}

/** The C library mapped into this process: musl's loader, or glibc's libc.so.6; null if unknown. */
function muslFromMaps() {
  try {
    const maps = fs.readFileSync('/proc/self/maps', 'latin1')
    if (/\/(ld-musl-[^/\s]*|libc\.musl-[^/\s]*)$/m.test(maps)) return true
    if (/\/libc(\.so\.6|-2\.[0-9.]+\.so)$/m.test(maps)) return false
    return null
  } catch {
    return null
  }
}

function muslFromDeno() {
  const build = typeof globalThis.Deno === 'object' && globalThis.Deno && globalThis.Deno.build
  return build && typeof build.env === 'string' ? build.env === 'musl' : null
}

function muslFromLdd() {
  try {
    return fs.readFileSync('/usr/bin/ldd', 'latin1').includes('musl')
  } catch {
    return null
  }
}

function muslFromReport() {
  try {
    const report = process.report.getReport()
    return !(report && report.header && report.header.glibcVersionRuntime)
  } catch {
    return null
  }
}

/**
 * The napi-rs platform name. Windows x64 is `win32-x64-gnu`: the prebuilt
 * package is a MinGW build (cross-built with zig; the MSVC CRT and SDK
 * cannot be fetched where the packages are built), which any Windows
 * Node.js loads; a source build there takes the same name. Other Windows
 * CPUs keep napi-rs's `-msvc` (built from source only).
 */
function platformTriple() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-${arch === 'x64' ? 'gnu' : 'msvc'}`
  return `${platform}-${arch}`
}

function localAddonPath() {
  return path.join(root, `ssehub.${platformTriple()}.node`)
}

/** The daemon binary a local build leaves beside the addon. */
function localDaemonPath() {
  const exe = process.platform === 'win32' ? '.exe' : ''
  return path.join(root, `ssehub-daemon.${platformTriple()}${exe}`)
}

/** The name of the daemon binary inside a platform package. */
function packagedDaemonName() {
  return process.platform === 'win32' ? 'ssehub-daemon.exe' : 'ssehub-daemon'
}

// A per-platform package from npm/ is installed (a local build is always
// refreshed: cargo makes that cheap when nothing changed).
function prebuiltAvailable() {
  try {
    require.resolve(`@ssehub/${platformTriple()}`)
    return true
  } catch {
    return false
  }
}

/** The platform package's name, e.g. `@ssehub/linux-x64-gnu`. */
function platformPackage() {
  return `@ssehub/${platformTriple()}`
}

/** Whether `dir` is a package installed under some node_modules (not the repository). */
function installedAsDependency(dir = root) {
  return path.resolve(dir).split(path.sep).includes('node_modules')
}

/**
 * Where cargo builds: `CARGO_TARGET_DIR` if set; in the repository
 * `./target` (the dev build stays warm); for an installed package a cache
 * folder outside node_modules, so a source build leaves no `target/`
 * (hundreds of MB) in the app and is reused by the next install.
 */
function cargoTargetDir(dir = root, env = process.env) {
  if (env.CARGO_TARGET_DIR) return path.resolve(env.CARGO_TARGET_DIR)
  if (!installedAsDependency(dir)) return path.join(dir, 'target')
  return path.join(cacheHome(env), 'ssehub', 'target')
}

function cacheHome(env) {
  if (env.XDG_CACHE_HOME) return env.XDG_CACHE_HOME
  if (process.platform === 'darwin') return path.join(require('node:os').homedir(), 'Library', 'Caches')
  if (process.platform === 'win32' && env.LOCALAPPDATA) return env.LOCALAPPDATA
  return path.join(require('node:os').homedir(), '.cache')
}

/** What to do when no addon or daemon fits: the fixes that work, in order. */
function missingBinaryHelp(what) {
  return (
    `ssehub: no ${what} for ${platformTriple()}: neither the prebuilt package ${platformPackage()} ` +
    `nor a local build is installed (were install scripts disabled, e.g. --ignore-scripts or pnpm?). Fix it with one of:\n` +
    `  npm install ${platformPackage()}@${version()}   # the prebuilt binaries, no Rust needed\n` +
    `  npm rebuild ssehub                   # build from source (needs cargo; if your package manager blocks ` +
    `install scripts, allow ssehub's first: npm install-scripts approve ssehub, pnpm approve-builds)`
  )
}

function version() {
  return require('../package.json').version
}

/** The daemon binary: a local build first, then the platform package's. */
function daemonBinaryPath() {
  const local = localDaemonPath()
  if (fs.existsSync(local)) return local
  try {
    const pkg = require.resolve(`@ssehub/${platformTriple()}/package.json`)
    const packaged = path.join(path.dirname(pkg), packagedDaemonName())
    if (fs.existsSync(packaged)) return packaged
  } catch {}
  throw new Error(missingBinaryHelp('daemon binary'))
}

module.exports = {
  isMusl,
  platformTriple,
  localAddonPath,
  localDaemonPath,
  packagedDaemonName,
  prebuiltAvailable,
  daemonBinaryPath,
  platformPackage,
  installedAsDependency,
  cargoTargetDir,
  missingBinaryHelp,
}
