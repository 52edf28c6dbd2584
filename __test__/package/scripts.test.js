'use strict'
// The short versions of the reliability scripts in tests/ (each has a
// --long version, run by hand): slow consumers beside readers, and
// connection churn, against the addon and the daemon.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { spawn } = require('node:child_process')

function runScript(name, args) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'tests', name), ...args])
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('exit', (code) => resolve({ code, out }))
  })
}

for (const [script, checks] of [['slow-consumers.js', 7], ['churn.js', 7]]) {
  for (const target of ['addon', 'daemon']) {
    test(`tests/${script} (short, ${target})`, { timeout: 180000 }, async () => {
      const { code, out } = await runScript(script, ['--target', target])
      assert.doesNotMatch(out, /^not ok/m, out)
      const passed = (out.match(/^ok - /gm) || []).length
      assert.ok(passed >= (target === 'addon' && script === 'churn.js' ? checks + 1 : checks - 1), out)
      assert.equal(code, 0, out)
    })
  }
}
