'use strict'
// Helpers for the daemon integration tests: start the daemon binary
// (`ssehub <mode>`) as an operator would, talk to it over raw sockets,
// decode chunked bodies. launcher.test.js covers `node bin/ssehub.js`.
const { spawn } = require('node:child_process')
const net = require('node:net')
const tls = require('node:tls')
const path = require('node:path')

const ROOT = path.join(__dirname, '..', '..')
const { daemonBinaryPath } = require('../../lib/platform')

const BIN = daemonBinaryPath()

/** Starts a daemon; resolves once `ready` (a regex) appears on stdout or stderr. */
function start(args, { env = {}, ready, timeout = 10000, via } = {}) {
  // `via`: a command line to start the daemon through (a shell that sets
  // limits first); the daemon's arguments follow it.
  const [cmd, ...pre] = via || [BIN]
  const child = spawn(cmd, [...pre, ...args], {
    cwd: ROOT,
    // The daemon stops if this test process dies without stopping it.
    env: { ...process.env, SSEHUB_THREADS: '2', SSEHUB_LAUNCHER_PID: String(process.pid), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const d = { child, stdout: '', stderr: '', exited: null }
  const waiters = []
  const check = () => {
    for (const w of waiters.slice()) {
      const m = (d.stdout + d.stderr).match(w.re)
      if (m) {
        waiters.splice(waiters.indexOf(w), 1)
        clearTimeout(w.timer)
        w.resolve(m)
      }
    }
  }
  child.stdout.on('data', (b) => { d.stdout += b; check() })
  child.stderr.on('data', (b) => { d.stderr += b; check() })
  d.done = new Promise((resolve) => child.on('exit', (code, signal) => {
    d.exited = { code, signal }
    for (const w of waiters.splice(0)) { clearTimeout(w.timer); w.reject(new Error(`daemon exited (${code}) before ${w.re}\n${d.stdout}\n${d.stderr}`)) }
    resolve(d.exited)
  }))
  /** Resolves with the match of `re` in the output so far or to come. */
  d.waitFor = (re, ms = timeout) => new Promise((resolve, reject) => {
    const m = (d.stdout + d.stderr).match(re)
    if (m) return resolve(m)
    if (d.exited) return reject(new Error(`daemon exited before ${re}\n${d.stdout}\n${d.stderr}`))
    const w = { re, resolve, reject }
    w.timer = setTimeout(() => {
      waiters.splice(waiters.indexOf(w), 1)
      reject(new Error(`timeout waiting for ${re}\nstdout: ${d.stdout}\nstderr: ${d.stderr}`))
    }, ms)
    waiters.push(w)
  })
  d.stop = async () => {
    if (!d.exited) child.kill('SIGKILL')
    await d.done
  }
  d.ready = ready ? d.waitFor(ready) : Promise.resolve(null)
  return d
}

/** Runs a daemon to completion (for flag errors); resolves {code, stdout, stderr}. */
function runToEnd(args, { env = {}, timeout = 10000 } = {}) {
  const d = start(args, { env })
  const timer = setTimeout(() => d.child.kill('SIGKILL'), timeout)
  return d.done.then((ex) => { clearTimeout(timer); return { code: ex.code, stdout: d.stdout, stderr: d.stderr } })
}

/**
 * Sends raw bytes to a port and collects the reply until the peer closes,
 * `until(text)` is true, or `timeout` ms pass. Resolves the text (latin1).
 */
function raw(port, request, { until, timeout = 5000, host = '127.0.0.1', secure = false } = {}) {
  return new Promise((resolve, reject) => {
    let buf = ''
    let settled = false
    const sock = secure
      ? tls.connect({ port, host, rejectUnauthorized: false })
      : net.connect({ port, host })
    const finish = () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      sock.destroy()
      resolve(buf)
    }
    const timer = setTimeout(finish, timeout)
    sock.on(secure ? 'secureConnect' : 'connect', () => { if (request) sock.write(request) })
    sock.on('data', (b) => { buf += b.toString('latin1'); if (until && until(buf)) finish() })
    sock.on('end', finish)
    sock.on('close', finish)
    sock.on('error', (e) => { if (!settled) { settled = true; clearTimeout(timer); buf ? resolve(buf) : reject(e) } })
  })
}

/** An open socket whose received text is in `.text`; `.waitFor(re)`. */
function openStream(port, request, { host = '127.0.0.1', secure = false } = {}) {
  const sock = secure
    ? tls.connect({ port, host, rejectUnauthorized: false })
    : net.connect({ port, host })
  const s = { sock, text: '', closed: false }
  const waiters = []
  const check = () => {
    for (const w of waiters.slice()) {
      const m = s.text.match(w.re)
      if (m || (s.closed && w.orClose)) { waiters.splice(waiters.indexOf(w), 1); clearTimeout(w.timer); w.resolve(m) }
    }
  }
  sock.on(secure ? 'secureConnect' : 'connect', () => sock.write(request))
  sock.on('data', (b) => { s.text += b.toString('latin1'); check() })
  sock.on('close', () => { s.closed = true; for (const w of waiters) w.orClose = true; check() })
  sock.on('error', () => {})
  s.waitFor = (re, ms = 5000) => new Promise((resolve, reject) => {
    const w = { re, resolve, orClose: false }
    w.timer = setTimeout(() => { waiters.splice(waiters.indexOf(w), 1); reject(new Error(`timeout waiting for ${re} in ${JSON.stringify(s.text)}`)) }, ms)
    waiters.push(w)
    check()
  })
  s.closedPromise = new Promise((resolve) => sock.on('close', resolve))
  s.close = () => sock.destroy()
  return s
}

/** Splits a raw HTTP response into head and body. */
function split(resp) {
  const at = resp.indexOf('\r\n\r\n')
  return at < 0 ? { head: resp, body: '' } : { head: resp.slice(0, at + 4), body: resp.slice(at + 4) }
}

/** Decodes a chunked body; `complete` tells whether the terminator came. */
function dechunk(body) {
  let out = ''
  let rest = body
  for (;;) {
    const nl = rest.indexOf('\r\n')
    if (nl < 0) return { data: out, complete: false }
    const size = parseInt(rest.slice(0, nl), 16)
    if (Number.isNaN(size)) throw new Error(`bad chunk size in ${JSON.stringify(rest.slice(0, 20))}`)
    if (size === 0) return { data: out, complete: rest.slice(nl + 2, nl + 4) === '\r\n' }
    if (rest.length < nl + 2 + size + 2) return { data: out, complete: false }
    out += rest.slice(nl + 2, nl + 2 + size)
    rest = rest.slice(nl + 2 + size + 2)
  }
}

/** The head with the Date value masked. */
const maskDate = (head) => head.replace(/^Date: .*\r\n/m, 'Date: X\r\n')

const chunkedDone = (text) => text.includes('\r\n0\r\n\r\n')

module.exports = { start, runToEnd, raw, openStream, split, dechunk, maskDate, chunkedDone, ROOT }
