'use strict'
// What the platform suite shares: the platform table, where each
// package's files are, which were built, and running a platform's
// programs (every child is stopped after the file's tests, whatever
// happens, and so is wine's server).
const { after } = require('node:test')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { TARGETS } = require('../../scripts/platforms/targets')

const ROOT = path.join(__dirname, '..', '..')

function dirOf(t) {
  return path.join(ROOT, 'npm', t.name)
}

/** The package's binaries, if both are there. */
function artifacts(t) {
  const addon = path.join(dirOf(t), t.addon)
  const daemon = path.join(dirOf(t), t.daemon)
  return fs.existsSync(addon) && fs.existsSync(daemon) ? { addon, daemon } : null
}

const notBuilt = (t) => `npm/${t.name}/ has no ${t.addon} and ${t.daemon}: run \`npm run build:platforms -- --only ${t.name}\``

// Emulated Node.js starts slowly (qemu: seconds; wine: its first start).
const SLOW_MS = 120000

const children = new Set()
const wineservers = new Set()
after(() => {
  for (const child of children) stop(child)
  for (const [server, env] of wineservers) spawnSync(server, ['-k'], { env, stdio: 'ignore' })
})

/** Stops rt's wineserver (if it runs under wine) after the file's tests. */
function wineserverToStop(rt) {
  if (rt.wineserver) wineservers.add([rt.wineserver, rt.env])
}

function stop(child) {
  if (child.exitCode === null && child.signalCode === null) {
    try {
      child.kill('SIGKILL')
    } catch {}
  }
  children.delete(child)
}

/** Runs argv with stdout and stderr into a file (wine's Node.js cannot write to a pipe). */
function launch(argv, { cwd, env, log }) {
  const fd = fs.openSync(log, 'w')
  const child = spawn(argv[0], argv.slice(1), { cwd, env, stdio: ['ignore', fd, fd] })
  fs.closeSync(fd)
  children.add(child)
  child.on('exit', () => children.delete(child))
  child.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  return child
}


/** GET http://127.0.0.1:port/path until the response ends (or `until` the text so far). */
function fetchText(port, target, timeoutMs = SLOW_MS) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: target, timeout: timeoutMs, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)))
    req.on('error', reject)
  })
}

/** Waits until `file` matches `re` (or the child exits, or the time is up). */
async function waitForLog(file, re, child, timeoutMs = SLOW_MS) {
  const end = Date.now() + timeoutMs
  for (;;) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
    const m = re.exec(text)
    if (m) return m
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before ${re}: ${text}`)
    if (Date.now() > end) throw new Error(`no ${re} in ${timeoutMs} ms: ${text}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

module.exports = { ROOT, TARGETS, SLOW_MS, dirOf, artifacts, notBuilt, launch, stop, fetchText, waitForLog, wineserverToStop }
