'use strict'
// The macOS packages, which nothing here can run: the files checked as
// macOS would see them, read with binfmt.js's Mach-O reader. Each is a
// 64-bit Mach-O for its CPU (not a fat file), the addon a dylib exporting
// the N-API entry point (_napi_register_module_v1) and the daemon an
// executable; they link only the system's libraries; the minimum macOS
// they declare is the floor the README states; the local symbols are
// stripped; and the code signature, where there is one (arm64 must have
// one: its kernel kills unsigned code), hashes the file as it is. On a
// macOS runner, run.platform.js also runs them.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { TARGETS, artifacts, notBuilt } = require('./common')
const { read, compare } = require('./binfmt')

for (const t of TARGETS.filter((x) => x.os === 'darwin')) {
  for (const which of ['addon', 'daemon']) {
    test(`${t.pkg}: ${which === 'addon' ? t.addon : t.daemon} is a ${t.cpu === 'arm64' ? 'validly signed, ' : ''}stripped ${t.cpu} Mach-O ${which === 'addon' ? 'dylib exporting napi_register_module_v1' : 'executable'} for macOS ${t.macos}+`, (ctx) => {
      const files = artifacts(t)
      if (!files) return ctx.skip(notBuilt(t))
      const m = read(files[which])
      assert.equal(m.format, 'macho')
      assert.equal(m.cpu, t.cpu)
      assert.equal(m.type, which === 'addon' ? 'dylib' : 'exec')
      if (which === 'addon') assert.ok(m.exports.includes('_napi_register_module_v1'), `exports: ${m.exports.slice(0, 20)}`)
      assert.ok(m.needed.length > 0 && m.needed.includes('/usr/lib/libSystem.B.dylib'), `links libSystem: ${m.needed}`)
      for (const lib of m.needed) assert.match(lib, /^(\/usr\/lib\/|\/System\/Library\/)/, 'only the system\'s libraries')
      assert.ok(m.minos, 'declares a minimum macOS')
      assert.ok(compare(m.minos.split('.').map(Number), t.macos.split('.').map(Number)) <= 0, `minimum macOS ${m.minos}, above the stated ${t.macos}`)
      assert.equal(m.locals, 0, 'local symbols stripped')
      if (t.cpu === 'arm64') assert.ok(m.signature, 'arm64 code must be signed (ad hoc at least)')
      if (m.signature) {
        assert.equal(m.signature.error, undefined, m.signature.error)
        assert.equal(m.signature.mismatched, 0, `${m.signature.mismatched} of ${m.signature.pages} page hashes differ from the file: changed after signing`)
        assert.ok(m.signature.covers, 'the signature covers the whole file up to itself')
      }
      console.log(`${t.name} ${which}: ${m.cpu} ${m.type}, macOS ${m.minos}+, links ${m.needed.join(' ')}, ` +
        (m.signature ? `signed (${m.signature.adhoc ? 'ad hoc' : 'identity'}, ${m.signature.hashType}, ${m.signature.pages} pages)` : 'unsigned'))
    })
  }
}
