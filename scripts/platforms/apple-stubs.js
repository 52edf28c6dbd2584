'use strict'
// Link stubs of the two macOS frameworks the build links, for a cross build
// from Linux where no Apple SDK can be had. zig carries libSystem's stub
// (.tbd) but no framework; the redis crate's rustls-native-certs reads the
// system's root certificates through security-framework, which links
// Security and CoreFoundation. A .tbd is a text file naming a library's
// install name and the symbols it exports: enough for the linker to bind
// each symbol to /System/Library/Frameworks/<name>.framework/... (two-level
// namespace), as with the SDK's own stubs; at run time dyld binds them to
// the real frameworks every macOS has.
//
// The symbols listed are every extern function and static declared by the
// -sys crates that bind the frameworks (core-foundation-sys,
// security-framework-sys) in the versions Cargo.lock picks: a superset of
// what the code references. A name listed that the real framework lacked
// would fail at load time exactly as with the SDK (none is referenced that
// the crates do not declare). On a macOS machine (CI) none of this is used.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const FRAMEWORKS = {
  CoreFoundation: { crates: ['core-foundation-sys'], version: '1.0.0' },
  Security: { crates: ['security-framework-sys'], version: '1.0.0' },
}

/** Source folders of the named packages, from `cargo metadata` for `triple`. */
function packageDirs(src, cargo, env, triple, names) {
  const meta = JSON.parse(
    execFileSync(cargo, ['metadata', '--format-version', '1', '--filter-platform', triple], { cwd: src, env, encoding: 'utf8', maxBuffer: 1 << 28 })
  )
  const dirs = {}
  for (const p of meta.packages) if (names.includes(p.name)) (dirs[p.name] ||= []).push(path.dirname(p.manifest_path))
  return dirs
}

function rustFiles(dir) {
  const out = []
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name)
    if (e.isDirectory()) out.push(...rustFiles(p))
    else if (e.name.endsWith('.rs')) out.push(p)
  }
  return out
}

/** The extern names declared in `extern "C"` blocks of the crate's sources. */
function externs(dir) {
  const names = new Set()
  for (const file of rustFiles(path.join(dir, 'src'))) {
    const text = fs.readFileSync(file, 'utf8')
    for (const block of text.matchAll(/extern\s+"C"\s*\{([\s\S]*?)\n\}/g)) {
      for (const m of block[1].matchAll(/\bpub\s+(?:fn|static(?:\s+mut)?)\s+([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[1])
    }
  }
  return names
}

function tbd(name, symbols) {
  const list = [...symbols].sort().map((s) => `'_${s}'`)
  const lines = []
  for (let i = 0; i < list.length; i += 4) lines.push('                       ' + list.slice(i, i + 4).join(', '))
  return (
    '--- !tapi-tbd\n' +
    'tbd-version:     4\n' +
    'targets:         [ x86_64-macos, arm64-macos, arm64e-macos ]\n' +
    `install-name:    '/System/Library/Frameworks/${name}.framework/Versions/A/${name}'\n` +
    `current-version: ${FRAMEWORKS[name].version}\n` +
    'exports:\n' +
    '  - targets:         [ x86_64-macos, arm64-macos, arm64e-macos ]\n' +
    '    symbols:         [\n' +
    lines.join(',\n') +
    ' ]\n' +
    '...\n'
  )
}

/**
 * Writes <out>/<Name>.framework/<Name>.tbd for each framework; returns the
 * folder to pass as -F, and how many symbols each stub lists.
 */
function writeStubs({ src, cargo, env, triple, out }) {
  const crates = Object.values(FRAMEWORKS).flatMap((f) => f.crates)
  const dirs = packageDirs(src, cargo, env, triple, crates)
  const counts = {}
  for (const [name, f] of Object.entries(FRAMEWORKS)) {
    const symbols = new Set()
    for (const crate of f.crates) for (const dir of dirs[crate] || []) for (const s of externs(dir)) symbols.add(s)
    counts[name] = symbols.size
    if (!symbols.size) continue
    const dir = path.join(out, `${name}.framework`)
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(path.join(dir, `${name}.tbd`), tbd(name, symbols))
  }
  return { dir: out, counts }
}

module.exports = { writeStubs }
