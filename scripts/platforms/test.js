#!/usr/bin/env node
// `npm run test:platforms`: the platform suite, __test__/platforms/*.platform.js
// (named so that `npm test`'s `node --test __test__/` does not pick them
// up: node --test matches *.test.js and the like, not *.platform.js).
//
// First it fetches the foreign runtimes the built packages need
// (scripts/platforms/runtimes.js: qemu, musl, wine, Node.js builds from npm
// and PyPI), unless --no-fetch; then runs the files one at a time.
//   --no-fetch     use only what is already there (the rest is skipped)
//   any other argument is passed to node --test (e.g. --test-name-pattern=musl)
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { TARGETS } = require('./targets')

const ROOT = path.join(__dirname, '..', '..')
const DIR = path.join(ROOT, '__test__', 'platforms')
const args = process.argv.slice(2)
const fetch = !args.includes('--no-fetch')
const pass = args.filter((a) => a !== '--no-fetch')

if (fetch) {
  const { runtime, actionlint } = require('./runtimes')
  if (!actionlint({ fetch: true })) process.stderr.write('test:platforms: actionlint could not be installed: the workflow lint is skipped\n')
  for (const t of TARGETS) {
    const built = fs.existsSync(path.join(ROOT, 'npm', t.name, t.addon))
    if (!built || t.os === 'darwin') continue
    const r = runtime(t.name, { fetch: true })
    process.stderr.write(`test:platforms: ${t.name}: ${r.skip ? `cannot run here: ${r.skip}` : r.describe}\n`)
  }
}

const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.platform.js')).sort().map((f) => path.join(DIR, f))
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=900000', ...pass, ...files], { cwd: ROOT, stdio: 'inherit' })
process.exitCode = r.status === null ? 1 : r.status
