'use strict'
// A source build with no terminal is not silent: scripts/build.js says how
// long a first build takes, then "still building (N min)..." while cargo
// runs (every minute; SSEHUB_PROGRESS_MS shortens it here), and the time it
// took. Run on a copy of the build script with a fake `cargo` on PATH that
// sleeps, then leaves what a build leaves; nothing of the repository's own
// build is touched.

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')

const FAKE_CARGO = `#!/bin/sh
# A fake cargo: works for a while, then leaves the built files.
echo "   Compiling fake ($*)" >&2
sleep 1
mkdir -p "$CARGO_TARGET_DIR/release"
case "$*" in
  *ssehub-node*) echo addon > "$CARGO_TARGET_DIR/release/libssehub_node.so" ;;
  *) echo daemon > "$CARGO_TARGET_DIR/release/ssehub" ;;
esac
echo "    Finished fake" >&2
`

test('a build with no terminal prints the expected time, a progress line while cargo runs, and the time taken', { skip: process.platform !== 'linux' && 'the fake cargo is a POSIX shell script naming Linux outputs' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-build-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  // The package: its build script and platform naming, in a folder of its own.
  const pkg = path.join(dir, 'pkg')
  for (const file of ['scripts/build.js', 'lib/platform.js']) {
    fs.mkdirSync(path.join(pkg, path.dirname(file)), { recursive: true })
    fs.copyFileSync(path.join(ROOT, file), path.join(pkg, file))
  }
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'))
  const bin = path.join(dir, 'bin')
  fs.mkdirSync(bin)
  fs.writeFileSync(path.join(bin, 'cargo'), FAKE_CARGO, { mode: 0o755 })

  const env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH}`, SSEHUB_PROGRESS_MS: '200', CARGO_TARGET_DIR: path.join(dir, 'target') }
  // Not an npm script here (npm test sets these): the output is a pipe, no terminal.
  for (const name of Object.keys(env)) if (name.startsWith('npm_')) delete env[name]
  const { code, stderr } = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(pkg, 'scripts', 'build.js')], { env, timeout: 30000 }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, stderr: stdout + stderr }))
  })
  assert.equal(code, 0, stderr)
  assert.match(stderr, /^ssehub: building the addon and the daemon .*: the first build takes about 4-10 minutes/m)
  const ticks = stderr.match(/^ssehub: still building \(\d+ min\)\.\.\.$/gm) || []
  // Two cargo runs of a second each, a line every 200 ms: several lines, during each run.
  assert.ok(ticks.length >= 4, stderr)
  const lines = stderr.split('\n')
  const firstTick = lines.findIndex((l) => l.startsWith('ssehub: still building'))
  const built = lines.findIndex((l) => l.startsWith('ssehub: built '))
  assert.ok(firstTick > lines.findIndex((l) => l.includes('Compiling fake (build --package ssehub-node')), 'while cargo runs')
  assert.ok(firstTick < built, 'before the first build ended')
  assert.match(stderr, /^ssehub: built ssehub-daemon\.linux-\w+-\w+ \(\d+ s in all\)$/m)
  assert.equal(fs.readFileSync(path.join(pkg, fs.readdirSync(pkg).find((f) => f.endsWith('.node'))), 'utf8'), 'addon\n')
})
