#!/usr/bin/env node
// `ssehub <mode> [flags]`: runs the daemon binary (Rust, built with the
// addon or shipped in the platform package). Node only launches it and is
// never in the data path: the child gets this terminal, every signal that
// stops it is passed on, and its exit status becomes ours.
'use strict'
const { spawn } = require('node:child_process')
const { daemonBinaryPath } = require('../scripts/platform')

let binary
try {
  binary = daemonBinaryPath()
} catch (err) {
  console.error(err.message)
  process.exit(71)
}

const child = spawn(binary, process.argv.slice(2), {
  stdio: 'inherit',
  // The daemon stops when we die, even of a SIGKILL we cannot pass on.
  env: { ...process.env, SSEHUB_LAUNCHER_PID: String(process.pid) },
})

// npm/npx, a supervisor or a test may signal only this process: without
// forwarding, the daemon would be left running on its own.
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal))
}

child.on('error', (err) => {
  console.error(`ssehub: cannot start the daemon ${binary}: ${err.message}`)
  process.exit(71)
})

child.on('exit', (code, signal) => {
  if (signal) {
    // Die of the same signal, so our parent sees what the daemon saw.
    process.removeAllListeners(signal)
    process.kill(process.pid, signal)
    return
  }
  process.exit(code)
})
