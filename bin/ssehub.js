#!/usr/bin/env node
// `ssehub <mode> [flags]`: runs the daemon binary (Rust, built with the
// addon or shipped in the platform package). Node only launches it and is
// never in the data path: the child gets this terminal, every signal that
// stops it is passed on, and its exit status becomes ours.
'use strict'
const { spawn } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { daemonBinaryPath } = require('../lib/platform')

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

if (process.platform === 'win32') {
  // Windows has no signals to pass on: Ctrl+C and Ctrl+Break reach every
  // process of the console, the daemon too, which drains and exits; we
  // wait for it (child.kill would end it at once, with no drain). The
  // daemon dies with us all the same: libuv puts it in our job object.
  for (const signal of ['SIGINT', 'SIGBREAK']) process.on(signal, () => {})
} else {
  // npm/npx, a supervisor or a test may signal only this process: without
  // forwarding, the daemon would be left running on its own.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(signal, () => child.kill(signal))
  }
}

// npx runs us as npm -> /bin/sh -c -> node (this) -> daemon. A SIGTERM to
// npm reaches the shell only (dash forks rather than exec), so we would be
// left running with the daemon. Watch for the process that started us going
// away instead: our parent changing (we were reparented), or, under npm,
// the shell's parent changing (npm died, the shell lives on).
const STARTED_BY = { parent: process.ppid, grandparent: grandparentToWatch() }
const watch = setInterval(() => {
  if (!orphaned()) return
  clearInterval(watch)
  child.kill('SIGTERM')
  // A daemon that does not stop in time is ended; we exit with it.
  setTimeout(() => child.kill('SIGKILL'), 1500).unref()
}, 200)
watch.unref()

/** Whether the process that started us (or, under npm, its parent) is gone. */
function orphaned() {
  if (process.ppid !== STARTED_BY.parent) return true
  return STARTED_BY.grandparent !== null && parentOf(STARTED_BY.parent) !== STARTED_BY.grandparent
}

/**
 * Our parent's parent, when it is worth watching: on Linux, started by npm
 * (npm_lifecycle_event, npm_command) through a shell. Not when npm is our
 * parent itself (a shell that execs): npm passes signals on to us then,
 * and its own parent (a login shell) may well go while it runs on.
 */
function grandparentToWatch() {
  if (process.platform !== 'linux') return null
  if (!process.env.npm_lifecycle_event && !process.env.npm_command) return null
  if (!isShell(process.ppid)) return null
  return parentOf(process.ppid)
}

/** The parent of `pid` from /proc/<pid>/stat; null once it is gone. */
function parentOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1')
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return null
  }
}

function isShell(pid) {
  try {
    const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0')[0]
    return /^(sh|dash|bash|ash|ksh|mksh|zsh)$/.test(path.basename(argv0))
  } catch {
    return false
  }
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
