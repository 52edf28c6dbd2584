'use strict'
// The napi-rs platform naming: which addon file or package fits this machine.
const path = require('node:path')

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
  return path.join(__dirname, '..', `ssehub.${platformTriple()}.node`)
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

module.exports = { platformTriple, localAddonPath, prebuiltAvailable }
