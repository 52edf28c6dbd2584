'use strict'
// The platform packages as files: each npm/<platform>/package.json is what
// npm picks it by (os, cpu, libc) and names what it carries; the root
// package lists every one at its own version; lib/platform.js asks for the
// same names; and each built package holds a stripped addon that exports
// the N-API entry point and a daemon of the right CPU and kind, with the
// libc floor it claims. Platforms not built are skipped, saying so; the
// suite fails if none is.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { ROOT, TARGETS, dirOf, artifacts, notBuilt } = require('./common')
const { read, maxGlibc, compare } = require('./binfmt')

const root = require(path.join(ROOT, 'package.json'))

test('at least one platform package is built (else this suite checks nothing)', () => {
  const built = TARGETS.filter(artifacts).map((t) => t.name)
  assert.ok(built.length > 0, `no platform package is built: run \`npm run build:platforms\``)
  console.log(`built: ${built.join(', ')}`)
})

test('the root package lists every platform package at its own version, and napi.targets every triple', () => {
  const optional = root.optionalDependencies || {}
  for (const t of TARGETS) {
    assert.equal(optional[t.pkg], root.version, `optionalDependencies["${t.pkg}"]`)
    assert.ok(root.napi.targets.includes(t.rust), `napi.targets has ${t.rust}`)
  }
  assert.deepEqual(Object.keys(optional).sort(), TARGETS.map((t) => t.pkg).sort(), 'no other optional dependency')
  assert.ok(root.scripts['build:platforms'] && root.scripts['test:platforms'], 'build:platforms and test:platforms scripts')
  assert.doesNotMatch(root.scripts.test, /platform/, 'npm test does not run the platform suite')
})

for (const t of TARGETS) {
  test(`${t.pkg}: package.json names its files and npm's os/cpu/libc`, () => {
    const pkg = require(path.join(dirOf(t), 'package.json'))
    assert.equal(pkg.name, t.pkg)
    assert.equal(pkg.version, root.version)
    assert.equal(pkg.main, t.addon)
    assert.deepEqual(pkg.files.slice().sort(), [t.addon, t.daemon, 'LICENSE'].sort())
    assert.deepEqual(pkg.os, [t.os])
    assert.deepEqual(pkg.cpu, [t.cpu])
    if (t.libc) assert.deepEqual(pkg.libc, [t.libc])
    else assert.equal(pkg.libc, undefined)
    assert.equal(pkg.license, root.license)
  })

  test(`${t.pkg}: lib/platform.js asks for this package on ${t.os} ${t.cpu}${t.libc ? ` ${t.libc}` : ''}`, () => {
    // A child with process.platform and process.arch replaced, and the libc
    // answer given as Deno would (lib/platform.js asks Deno.build.env first).
    const source = `
      Object.defineProperty(process, 'platform', { value: ${JSON.stringify(t.os)} })
      Object.defineProperty(process, 'arch', { value: ${JSON.stringify(t.cpu)} })
      ${t.libc ? `globalThis.Deno = { build: { env: ${JSON.stringify(t.libc === 'musl' ? 'musl' : 'gnu')} } }` : ''}
      const p = require(${JSON.stringify(path.join(ROOT, 'lib', 'platform.js'))})
      process.stdout.write(JSON.stringify({ triple: p.platformTriple(), pkg: p.platformPackage(), daemon: p.packagedDaemonName(), addon: require('node:path').basename(p.localAddonPath()) }))`
    const got = JSON.parse(execFileSync(process.execPath, ['-e', source], { encoding: 'utf8' }))
    assert.deepEqual(got, { triple: t.name, pkg: t.pkg, daemon: t.daemon, addon: t.addon })
  })

  test(`${t.pkg}: the addon and the daemon are ${t.cpu} ${t.os} files, stripped${t.glibc ? `, for glibc ${t.glibc}` : ''}`, (ctx) => {
    const files = artifacts(t)
    if (!files) return ctx.skip(notBuilt(t))
    const addon = read(files.addon)
    const daemon = read(files.daemon)
    for (const [what, f] of [['addon', addon], ['daemon', daemon]]) {
      assert.equal(f.cpu, t.cpu, `${what} CPU`)
      assert.equal(f.format, { linux: 'elf', win32: 'pe', darwin: 'macho' }[t.os], `${what} format`)
    }
    assert.ok(addon.exports.includes(t.os === 'darwin' ? '_napi_register_module_v1' : 'napi_register_module_v1'), 'the addon exports the N-API entry point')
    if (t.os === 'linux') {
      assert.equal(addon.type, 'dyn')
      assert.ok(addon.stripped && daemon.stripped, 'no .symtab left')
      const arch = t.cpu === 'x64' ? 'x86_64' : 'aarch64'
      if (t.libc === 'glibc') {
        const floor = t.glibc.split('.').map(Number)
        for (const [what, f] of [['addon', addon], ['daemon', daemon]]) {
          const max = maxGlibc(f.versions)
          assert.ok(max, `${what} has GLIBC_ symbol versions`)
          assert.ok(compare(max, floor) <= 0, `${what} needs GLIBC_${max.join('.')}, above the ${t.glibc} floor`)
          assert.ok(f.needed.includes('libc.so.6'), `${what} links glibc`)
        }
        assert.equal(daemon.interpreter, t.cpu === 'x64' ? '/lib64/ld-linux-x86-64.so.2' : '/lib/ld-linux-aarch64.so.1')
      } else {
        for (const [what, f] of [['addon', addon], ['daemon', daemon]]) {
          assert.deepEqual(f.versions.filter((v) => v.startsWith('GLIBC_')), [], `${what} needs no glibc symbol`)
          assert.ok(!f.needed.some((n) => /^libc\.so\.6$|^ld-linux/.test(n)), `${what} links no glibc: ${f.needed}`)
          assert.ok(!f.needed.includes('libgcc_s.so.1'), `${what} needs no libgcc_s (Alpine has it only with the gcc runtime)`)
        }
        // The addon is loaded by a musl Node.js, into its libc (Node's musl
        // loader answers a NEEDED libc.so itself); the daemon is static-pie
        // (zig links a musl executable statically): no loader, no library,
        // so it runs on any Linux of its CPU.
        assert.ok(addon.needed.some((n) => n === 'libc.so' || /^libc\.musl-/.test(n)), `the addon links musl's libc: ${addon.needed}`)
        if (daemon.interpreter) assert.equal(daemon.interpreter, `/lib/ld-musl-${arch}.so.1`)
        else assert.deepEqual(daemon.needed, [], 'a static daemon needs no library')
      }
    } else if (t.os === 'win32') {
      assert.equal(addon.type, 'dll')
      assert.ok(addon.stripped, `no COFF symbols or debug sections: ${addon.sections}`)
      assert.equal(daemon.type, 'exe')
      assert.equal(daemon.subsystem, 'console')
      assert.ok(daemon.stripped, `no COFF symbols or debug sections: ${daemon.sections}`)
      for (const [what, f] of [['addon', addon], ['daemon', daemon]]) {
        const names = f.needed.map((n) => n.toLowerCase())
        // Only Windows' own DLLs: no MinGW runtime to ship beside it, and
        // no libnode.dll (N-API is found in node.exe when the addon loads).
        const foreign = names.filter((n) => /^(libgcc|libwinpthread|libstdc\+\+|libnode|node\.)/.test(n))
        assert.deepEqual(foreign, [], `${what} imports ${names.join(', ')}`)
        assert.ok(names.includes('kernel32.dll'), `${what} imports kernel32.dll`)
      }
    } else {
      assert.equal(addon.type, 'dylib')
      assert.equal(daemon.type, 'exec')
    }
  })
}
