#!/usr/bin/env node
// `ssehub <mode> [flags]`: starts the Rust daemon. Node only launches it:
// the server runs on the addon's own threads, Node is not in the data path.
'use strict'
const { spawn } = require('node:child_process')
const { runDaemon } = require('../binding')

const args = process.argv.slice(2)

// SSE-Server (the `channels` mode) daemonizes unless -n is given. Forking a
// running Node process is unsafe, so the launcher starts a detached copy of
// itself in the foreground mode instead, and reports its pid as the original.
function wantsBackground(argv) {
  if (argv[0] !== 'channels') return false
  const rest = argv.slice(1)
  const help = rest.some((a) => a === '-h' || a === '--help')
  return !help && !rest.some((a) => a === '-n' || a === '--nodaemon')
}

if (wantsBackground(args)) {
  const child = spawn(process.execPath, [__filename, ...args, '-n', '--background'], {
    detached: true,
    stdio: 'ignore',
  })
  child.unref()
  console.log(`Background process started, process id ${child.pid}`)
  process.exit(0)
}

process.exitCode = runDaemon(args)
