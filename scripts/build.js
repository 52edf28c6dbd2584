#!/usr/bin/env node
// Builds the native addon and the daemon binary (release) and copies them
// next to index.js under the napi-rs names for this platform, e.g.
// ssehub.linux-x64-gnu.node and ssehub-daemon.linux-x64-gnu. The addon is
// built without the daemon and the binary without napi (cargo features).
// `--if-missing` skips the build when a prebuilt platform package is
// installed (npm/<platform>/, published as @ssehub/<platform>).
'use strict'
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { platformTriple, localAddonPath, localDaemonPath, prebuiltAvailable } = require('./platform')

const root = path.join(__dirname, '..')
const ifMissing = process.argv.includes('--if-missing')

if (ifMissing && prebuiltAvailable()) {
  process.exit(0)
}

const profile = process.argv.includes('--debug') ? 'debug' : 'release'
const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target')

function cargo(args) {
  if (profile === 'release') args.push('--release')
  try {
    execFileSync('cargo', args, { cwd: root, stdio: 'inherit' })
  } catch (err) {
    console.error(`ssehub: building with cargo failed (${err.message}).`)
    console.error(`ssehub: install a Rust toolchain (https://rustup.rs) or the prebuilt @ssehub/${platformTriple()} package.`)
    process.exit(1)
  }
}

// Copied beside, then renamed over: a running daemon keeps its old file.
function install(from, to) {
  const tmp = `${to}.${process.pid}.tmp`
  fs.copyFileSync(from, tmp)
  fs.renameSync(tmp, to)
}

cargo(['build', '--lib', '--no-default-features', '--features', 'node'])
const libName = { darwin: 'libssehub.dylib', win32: 'ssehub.dll' }[process.platform] || 'libssehub.so'
install(path.join(targetDir, profile, libName), localAddonPath())
console.log(`ssehub: built ${path.basename(localAddonPath())}`)

cargo(['build', '--bin', 'ssehub', '--no-default-features', '--features', 'daemon'])
const exe = process.platform === 'win32' ? 'ssehub.exe' : 'ssehub'
install(path.join(targetDir, profile, exe), localDaemonPath())
fs.chmodSync(localDaemonPath(), 0o755)
console.log(`ssehub: built ${path.basename(localDaemonPath())}`)
