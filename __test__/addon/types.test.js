'use strict'
// The typings compile under `tsc --strict`, and misuse is rejected.

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const tsc = require.resolve('typescript/bin/tsc')
const OPTIONS = ['--strict', '--noEmit', '--module', 'commonjs', '--target', 'es2022', '--types', 'node', '--esModuleInterop']

function compile(file) {
  return spawnSync(process.execPath, [tsc, ...OPTIONS, file], { encoding: 'utf8' })
}

test('index.d.ts compiles a typical program under --strict', () => {
  const result = compile(path.join(__dirname, 'types', 'usage.ts'))
  assert.equal(result.status, 0, result.stdout + result.stderr)
})

test('index.d.ts rejects a wrong call', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-types-'))
  const file = path.join(dir, 'bad.ts')
  const root = path.join(__dirname, '..', '..').replace(/\\/g, '/')
  fs.writeFileSync(file, `import SSE = require('${root}')\nconst sse = new SSE(null, { heartbeat: 'often' })\n`)
  const result = compile(file)
  assert.notEqual(result.status, 0)
  assert.match(result.stdout, /bad\.ts\(2,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/)
  assert.doesNotMatch(result.stdout, /index\.d\.ts/)
})
