#!/usr/bin/env node
// Builds every prebuilt platform package from one Linux x64 machine:
// `npm run build:platforms` (or `node scripts/platforms/build.js`).
//
//   --only linux-arm64-gnu,win32-x64-gnu   some platforms (default: all)
//   --from-git HEAD                        build a clean `git archive` of a
//                                          revision, not the working tree
//   --jobs N                               cargo -j (default 2)
//   --no-install                           never install missing tools
//   --packages-only                        write npm/<platform>/package.json
//                                          and README.md, build nothing
//   --native                               plain cargo, no zig: on a machine
//                                          of the platform itself (the macOS
//                                          CI runners, with Apple's linker)
//
// For each platform it builds the addon (crates/node, a cdylib) and the
// daemon (crates/daemon, bin ssehub) in release with cargo-zigbuild, which
// links with zig: an old glibc (2.17) for linux-*-gnu, musl, macOS (zig
// carries the libSystem stubs; no Apple SDK needed for these crates) and
// MinGW for Windows. It copies them, stripped, into npm/<platform>/ as
// ssehub.<platform>.node and ssehub-daemon(.exe), beside the package.json
// that `npm pack` / `npm publish` there uses.
//
// Rust's standard library for each target comes from, in order: a rustc
// that has it (rustup with `rustup target add`, as on CI; Debian's
// libstd-rust-web-dev:arm64 for aarch64-unknown-linux-gnu), else it is
// compiled from the std sources (`-Zbuild-std`, with RUSTC_BOOTSTRAP=1) of
// a rustc that has them (rustup's rust-src, or Debian's rust-web-src).
// Missing pieces are installed from the registries when we may (root with
// apt-get; pip): Debian's rustc-web, cargo-web, rust-web-src and
// libstd-rust-web-dev:arm64; PyPI's ziglang and cargo-zigbuild.
//
// Cargo builds in $CARGO_TARGET_DIR, else target/cross (never target/,
// so the dev build stays warm). Each build runs under `nice`.
'use strict'
const { spawnSync, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { TARGETS, byName } = require('./targets')

const ROOT = path.join(__dirname, '..', '..')
const VERSION = require(path.join(ROOT, 'package.json')).version

function arg(flag) {
  const i = process.argv.indexOf(flag)
  return i === -1 ? undefined : process.argv[i + 1]
}
const only = arg('--only')
const fromGit = arg('--from-git')
const jobs = arg('--jobs') || '2'
const mayInstall = !process.argv.includes('--no-install')
const native = process.argv.includes('--native')
const targets = only ? only.split(',').map((s) => byName(s.trim())) : TARGETS
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(process.env.CARGO_TARGET_DIR) : path.join(ROOT, 'target', 'cross')

function say(line) {
  process.stderr.write(`build:platforms: ${line}\n`)
}

function which(cmd, extraPath = '') {
  const dirs = (extraPath + path.delimiter + (process.env.PATH || '')).split(path.delimiter).filter(Boolean)
  for (const dir of dirs) {
    const file = path.join(dir, cmd)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return file
    } catch {}
  }
  return null
}

function run(cmd, args, opts = {}) {
  say(`$ ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts })
  if (r.error) throw r.error
  return r.status === 0
}

// ---- the package folders ------------------------------------------------

/** npm/<platform>/package.json and README.md, from the target table. */
function writePackage(t) {
  const dir = path.join(ROOT, 'npm', t.name)
  fs.mkdirSync(dir, { recursive: true })
  const pkg = {
    name: t.pkg,
    version: VERSION,
    description: `ssehub prebuilt binaries for ${t.title}: the native addon and the daemon`,
    main: t.addon,
    files: [t.addon, t.daemon, 'LICENSE'],
    os: [t.os],
    cpu: [t.cpu],
    ...(t.libc ? { libc: [t.libc] } : {}),
    license: 'MIT',
    repository: { type: 'git', url: 'git+https://github.com/ssehub/ssehub.git', directory: `npm/${t.name}` },
    homepage: 'https://github.com/ssehub/ssehub#readme',
    engines: { node: '>=18' },
  }
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n')
  fs.writeFileSync(
    path.join(dir, 'README.md'),
    `# ${t.pkg}\n\n` +
      `The prebuilt binaries of [ssehub](https://github.com/ssehub/ssehub#readme) for\n` +
      `${t.title}: the native addon (\`${t.addon}\`) and the\nstandalone daemon (\`${t.daemon}\`).\n` +
      `Installed automatically as an optional\n` +
      `dependency of \`ssehub\`; not used directly. \`npm run build:platforms\` in the\n` +
      `ssehub repository builds it here (\`scripts/platforms/build.js\`), so \`npm pack\`\n` +
      `in this folder makes the package (\`npm install\` there also copies the host's own\n` +
      `build into the host's folder).\n`
  )
}

// ---- the toolchain ------------------------------------------------------

function aptInstall(pkgs, { arm64 = false } = {}) {
  if (!mayInstall || !which('apt-get') || process.getuid?.() !== 0) return false
  if (arm64) {
    const foreign = execFileSync('dpkg', ['--print-foreign-architectures'], { encoding: 'utf8' })
    if (!foreign.split(/\s+/).includes('arm64')) run('dpkg', ['--add-architecture', 'arm64'])
  }
  run('apt-get', ['update', '-qq'])
  return run('apt-get', ['install', '-y', '-qq', ...pkgs], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
}

function pipInstall(pkgs) {
  if (!mayInstall) return false
  const py = which('python3') || which('python')
  if (!py) return false
  return run(py, ['-m', 'pip', 'install', '-q', ...pkgs]) || run(py, ['-m', 'pip', 'install', '-q', '--break-system-packages', ...pkgs])
}

/** cargo-zigbuild and zig (PyPI's ziglang, which cargo-zigbuild finds itself). */
function ensureZigbuild() {
  let bin = which('cargo-zigbuild')
  if (!bin) {
    say('cargo-zigbuild is missing: installing ziglang and cargo-zigbuild from PyPI')
    pipInstall(['ziglang', 'cargo-zigbuild'])
    const py = which('python3') || which('python')
    const scripts = py ? execFileSync(py, ['-c', 'import sysconfig;print(sysconfig.get_path("scripts"))'], { encoding: 'utf8' }).trim() : ''
    bin = which('cargo-zigbuild', scripts)
  }
  if (!bin) throw new Error('cargo-zigbuild is not installed and could not be (pip install ziglang cargo-zigbuild)')
  return bin
}

/** What a rustc offers: its version, sysroot, the targets whose std it has, and whether it has std sources. */
function probeRustc(rustc) {
  try {
    const version = execFileSync(rustc, ['--version'], { encoding: 'utf8' }).trim()
    const sysroot = execFileSync(rustc, ['--print', 'sysroot'], { encoding: 'utf8' }).trim()
    const hasStd = (triple) => fs.existsSync(path.join(sysroot, 'lib', 'rustlib', triple, 'lib'))
    const src = fs.existsSync(path.join(sysroot, 'lib', 'rustlib', 'src', 'rust', 'library', 'std'))
    return { rustc, version, sysroot, hasStd, src }
  } catch {
    return null
  }
}

function rustcCandidates() {
  const list = [process.env.SSEHUB_RUSTC, which('rustc'), '/usr/bin/rustc'].filter(Boolean)
  return [...new Set(list)].map(probeRustc).filter(Boolean)
}

/**
 * The rustc for a target, and whether std is built from source:
 * { rustc, cargo, buildStd }. Installs Debian's rustc-web pieces if needed.
 */
function toolchainFor(t) {
  const pick = () => {
    const all = rustcCandidates()
    const ready = all.find((c) => c.hasStd(t.rust))
    if (ready) return { ...ready, buildStd: false }
    const src = all.find((c) => c.src)
    if (src) return { ...src, buildStd: true }
    return null
  }
  let chosen = pick()
  if (!chosen || (chosen.buildStd && t.rust === 'aarch64-unknown-linux-gnu')) {
    const pkgs = ['rustc-web', 'cargo-web', 'rust-web-src']
    if (t.rust === 'aarch64-unknown-linux-gnu') pkgs.push('libstd-rust-web-dev:arm64')
    if (!fs.existsSync('/usr/bin/rustc') || t.rust === 'aarch64-unknown-linux-gnu' || !probeRustc('/usr/bin/rustc')?.src) {
      say(`no rustc here has std for ${t.rust} or its sources: installing Debian's ${pkgs.join(' ')}`)
      aptInstall(pkgs, { arm64: t.rust.startsWith('aarch64-unknown-linux-gnu') })
    }
    chosen = pick() || chosen
  }
  if (!chosen) {
    throw new Error(`no Rust standard library for ${t.rust}: \`rustup target add ${t.rust}\`, or rust-src (rustup component add rust-src / Debian rust-web-src)`)
  }
  const dir = path.dirname(chosen.rustc)
  const cargo = fs.existsSync(path.join(dir, 'cargo')) ? path.join(dir, 'cargo') : which('cargo')
  return { rustc: chosen.rustc, version: chosen.version, cargo, buildStd: chosen.buildStd }
}

// ---- the build ------------------------------------------------------------

/**
 * What the binaries are built from, written beside them as .built-from
 * (git-ignored): the commit, and whether the working tree differed. The
 * platform suite runs them with the JS of that commit.
 */
function provenance() {
  const git = (args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim()
  try {
    if (fromGit) return { commit: git(['rev-parse', `${fromGit}^{commit}`]), dirty: false }
    return { commit: git(['rev-parse', 'HEAD']), dirty: git(['status', '--porcelain', '--', 'crates', 'Cargo.toml', 'Cargo.lock']) !== '' }
  } catch {
    return { commit: null, dirty: true }
  }
}

/** The source tree: the working tree, or a clean export of a revision. */
function sourceTree() {
  if (!fromGit) return ROOT
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-src-'))
  say(`exporting ${fromGit} into ${dir}`)
  const tar = execFileSync('git', ['archive', '--format=tar', fromGit], { cwd: ROOT, maxBuffer: 1 << 30 })
  execFileSync('tar', ['-x', '-C', dir], { input: tar })
  return dir
}

/**
 * napi-build insists on a libnode.dll for windows-gnu (it links -lnode).
 * With napi's dyn-symbols feature nothing is taken from it: N-API is looked
 * up in the host process (node.exe exports it) when the addon loads. So
 * an empty stand-in does: a libnode.dll for the check and an empty
 * libnode.a for the linker. The folder also holds empty libssp.a and
 * libssp_nonshared.a: rustc's windows-gnu target asks for GCC's
 * stack-protector libraries, which zig's MinGW does not have and no Rust
 * code here uses (the link would name any symbol missing). It is on the
 * link path of both crates (napi-build adds it for the addon; RUSTFLAGS
 * for the daemon).
 */
function libnodeStub() {
  const dir = path.join(targetDir, 'libnode-stub')
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'libnode.dll'), '')
  for (const lib of ['libnode.a', 'libssp.a', 'libssp_nonshared.a']) fs.writeFileSync(path.join(dir, lib), '!<arch>\n')
  return dir
}

function envKey(triple) {
  return triple.toUpperCase().replace(/-/g, '_')
}

function llvmStrip() {
  for (const name of ['llvm-strip', 'llvm-strip-19', 'llvm-strip-18', 'llvm-strip-17', 'llvm-strip-16', 'llvm-strip-15', 'llvm-strip-14']) {
    const found = which(name)
    if (found) return found
  }
  return null
}

function build(t, src, zigbuild, built) {
  const tc = toolchainFor(t)
  say(`${t.name}: ${native ? `${t.rust} (native)` : t.zig} with ${tc.version}${tc.buildStd ? ' (std built from source: -Zbuild-std)' : ''}`)
  const env = {
    ...process.env,
    PATH: path.dirname(tc.cargo) + path.delimiter + process.env.PATH,
    RUSTC: tc.rustc,
    CARGO_TARGET_DIR: targetDir,
    // Strip at link time (ELF, PE; natively on macOS rustc runs strip -x
    // on the dylib); a cross-built Mach-O is stripped after, below.
    CARGO_PROFILE_RELEASE_STRIP: t.os === 'darwin' && !native ? 'none' : 'symbols',
  }
  delete env.RUSTFLAGS
  const key = envKey(t.rust)
  // musl targets default to a static C runtime, which forbids a cdylib; Node
  // on Alpine loads the addon against the system's musl (as napi-rs does).
  if (t.libc === 'musl') env[`CARGO_TARGET_${key}_RUSTFLAGS`] = '-C target-feature=-crt-static'
  if (t.os === 'win32') {
    env.LIBNODE_PATH = libnodeStub()
    env[`CARGO_TARGET_${key}_RUSTFLAGS`] = `-L native=${env.LIBNODE_PATH}`
  }
  // No Apple SDK here: the frameworks the code links (Security and
  // CoreFoundation, for the system's root certificates) as link stubs
  // (apple-stubs.js); a macOS machine has the SDK's.
  if (t.os === 'darwin' && !native) {
    const { writeStubs } = require('./apple-stubs')
    const stubs = writeStubs({ src, cargo: tc.cargo, env, triple: t.rust, out: path.join(targetDir, 'apple-stubs', t.rust) })
    say(`${t.name}: framework link stubs in ${stubs.dir} (${Object.entries(stubs.counts).map(([k, v]) => `${k}: ${v} symbols`).join(', ')})`)
    env[`CARGO_TARGET_${key}_RUSTFLAGS`] = `-C link-arg=-F${stubs.dir}`
  }
  // The oldest macOS the files declare (LC_BUILD_VERSION): rustc and
  // cargo-zigbuild pass it to zig, whose own default is its newest macOS.
  if (t.os === 'darwin') env.MACOSX_DEPLOYMENT_TARGET = t.macos
  const extra = []
  if (tc.buildStd) {
    env.RUSTC_BOOTSTRAP = '1'
    extra.push('-Zbuild-std=std,panic_abort')
  }
  const nice = which('nice') ? ['nice', '-n', '10'] : []
  const crates = [['-p', 'ssehub-node'], ['-p', 'ssehub-daemon', '--bin', 'ssehub']]
  for (const pkg of crates) {
    const args = ['build', '--release', '-j', jobs, '--target', native ? t.rust : t.zig, ...pkg, ...extra]
    const tool = native ? tc.cargo : zigbuild
    const ok = nice.length ? run(nice[0], [...nice.slice(1), tool, ...args], { cwd: src, env }) : run(tool, args, { cwd: src, env })
    if (!ok) return false
  }
  const out = path.join(targetDir, t.rust, 'release')
  const dir = path.join(ROOT, 'npm', t.name)
  writePackage(t)
  const addon = path.join(dir, t.addon)
  const daemon = path.join(dir, t.daemon)
  fs.copyFileSync(path.join(out, t.dylib), addon)
  fs.copyFileSync(path.join(out, t.daemonBuilt), daemon)
  fs.chmodSync(daemon, 0o755)
  fs.copyFileSync(path.join(ROOT, 'LICENSE'), path.join(dir, 'LICENSE'))
  fs.writeFileSync(path.join(dir, '.built-from'), JSON.stringify({ ...built, target: t.zig, rustc: tc.version, date: new Date().toISOString() }) + '\n')
  if (t.os === 'darwin' && !native) {
    const strip = llvmStrip()
    if (!strip && aptInstall(['llvm'])) return build(t, src, zigbuild, built)
    if (!strip) throw new Error('llvm-strip is needed to strip the Mach-O files (Debian: apt-get install llvm)')
    // -x: the local symbols only; the addon's exports (napi_register_module_v1) stay.
    run(strip, ['-x', addon])
    run(strip, ['-x', daemon])
  }
  return true
}

function mb(file) {
  return (fs.statSync(file).size / 1e6).toFixed(1) + ' MB'
}

function main() {
  if (process.argv.includes('--packages-only')) {
    for (const t of targets) writePackage(t)
    say(`wrote npm/<platform>/package.json and README.md for ${targets.map((t) => t.name).join(', ')}`)
    return
  }
  const zigbuild = native ? null : ensureZigbuild()
  const built = provenance()
  const src = sourceTree()
  const results = []
  for (const t of targets) {
    const started = Date.now()
    let ok = false
    try {
      ok = build(t, src, zigbuild, built)
    } catch (err) {
      say(`${t.name}: ${err.message}`)
    }
    const secs = Math.round((Date.now() - started) / 1000)
    results.push({ t, ok, secs })
    say(`${t.name}: ${ok ? 'built' : 'FAILED'} in ${secs} s`)
  }
  if (src !== ROOT) fs.rmSync(src, { recursive: true, force: true })
  for (const { t, ok, secs } of results) {
    const dir = path.join(ROOT, 'npm', t.name)
    const sizes = ok ? `${t.addon} ${mb(path.join(dir, t.addon))}, ` + `${t.daemon} ${mb(path.join(dir, t.daemon))}` : 'not built'
    console.log(`${ok ? 'ok    ' : 'FAILED'} ${t.name.padEnd(17)} ${String(secs).padStart(5)} s  ${sizes}`)
  }
  if (results.some((r) => !r.ok)) process.exitCode = 1
}

main()
