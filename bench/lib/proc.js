'use strict'
// Child processes for the benchmark: spawned with a JSON-lines channel,
// all killed when the suite exits (normally, on error or on a signal),
// and sampled through /proc for CPU time and memory.

const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const readline = require('node:readline')

/** Every process the suite started (or was told about), to kill on exit. */
const owned = new Set()

function killOwned() {
  for (const pid of owned) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  owned.clear()
}

process.on('exit', killOwned)
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    killOwned()
    process.exit(130)
  })
}

/** Also kill `pid` at exit: a grandchild a driver reported (the daemon). */
function adopt(pid) {
  if (Number.isInteger(pid) && pid > 0) owned.add(pid)
}

/**
 * A child whose stdout is one JSON object a line. `next(match, ms)`
 * resolves with the next message `match` accepts (earlier ones that it
 * rejects are dropped), and rejects on an `{error}` message, on timeout,
 * or if the child exits.
 */
class JsonChild {
  constructor(command, args, options = {}) {
    this.child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options })
    this.pid = this.child.pid
    owned.add(this.pid)
    this.inbox = []
    this.waiters = []
    this.stderr = ''
    this.exited = null
    this.child.stdin.on('error', () => {}) // a child that died mid-write
    this.child.stderr.on('data', (chunk) => (this.stderr = (this.stderr + chunk).slice(-4000)))
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => this._onLine(line))
    this.child.on('exit', (code, signal) => this._onExit(code, signal))
  }

  _onLine(line) {
    let message
    try {
      message = JSON.parse(line)
    } catch {
      message = { text: line }
    }
    this.inbox.push(message)
    this._deliver()
  }

  _onExit(code, signal) {
    owned.delete(this.pid)
    this.exited = { code, signal }
    this._deliver()
  }

  _deliver() {
    for (const waiter of [...this.waiters]) {
      const index = this.inbox.findIndex((m) => waiter.match(m) || m.error)
      if (index >= 0) {
        const [message] = this.inbox.splice(0, index + 1).slice(-1)
        if (waiter.match(message)) waiter.settle(null, message)
        else waiter.settle(new Error(String(message.error).split('\n')[0]))
      } else if (this.exited) {
        waiter.settle(new Error(`exited (${this.exited.signal || this.exited.code})${this.lastWords()}`))
      }
    }
  }

  lastWords() {
    const text = this.stderr.trim().split('\n').slice(-3).join(' | ')
    return text ? `: ${text}` : ''
  }

  next(match, timeoutMs) {
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        settle: (err, message) => {
          clearTimeout(waiter.timer)
          this.waiters = this.waiters.filter((w) => w !== waiter)
          if (err) reject(err)
          else resolve(message)
        },
      }
      waiter.timer = setTimeout(() => waiter.settle(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs)
      this.waiters.push(waiter)
      this._deliver()
    })
  }

  send(line) {
    if (!this.exited) this.child.stdin.write(typeof line === 'string' ? line + '\n' : JSON.stringify(line) + '\n')
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 2000) {
    if (this.exited) return
    const gone = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs)
    await gone
    clearTimeout(timer)
  }
}

let clockTicks = null

/** Clock ticks per second, the unit of utime and stime in /proc. */
function ticksPerSecond() {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/**
 * CPU seconds (user + system, every thread of the process) and resident
 * memory in KiB, from /proc. Null once the process is gone.
 */
function sample(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces), from field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / ticksPerSecond()
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
    const rssKiB = Number((/^VmRSS:\s+(\d+)/m.exec(status) || [])[1] || 0)
    const threads = Number((/^Threads:\s+(\d+)/m.exec(status) || [])[1] || 0)
    return { cpuSeconds, rssKiB, threads }
  } catch {
    return null
  }
}

module.exports = { JsonChild, sample, adopt, killOwned, ticksPerSecond }
