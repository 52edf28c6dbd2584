'use strict'
// Loads the native addon, napi-rs style: a local build first (the
// repository's, or a source build of an installed package), then the
// prebuilt platform package (@ssehub/<platform>, an optional dependency).
// Bun and Deno load it through their napi support; Deno asks for
// --allow-ffi (and, outside node_modules, --allow-read), and a missing
// permission is named as such rather than as a broken install.
const fs = require('node:fs')
const { localAddonPath, platformPackage, missingBinaryHelp } = require('./lib/platform')

function load() {
  const local = localAddonPath()
  const present = exists(local)
  if (present !== false) {
    try {
      return require(local)
    } catch (err) {
      // Not known to be there (Deno without --allow-read): a missing file
      // sends us on to the platform package.
      if (present !== null || err.code !== 'MODULE_NOT_FOUND') throw denied(err) || err
    }
  }
  let resolved
  try {
    resolved = require.resolve(platformPackage())
  } catch {
    throw new Error(missingBinaryHelp('native addon'))
  }
  try {
    return require(resolved)
  } catch (err) {
    throw denied(err) || new Error(`ssehub: ${platformPackage()} is installed but its addon does not load (${err.message}); try \`npm rebuild ssehub\` (builds from source with cargo)`)
  }
}

/** Whether `file` exists; null when it cannot be known (Deno without --allow-read). */
function exists(file) {
  try {
    return fs.existsSync(file)
  } catch (err) {
    if (isDenoPermission(err)) return null
    throw err
  }
}

/** Deno refused a permission: Deno.errors.NotCapable (2.x) or PermissionDenied (1.x). */
function isDenoPermission(err) {
  if (!err || typeof globalThis.Deno === 'undefined') return false
  const errors = globalThis.Deno.errors || {}
  return (
    (errors.NotCapable && err instanceof errors.NotCapable) ||
    (errors.PermissionDenied && err instanceof errors.PermissionDenied) ||
    err.name === 'NotCapable' ||
    err.name === 'PermissionDenied' ||
    /--allow-(ffi|read)\b/.test(String(err.message))
  )
}

/** The error to throw for a refused permission, naming the flag; null for any other error. */
function denied(err) {
  if (!isDenoPermission(err)) return null
  const message = String(err.message)
  const flag = /--allow-read\b/.test(message) && !/--allow-ffi\b/.test(message) ? '--allow-read' : '--allow-ffi'
  const error = new Error(
    `ssehub: Deno did not allow loading the native addon: run with ${flag}` +
      (flag === '--allow-ffi' ? ' (the addon is a napi library; e.g. `deno run --allow-ffi --allow-net app.js`)' : ' (to find the addon outside node_modules)') +
      `. Deno said: ${message}`
  )
  error.code = 'ERR_SSEHUB_DENO_PERMISSION'
  error.cause = err
  return error
}

module.exports = load()
