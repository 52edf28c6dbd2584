'use strict'
// Helpers for the reliability scripts in tests/: the loadgen client (built
// on demand), the addon or a daemon as the server under test, and the
// server's RSS and open descriptors read from /proc.
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')
const { spawn, execFileSync } = require('node:child_process')

const ROOT = path.join(__dirname, '..')
const LOADGEN_DIR = path.join(ROOT, 'bench', 'loadgen')
const LOADGEN = path.join(LOADGEN_DIR, 'target', 'release', 'loadgen')

/** Builds loadgen (release) unless it is up to date. */
function buildLoadgen() {
  execFileSync('cargo', ['build', '--release', '--quiet', '--manifest-path', path.join(LOADGEN_DIR, 'Cargo.toml')], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  return LOADGEN
}

/**
 * Starts loadgen in --control mode; `.cmd(line)` sends a command and
 * `.next(pred)` resolves with the next JSON report matching `pred`.
 */
function loadgen(args) {
  const child = spawn(LOADGEN, ['--control', ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
  const reports = []
  const waiters = []
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    let report
    try { report = JSON.parse(line) } catch { return }
    const w = waiters.find((x) => x.pred(report))
    if (w) { waiters.splice(waiters.indexOf(w), 1); w.resolve(report) } else reports.push(report)
  })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  return {
    child,
    cmd: (line) => child.stdin.write(line + '\n'),
    next: (pred, ms = 120000) => new Promise((resolve, reject) => {
      const at = reports.findIndex(pred)
      if (at >= 0) return resolve(reports.splice(at, 1)[0])
      const w = { pred, resolve }
      waiters.push(w)
      setTimeout(() => reject(new Error('loadgen report timed out')), ms).unref()
    }),
    quit: async () => { child.stdin.end('quit\n'); await exited },
  }
}

/** Opens `count` connections and resolves with the connect report. */
async function connect(gen, count) {
  gen.cmd(`connect ${count}`)
  return gen.next((r) => r.phase === 'connect' && r.requested === count)
}

/** Resident memory of a process in bytes. */
function rss(pid = process.pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/)
  return Number(m[1]) * 1024
}

/** Open descriptors of a process. */
function fds(pid = process.pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length
}

/** Event data loadgen understands: `t=<unix µs> n=<seq> ` padded to `size`. */
function stamped(seq, size) {
  const head = `t=${Math.round((performance.timeOrigin + performance.now()) * 1000)} n=${seq} `
  return head + 'x'.repeat(Math.max(0, size - head.length))
}

/** A free loopback port (bound, then released for a daemon to take). */
function freePort() {
  const net = require('node:net')
  return new Promise((resolve, reject) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
    srv.on('error', reject)
  })
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function until(fn, ms, what) {
  const deadline = Date.now() + ms
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** Fails the script with a message (exit 1) unless `ok`. */
function check(ok, message) {
  if (ok) {
    console.log(`ok - ${message}`)
    return
  }
  console.log(`not ok - ${message}`)
  process.exitCode = 1
}

module.exports = { ROOT, freePort, buildLoadgen, loadgen, connect, rss, fds, stamped, sleep, until, check }
