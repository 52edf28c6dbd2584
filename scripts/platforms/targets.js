'use strict'
// The prebuilt platforms: one npm package each (npm/<name>/), napi-rs
// naming. Shared by build.js, measure.js, the platform test suite and the
// release workflow's matrix (kept in step by a test).
//
// - name:    the napi-rs platform name: the package is @ssehub/<name>, the
//            addon ssehub.<name>.node (what lib/platform.js asks for).
// - rust:    the Rust target triple.
// - zig:     the target cargo-zigbuild links for (a glibc floor is a
//            suffix: x86_64-unknown-linux-gnu.2.17).
// - os/cpu/libc: the package.json fields npm picks the package by.
// - glibc:   the glibc floor the binaries are built for (checked from their
//            GLIBC_ symbol versions by the platform suite).
// - macos:   the oldest macOS they declare (LC_BUILD_VERSION minos): Rust's
//            defaults for the two targets.
// - exe:     the daemon binary's suffix inside the package.
// - dylib:   the file cargo leaves for the addon crate.
const TARGETS = [
  {
    name: 'linux-x64-gnu',
    rust: 'x86_64-unknown-linux-gnu',
    zig: 'x86_64-unknown-linux-gnu.2.17',
    os: 'linux',
    cpu: 'x64',
    libc: 'glibc',
    glibc: '2.17',
    title: 'Linux x64 (glibc 2.17 or newer)',
  },
  {
    name: 'linux-arm64-gnu',
    rust: 'aarch64-unknown-linux-gnu',
    zig: 'aarch64-unknown-linux-gnu.2.17',
    os: 'linux',
    cpu: 'arm64',
    libc: 'glibc',
    glibc: '2.17',
    title: 'Linux arm64 (glibc 2.17 or newer)',
  },
  {
    name: 'linux-x64-musl',
    rust: 'x86_64-unknown-linux-musl',
    zig: 'x86_64-unknown-linux-musl',
    os: 'linux',
    cpu: 'x64',
    libc: 'musl',
    title: 'Linux x64 (musl: Alpine)',
  },
  {
    name: 'linux-arm64-musl',
    rust: 'aarch64-unknown-linux-musl',
    zig: 'aarch64-unknown-linux-musl',
    os: 'linux',
    cpu: 'arm64',
    libc: 'musl',
    title: 'Linux arm64 (musl: Alpine)',
  },
  {
    name: 'darwin-x64',
    rust: 'x86_64-apple-darwin',
    zig: 'x86_64-apple-darwin',
    os: 'darwin',
    cpu: 'x64',
    macos: '10.12',
    title: 'macOS x64 (Intel)',
  },
  {
    name: 'darwin-arm64',
    rust: 'aarch64-apple-darwin',
    zig: 'aarch64-apple-darwin',
    os: 'darwin',
    cpu: 'arm64',
    macos: '11.0',
    title: 'macOS arm64 (Apple silicon)',
  },
  {
    name: 'win32-x64-gnu',
    rust: 'x86_64-pc-windows-gnu',
    zig: 'x86_64-pc-windows-gnu',
    os: 'win32',
    cpu: 'x64',
    title: 'Windows x64 (MinGW build; runs on any Windows Node.js)',
  },
]

for (const t of TARGETS) {
  t.exe = t.os === 'win32' ? '.exe' : ''
  t.addon = `ssehub.${t.name}.node`
  t.daemon = `ssehub-daemon${t.exe}`
  t.dylib = t.os === 'win32' ? 'ssehub_node.dll' : t.os === 'darwin' ? 'libssehub_node.dylib' : 'libssehub_node.so'
  t.daemonBuilt = `ssehub${t.exe}`
  t.pkg = `@ssehub/${t.name}`
}

function byName(name) {
  const t = TARGETS.find((x) => x.name === name || x.rust === name)
  if (!t) throw new Error(`unknown platform ${name}; known: ${TARGETS.map((x) => x.name).join(', ')}`)
  return t
}

module.exports = { TARGETS, byName }
