'use strict'
// The README keeps up with the typings: every public member of SSE, Client,
// Options and Stats in index.d.ts is named in it, and its TypeScript
// snippets compile under `tsc --strict` against this package. (The Redis
// bus's own types, BusStats and RedisOptions, are documented with Scaling
// out and DAEMON.md, and not checked here.)

const test = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..', '..')
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
const TYPES = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8')

/** The member names of one class or interface body in index.d.ts. */
function members(kind, name) {
  const start = TYPES.search(new RegExp(`^\\s*(declare )?${kind} ${name}\\b[^{]*\\{`, 'm'))
  assert.ok(start >= 0, `${kind} ${name} in index.d.ts`)
  let depth = 0
  let body = ''
  for (let i = TYPES.indexOf('{', start); i < TYPES.length; i++) {
    if (TYPES[i] === '{') depth++
    if (TYPES[i] === '}') depth--
    body += TYPES[i]
    if (depth === 0) break
  }
  // Only the body's own lines (two levels of nesting at most: skip comments).
  const names = new Set()
  for (const line of body.split('\n')) {
    const m = line.match(/^\s*(?:static\s+)?(?:readonly\s+)?([A-Za-z_]\w*)\??\s*[(:<]/)
    if (m && !['constructor', 'on', 'once', 'default', 'SSE'].includes(m[1])) names.add(m[1])
  }
  return [...names]
}

test('every public member in index.d.ts is named in the README', () => {
  const missing = []
  for (const [kind, name] of [['class', 'SSE'], ['class', 'Client'], ['interface', 'Options'], ['interface', 'Stats']]) {
    const names = members(kind, name)
    assert.ok(names.length > 0, `${name} has members`)
    for (const member of names) {
      if (!new RegExp('`[^`\\n]*\\b' + member + '\\b[^`\\n]*`').test(README)) missing.push(`${name}.${member}`)
    }
  }
  assert.deepEqual(missing, [], 'named in README.md inside backticks')
})

test("the README's TypeScript snippets compile under --strict", () => {
  const blocks = [...README.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1])
  assert.ok(blocks.length >= 1, 'a TypeScript snippet')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-readme-'))
  try {
    const root = ROOT.replace(/\\/g, '/')
    const files = blocks.map((code, i) => {
      const file = path.join(dir, `snippet${i}.ts`)
      fs.writeFileSync(file, `export {}\n${code.replace(/(from |require\()'ssehub'/g, `$1'${root}'`)}`)
      return file
    })
    const tsc = require.resolve('typescript/bin/tsc')
    const result = spawnSync(process.execPath, [tsc, '--strict', '--noEmit', '--module', 'commonjs', '--target', 'es2022', '--types', 'node', '--esModuleInterop', ...files], { encoding: 'utf8', cwd: ROOT })
    assert.equal(result.status, 0, result.stdout + result.stderr)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
