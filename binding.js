'use strict'
// Loads the native addon, napi-rs style: a local build first (the
// repository's, or a source build of an installed package), then the
// prebuilt platform package (@ssehub/<platform>, an optional dependency).
const fs = require('node:fs')
const { localAddonPath, platformPackage, missingBinaryHelp } = require('./scripts/platform')

function load() {
  const local = localAddonPath()
  if (fs.existsSync(local)) return require(local)
  let resolved
  try {
    resolved = require.resolve(platformPackage())
  } catch {
    throw new Error(missingBinaryHelp('native addon'))
  }
  try {
    return require(resolved)
  } catch (err) {
    throw new Error(`ssehub: ${platformPackage()} is installed but its addon does not load (${err.message}); try \`npm rebuild ssehub\` (builds from source with cargo)`)
  }
}

module.exports = load()
