'use strict'
// Loading ssehub stays cheap: no process.report (8 ms a call, and
// --allow-sys on Deno) and no module a bare `require` would not need.
// (The time itself is measured by the benchmark, not here.)

const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')

test('require(ssehub) asks no process.report and loads neither node:net nor node:os', () => {
  const script = `
    let reports = 0
    const real = process.report.getReport.bind(process.report)
    process.report.getReport = () => { reports++; return real() }
    require(${JSON.stringify(ROOT)})
    const loaded = (name) => process.moduleLoadList.includes('NativeModule ' + name)
    console.log(JSON.stringify({ reports, net: loaded('net'), os: loaded('os') }))
  `
  const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }))
  assert.deepEqual(out, { reports: 0, net: false, os: false })
})
