#!/usr/bin/env node
// Builds the native addon (release) and copies it next to index.js under
// the napi-rs file name for this platform, e.g. ssehub.linux-x64-gnu.node.
// `--if-missing` skips the build when a prebuilt addon is already present
// (a per-platform package from npm/, or an earlier build).
'use strict'
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { platformTriple, localAddonPath, prebuiltAvailable } = require('./platform')

const root = path.join(__dirname, '..')
const ifMissing = process.argv.includes('--if-missing')

if (ifMissing && prebuiltAvailable()) {
  process.exit(0)
}

const profile = process.argv.includes('--debug') ? 'debug' : 'release'
const args = ['build', '--lib']
if (profile === 'release') args.push('--release')
try {
  execFileSync('cargo', args, { cwd: root, stdio: 'inherit' })
} catch (err) {
  console.error(`ssehub: building the native addon failed (${err.message}).`)
  console.error('ssehub: install a Rust toolchain (https://rustup.rs) or a prebuilt @ssehub/' + platformTriple() + ' package.')
  process.exit(1)
}

const libName = { darwin: 'libssehub.dylib', win32: 'ssehub.dll' }[process.platform] || 'libssehub.so'
const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target')
const built = path.join(targetDir, profile, libName)
fs.copyFileSync(built, localAddonPath())
console.log(`ssehub: built ${path.basename(localAddonPath())}`)
