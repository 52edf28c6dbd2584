'use strict'
// Loads the native addon: a local build first, then the per-platform
// package (napi-rs convention: @ssehub/<platform>-<arch>[-abi]).
const fs = require('node:fs')
const { platformTriple, localAddonPath } = require('./scripts/platform')

function load() {
  const local = localAddonPath()
  if (fs.existsSync(local)) return require(local)
  try {
    return require(`@ssehub/${platformTriple()}`)
  } catch (err) {
    throw new Error(
      `ssehub: no native addon for ${platformTriple()}. Run \`npm install\` in the package ` +
        `(it builds one with cargo), or install @ssehub/${platformTriple()}. (${err.message})`
    )
  }
}

module.exports = load()
