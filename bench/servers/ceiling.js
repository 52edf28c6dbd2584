'use strict'
// The ceiling: the least server that delivers the same bytes as the
// ssehub servers (same response head, `:ok` chunk and `data: ...\n\n`
// events in HTTP chunks), written in Rust in bench/ceiling/. It frames each
// event once and writes every client's queue with one vectored write: no
// hub, no channels, no JS. The suite shows each server's deliveries/s as a
// share of it.
//
// The binary speaks the control protocol itself (see common.js). This
// wrapper builds it (cargo, a no-op when up to date) and runs it with this
// process's stdin/stdout/stderr, so the runner talks to the binary
// directly, and the pid in its `ready` line is the binary's: the process
// that does the work, the one to sample (`driverPid` is this wrapper).
//
// As a module: `ensureCeiling()` builds it, for a runner that wants the
// build done before it starts timing server start-ups.

const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const CEILING_DIR = path.join(__dirname, '..', 'ceiling')
const CEILING_BIN = path.join(CEILING_DIR, 'target', 'release', 'ceiling')

/**
 * Builds the ceiling server (a no-op when it is up to date). Cargo's own
 * output goes to stderr, never to stdout (the JSON-lines channel). Throws
 * if it cannot build and no earlier build exists.
 */
function ensureCeiling() {
  try {
    execFileSync('cargo', ['build', '--release', '--quiet', '--manifest-path', path.join(CEILING_DIR, 'Cargo.toml')], {
      stdio: ['ignore', 2, 2],
    })
  } catch (err) {
    if (!fs.existsSync(CEILING_BIN)) throw new Error(`cannot build the ceiling server (${err.message}); is cargo installed?`)
    process.stderr.write('ceiling: cargo failed; using the existing build\n')
  }
  return CEILING_BIN
}

function main() {
  let bin
  try {
    bin = ensureCeiling()
  } catch (err) {
    process.stdout.write(JSON.stringify({ skip: err.message }) + '\n')
    return
  }
  const server = spawn(bin, [], { stdio: 'inherit' })
  server.once('error', (err) => {
    process.stdout.write(JSON.stringify({ error: `cannot start ${bin}: ${err.message}` }) + '\n')
    process.exit(1)
  })
  server.once('exit', (code, signal) => process.exit(signal ? 0 : code))
  // The server never outlives the wrapper (the runner stops the wrapper
  // with SIGTERM); it is reaped here, not left to whoever adopts orphans.
  process.on('exit', () => server.kill('SIGKILL'))
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(signal, () => {
      server.kill('SIGKILL')
      setTimeout(() => process.exit(0), 1000).unref()
    })
  }
}

if (require.main === module) main()

module.exports = { ensureCeiling, CEILING_BIN }
