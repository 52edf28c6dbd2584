'use strict'
// The release workflow (.github/workflows/release.yml): actionlint finds
// nothing in it (and does find a broken copy's fault, so the check can
// fail); its build matrix is the platform table of
// scripts/platforms/targets.js, target for target, and its test matrix
// runs every platform.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { ROOT, TARGETS } = require('./common')
const { actionlint, ACTIONLINT } = require('../../scripts/platforms/runtimes')

const FILE = path.join(ROOT, '.github', 'workflows', 'release.yml')
const text = fs.readFileSync(FILE, 'utf8')

/** The `include:` entries of a job's matrix, as objects of their scalar keys. */
function matrix(job) {
  const start = text.indexOf(`\n  ${job}:\n`)
  assert.ok(start >= 0, `job ${job}`)
  const end = text.slice(start + 1).search(/\n {2}[a-z-]+:\n/)
  const body = end < 0 ? text.slice(start) : text.slice(start, start + 1 + end)
  const entries = []
  for (const m of body.matchAll(/\n {10}- ([\s\S]*?)(?=\n {10}- |\n {4}[a-z-]+:|$)/g)) {
    const entry = {}
    for (const line of ('  ' + m[1]).split('\n')) {
      const kv = /^\s*([a-z-]+): (.+)$/.exec(line)
      if (kv) entry[kv[1]] = kv[2].trim()
    }
    entries.push(entry)
  }
  return entries
}

const lint = actionlint()

test('actionlint finds no fault in release.yml', { skip: !lint && `actionlint is not installed (npm run test:platforms installs PyPI's ${ACTIONLINT})` }, () => {
  const r = spawnSync(lint, ['-no-color', FILE], { cwd: ROOT, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})

test('actionlint does find a fault put into a copy of release.yml (the check can fail)', { skip: !lint && 'actionlint is not installed' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-actionlint-'))
  try {
    const broken = path.join(dir, 'release.yml')
    fs.writeFileSync(broken, text.replace('runs-on: ${{ matrix.host }}', 'runs-on: ${{ matrix.hots }}'))
    const r = spawnSync(lint, ['-no-color', broken], { encoding: 'utf8' })
    assert.equal(r.status, 1, r.stdout + r.stderr)
    assert.match(r.stdout, /property "hots" is not defined/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('the build matrix is the platform table (scripts/platforms/targets.js)', () => {
  const build = matrix('build')
  assert.deepEqual(
    build.map((e) => [e.platform, e.target]).sort(),
    TARGETS.map((t) => [t.name, t.rust]).sort()
  )
  for (const e of build) {
    const t = TARGETS.find((x) => x.name === e.platform)
    // macOS is built on its own runners (Apple's linker signs arm64); the rest with zig on Linux.
    assert.equal(e.how, t.os === 'darwin' ? 'native' : 'zig', e.platform)
    assert.match(e.host, t.os === 'darwin' ? /^macos-/ : /^ubuntu-/, e.platform)
  }
})

test('the test matrix runs every platform on a runner of its own kind', () => {
  const tests = matrix('test')
  assert.deepEqual(tests.map((e) => e.platform).sort(), TARGETS.map((t) => t.name).sort())
  for (const e of tests) {
    const t = TARGETS.find((x) => x.name === e.platform)
    const want = { linux: t.cpu === 'arm64' ? /^ubuntu-.*-arm$/ : /^ubuntu-(latest|\d)/, darwin: t.cpu === 'arm64' ? /^macos-\d+$/ : /^macos-.*-intel$/, win32: /^windows-/ }[t.os]
    assert.match(e.host, want, e.platform)
    assert.equal(e.alpine === 'true', t.libc === 'musl', `${e.platform}: Alpine for musl only`)
  }
})

test('publishing needs the builds and the tests, and uses NPM_TOKEN', () => {
  assert.match(text, /\n {2}publish:\n[\s\S]*?needs: \[build, test\]/)
  assert.match(text, /NODE_AUTH_TOKEN: \$\{\{ secrets\.NPM_TOKEN \}\}/)
  const platforms = text.indexOf('Publish the platform packages')
  const main = text.indexOf('Publish ssehub')
  assert.ok(platforms > 0 && main > platforms, 'the platform packages are published before the main one')
})
