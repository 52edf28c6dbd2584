'use strict'
// The napi-rs platform naming: which addon file or package fits this machine,
// and where the daemon binary is.
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

function isMusl() {
  if (process.platform !== 'linux') return false
  const report = process.report && process.report.getReport ? process.report.getReport() : null
  return !(report && report.header && report.header.glibcVersionRuntime)
}

function platformTriple() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
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

/** The daemon binary: a local build first, then the platform package's. */
function daemonBinaryPath() {
  const local = localDaemonPath()
  if (fs.existsSync(local)) return local
  try {
    const pkg = require.resolve(`@ssehub/${platformTriple()}/package.json`)
    const packaged = path.join(path.dirname(pkg), packagedDaemonName())
    if (fs.existsSync(packaged)) return packaged
  } catch {}
  throw new Error(
    `ssehub: no daemon binary for ${platformTriple()}. Run \`npm rebuild ssehub\` (builds it with cargo) ` +
      `or install @ssehub/${platformTriple()}.`
  )
}

module.exports = {
  platformTriple,
  localAddonPath,
  localDaemonPath,
  packagedDaemonName,
  prebuiltAvailable,
  daemonBinaryPath,
}
