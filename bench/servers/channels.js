'use strict'
// Driver for the ssehub daemon in SSE-Server mode:
//   ssehub channels -n -p PORT -P CTLPORT   (the daemon binary itself)
// It starts the daemon, publishes by writing `bench = <data>` lines to its
// text control port, and reports the daemon's pid so that the benchmark
// measures the daemon's CPU and memory, not this driver's. Clients GET `/`
// (every channel). Skips cleanly while `ssehub channels` does not exist.

const { spawn, spawnSync } = require('node:child_process')
const net = require('node:net')
const { reply, serveCommands } = require('./common')

// SSEHUB_BENCH_BIN: another daemon to drive: a binary, or a `.js` launcher
// run by node whose own process is the daemon (an older build, a mock).
const BIN = process.env.SSEHUB_BENCH_BIN || require('../../lib/platform').daemonBinaryPath()
const command = (args) => (BIN.endsWith('.js') ? [process.execPath, [BIN, ...args]] : [BIN, args])
const CHANNEL = 'bench'

/** Null if `ssehub channels` runs here, else why not. */
function unavailableReason() {
  const probe = spawnSync(...command(['channels', '--help']), { encoding: 'utf8', timeout: 10_000 })
  if (probe.error) return `cannot run ${BIN}: ${probe.error.message}`
  if (probe.status === 0) return null
  const said = `${probe.stderr || ''}${probe.stdout || ''}`.trim().split('\n')[0]
  return `\`ssehub channels\` is not available yet (exit ${probe.status}: ${said})`
}

/** A port that is free right now (the daemon binds it a moment later). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

function connectWithRetry(port, deadlineMs) {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = net.connect({ host: '127.0.0.1', port })
      socket.once('connect', () => resolve(socket))
      socket.once('error', (err) => {
        if (Date.now() > deadlineMs) return reject(err)
        setTimeout(attempt, 50)
      })
    }
    attempt()
  })
}

function startDaemon(port, controlPort) {
  // No client limit: the idle phase holds 19,000 (the open-file limit is the bound).
  const args = ['channels', '-n', '-p', String(port), '-P', String(controlPort), '--max-clients', '0']
  const daemon = spawn(...command(args), { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  daemon.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-2000)))
  daemon.lastWords = () => stderr.trim()
  process.on('exit', () => daemon.kill('SIGKILL'))
  return daemon
}

async function main() {
  const why = unavailableReason()
  if (why) return reply({ skip: why })
  const [port, controlPort] = [await freePort(), await freePort()]
  const daemon = startDaemon(port, controlPort)
  daemon.once('exit', (code, signal) => {
    reply({ error: `daemon exited (${signal || code}): ${daemon.lastWords()}` })
    process.exit(1)
  })
  const deadline = Date.now() + 15_000
  const control = await connectWithRetry(controlPort, deadline)
  control.setNoDelay(true)
  await connectWithRetry(port, deadline).then((probe) => probe.destroy())
  const adapter = {
    broadcast(data) {
      // The daemon reads lines; Node buffers what the socket cannot take yet.
      control.write(`${CHANNEL} = ${data}\n`)
    },
    clients: () => null,
    stop() {
      daemon.removeAllListeners('exit')
      daemon.kill('SIGTERM')
    },
  }
  reply({ ready: true, port, path: '/', pid: daemon.pid, driverPid: process.pid })
  serveCommands(adapter)
}

main().catch((err) => {
  reply({ error: String((err && err.stack) || err) })
  process.exit(1)
})
