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

/** `redis-cli` against the server on `port`; its output, trimmed. */
function cli(port, ...args) {
  return execFileSync('redis-cli', ['-p', String(port), ...args.map(String)], { encoding: 'utf8' }).trim()
}

/**
 * A Redis Cluster of `masters` masters (no replicas), each a server as
 * `startRedis` makes, made with `redis-cli --cluster create`. A master
 * that is down leaves only its slots unserved (full coverage not
 * required), so one can be restarted. `stop()` stops them all.
 */
async function startCluster({ masters = 3, persist = false } = {}) {
  const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--cluster-require-full-coverage', 'no']
  const nodes = []
  try {
    for (let i = 0; i < masters; i++) nodes.push(await startRedis({ persist, args }))
    cli(nodes[0].port, '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes')
    const cluster = {
      nodes,
      url: nodes[0].url,
      cli,
      id: (node) => cli(node.port, 'CLUSTER', 'MYID'),
      slotOf: (key) => Number(cli(nodes[0].port, 'CLUSTER', 'KEYSLOT', key)),
      /** The master that serves `slot` now, as `nodes[0]` sees it. */
      ownerOf(slot) {
        const line = cli(nodes[0].port, 'CLUSTER', 'NODES').split('\n').find((l) => l.includes('master') && l.split(' ').slice(8).some((r) => {
          const [a, b = a] = r.split('-').map(Number)
          return slot >= a && slot <= b
        }))
        const port = Number(/:(\d+)@/.exec(line)[1])
        return nodes.find((n) => n.port === port)
      },
      /** Whether every master says the cluster is ok. */
      ok: () => nodes.every((n) => {
        try {
          return cli(n.port, 'CLUSTER', 'INFO').includes('cluster_state:ok')
        } catch {
          return false
        }
      }),
      /** Moves `slot` and its keys to `to`, as `redis-cli --cluster reshard` does. */
      migrate(slot, to) {
        const from = cluster.ownerOf(slot)
        cli(to.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', cluster.id(from))
        cli(from.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', cluster.id(to))
        for (;;) {
          const keys = cli(from.port, 'CLUSTER', 'GETKEYSINSLOT', slot, 100).split('\n').filter(Boolean)
          if (keys.length === 0) break
          cli(from.port, 'MIGRATE', '127.0.0.1', to.port, '', 0, 5000, 'KEYS', ...keys)
        }
        for (const n of [to, from, ...nodes.filter((x) => x !== to && x !== from)]) cli(n.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', cluster.id(to))
      },
      stop: async () => {
        for (const n of nodes) await n.stop()
      },
    }
    const deadline = Date.now() + 20000
    while (!cluster.ok()) {
      if (Date.now() > deadline) throw new Error('the cluster did not come up')
      await new Promise((r) => setTimeout(r, 100))
    }
    return cluster
  } catch (err) {
    for (const n of nodes) await n.stop()
    throw err
  }
}

module.exports = { haveRedis, startRedis, startCluster, freePort, Redis }
