'use strict'
// A real redis-server on a free loopback port, in a temporary folder, for
// the scale-out tests and the scale-out benchmark. It can be killed
// (SIGKILL) and started again on the same port, with its data (append-only
// file, fsync on every write) or empty. Every server started is killed
// when this process exits, however it exits.

const { spawn, execFileSync } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const BINARY = process.env.SSEHUB_REDIS_SERVER || 'redis-server'

function haveRedis() {
  try {
    execFileSync(BINARY, ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

class Redis {
  constructor(port, dir) {
    this.port = port
    this.dir = dir
    this.url = `redis://127.0.0.1:${port}/0`
    this.child = null
  }

  /**
   * Starts the server; `persist` keeps every write on disk (AOF, always);
   * `args` are more of redis-server's options (`--replicaof`, TLS...).
   */
  async start({ persist = true, args: extra = [] } = {}) {
    this.options = { persist, args: extra }
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--daemonize', 'no', '--protected-mode', 'no']
    args.push(...(persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']))
    args.push(...extra)
    this.child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.log = ''
    this.child.stdout.on('data', (d) => (this.log += d))
    this.child.stderr.on('data', (d) => (this.log += d))
    const exited = new Promise((resolve) => this.child.once('exit', resolve))
    this.exited = exited
    const deadline = Date.now() + 10000
    while (!(await this.ping())) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`redis-server did not start: ${this.log}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /** Ends the server at once, as a crash would. */
  async kill() {
    if (!this.child || this.child.exitCode !== null) return
    this.child.kill('SIGKILL')
    await this.exited
  }

  /** Starts again empty: the data folder is wiped first. */
  async startEmpty() {
    for (const name of fs.readdirSync(this.dir)) fs.rmSync(path.join(this.dir, name), { recursive: true, force: true })
    await this.start({ persist: false })
  }

  /** Sends one command (RESP), resolves with the raw reply text. */
  command(...args) {
    return new Promise((resolve, reject) => {
      const socket = net.connect(this.port, '127.0.0.1')
      let reply = ''
      socket.on('error', reject)
      socket.on('data', (d) => {
        reply += d
        if (reply.endsWith('\r\n')) {
          socket.end()
          resolve(reply)
        }
      })
      socket.write(`*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`).join(''))
    })
  }

  async ping() {
    try {
      return (await this.command('PING')).startsWith('+PONG')
    } catch {
      return false
    }
  }
}

/** Every server started, stopped when this process exits, however. */
const running = new Set()
process.on('exit', () => {
  for (const redis of running) if (redis.child && redis.child.exitCode === null) redis.child.kill('SIGKILL')
})

/**
 * Starts a Redis in a fresh temporary folder. Call `stop()` from an
 * `after` hook; a process that dies first takes its Redis with it.
 */
async function startRedis(options) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-redis-'))
  const redis = new Redis(await freePort(), dir)
  running.add(redis)
  redis.stop = async () => {
    await redis.kill()
    running.delete(redis)
    fs.rmSync(dir, { recursive: true, force: true })
  }
  await redis.start(options)
  return redis
}

module.exports = { haveRedis, startRedis, freePort, Redis }
