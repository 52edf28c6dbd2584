'use strict'
// The Redis set-ups beyond one plain Redis (issue 19), each against real
// redis-servers the tests start: TLS (`rediss://`, a certificate made
// here), Sentinel (`redis+sentinel://`, a failover under publishes) and
// ACL users (the permissions the README lists, and one short of them).

const { test, describe, before, after } = require('node:test')
const assert = require('node:assert')
const { execFileSync, spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { startRedis, freePort, events } = require('../helpers/redis')
const { start, runToEnd, openStream, split, dechunk } = require('../helpers/daemon')
const { eventually, SSE } = require('../helpers/addon')
const { datas, addonNode, addonStream, warm, afterWarm, firstError } = require('../helpers/scale')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Waits for an async condition (`eventually` takes a synchronous one). */
async function until(check, ms, what) {
  const deadline = Date.now() + ms
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}
/** A CA and a certificate for 127.0.0.1 / localhost it signed, in `dir`. */
function makeCertificates(dir) {
  const file = (name) => path.join(dir, name)
  const ssl = (...args) => execFileSync('openssl', args, { stdio: 'pipe' })
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=ssehub test CA', '-keyout', file('ca.key'), '-out', file('ca.pem'))
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', file('redis.key'), '-out', file('redis.csr'))
  fs.writeFileSync(file('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  ssl('x509', '-req', '-in', file('redis.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', file('san.cnf'), '-out', file('redis.pem'))
  return { ca: file('ca.pem'), cert: file('redis.pem'), key: file('redis.key') }
}

describe('TLS: rediss:// with a CA of its own', () => {
  let redis
  let tlsPort
  let certs
  let dir
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-tls-'))
    certs = makeCertificates(dir)
    tlsPort = await freePort()
    redis = await startRedis({
      persist: false,
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', certs.cert, '--tls-key-file', certs.key, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'no'],
    })
  })
  after(async () => {
    await redis.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  test('addon and daemon nodes share events over TLS; the plain port is never used', async () => {
    const url = `rediss://127.0.0.1:${tlsPort}/0`
    const ca = fs.readFileSync(certs.ca, 'utf8')
    const a = await addonNode({ redis: { url, ca }, history: 50 })
    const b = await addonNode({ redis: { url, ca: Buffer.from(ca) }, history: 50 })
    const d = start(['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--history', '50', '--redis', url],
      { ready: /Web server listening on port (\d+)/, env: { SSEHUB_REDIS_CA: certs.ca } })
    try {
      const port = Number((await d.ready)[1])
      const onB = addonStream(b, 'secure')
      const onD = openStream(port, 'GET /secure HTTP/1.1\r\nHost: x\r\n\r\n')
      const daemonEvents = () => events(dechunk(split(onD.text).body).data)
      await warm(onB, (x) => a.sse.publish('secure', x))
      while (!daemonEvents().some((e) => e.data === 'warm')) {
        await a.sse.publish('secure', 'warm')
        await sleep(30)
      }
      for (let i = 0; i < 10; i++) await a.sse.publish('secure', `t${i}`)
      const want = Array.from({ length: 10 }, (_, i) => `t${i}`)
      await eventually(() => afterWarm(onB.events()).length >= 10 && afterWarm(daemonEvents()).length >= 10, 5000, 'the events over TLS')
      assert.deepEqual(datas(afterWarm(onB.events())), want)
      assert.deepEqual(datas(afterWarm(daemonEvents())), want)
      // Every node's connections came in over TLS: two per node; on the
      // plain port only this test's own CLIENT LIST.
      const clients = (await redis.command('CLIENT', 'LIST')).split('\n')
      const on = (port) => clients.filter((l) => l.includes(`laddr=127.0.0.1:${port} `)).length
      assert.ok(on(tlsPort) >= 6, `${on(tlsPort)} TLS connections`)
      assert.equal(on(redis.port), 1)
      onB.destroy()
      onD.sock.destroy()
    } finally {
      await a.stop()
      await b.stop()
      await d.stop()
    }
  })

  test('a certificate the node does not trust: publishes reject and the error names the certificate', async () => {
    // No `ca`: the system's roots, which do not hold this test's CA.
    const sse = new SSE(null, { redis: `rediss://127.0.0.1:${tlsPort}/0` })
    sse.on('error', () => {})
    try {
      await assert.rejects(sse.broadcast('x'), (err) => err.code === 'ERR_SSEHUB_BUS' && /certificate|UnknownIssuer/i.test(err.message))
      assert.match(String(sse.stats().bus.lastError), /certificate|UnknownIssuer/i)
    } finally {
      await sse.close()
    }
  })

  test('the daemon refuses a CA file that holds no certificate, at start', async () => {
    const empty = path.join(dir, 'empty.pem')
    fs.writeFileSync(empty, 'nothing here\n')
    const r = await runToEnd(['channels', '-n', '-p', '127.0.0.1:0', '--redis', `rediss://127.0.0.1:${tlsPort}/0`], { env: { SSEHUB_REDIS_CA: empty }, timeout: 10000 })
    assert.equal(r.code, 64)
    assert.match(r.stderr, /SSEHUB_REDIS_CA: .*holds no PEM certificate/)
  })
})

/** A Sentinel watching `primary` as `mymaster`, quick to act. */
async function startSentinel(primary) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-sentinel-'))
  const port = await freePort()
  const conf = path.join(dir, 'sentinel.conf')
  fs.writeFileSync(conf, [
    `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, 'protected-mode no',
    `sentinel monitor mymaster 127.0.0.1 ${primary.port} 1`,
    'sentinel down-after-milliseconds mymaster 1000',
    'sentinel failover-timeout mymaster 4000',
  ].join('\n') + '\n')
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout.on('data', (d) => (log += d))
  child.stderr.on('data', (d) => (log += d))
  const exited = new Promise((resolve) => child.once('exit', resolve))
  process.once('exit', () => child.kill('SIGKILL'))
  const sentinel = {
    port,
    log: () => log,
    command: (...args) => primary.constructor.prototype.command.call({ port }, ...args),
    async stop() {
      if (child.exitCode === null) child.kill('SIGKILL')
      await exited
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
  await until(async () => /\+PONG/.test(await sentinel.command('PING')), 5000, 'the sentinel to start')
  return sentinel
}

describe('Sentinel: redis+sentinel:// follows a failover', () => {
  let primary
  let replica
  let sentinel
  before(async () => {
    primary = await startRedis({ persist: false })
    replica = await startRedis({ persist: false, args: ['--replicaof', '127.0.0.1', String(primary.port)] })
    await until(async () => /master_link_status:up/.test(await replica.command('INFO', 'replication')), 10000, 'the replica to sync')
    sentinel = await startSentinel(primary)
    await until(async () => /slaves=1/.test(await sentinel.command('INFO', 'sentinel')), 10000, 'the sentinel to see the replica')
  })
  after(async () => {
    await sentinel.stop()
    await replica.stop()
    await primary.stop()
  })

  test('before, during and after a failover: every accepted event reaches the client once, in order; no rejected one does', async () => {
    const url = `redis+sentinel://127.0.0.1:${sentinel.port}/mymaster/0`
    const a = await addonNode({ redis: url, history: 200 })
    const b = await addonNode({ redis: url, history: 200 })
    a.sse.on('error', () => {})
    b.sse.on('error', () => {})
    try {
      const c = addonStream(b, 'f')
      await warm(c, (x) => a.sse.publish('f', x))
      const accepted = []
      const rejected = []
      const publish = async (data) => {
        try {
          await a.sse.publish('f', data)
          accepted.push(data)
        } catch (err) {
          assert.equal(err.code, 'ERR_SSEHUB_BUS')
          rejected.push(data)
        }
      }
      for (let i = 0; i < 20; i++) await publish(`before${i}`)
      // Right after it found the replica, Sentinel may not trust it yet
      // (NOGOODSLAVE): ask until it starts the failover.
      await until(async () => /^\+OK/.test(await sentinel.command('SENTINEL', 'FAILOVER', 'mymaster')), 20000, 'Sentinel to start a failover')
      // Until the replica has taken over and the nodes follow it.
      const deadline = Date.now() + 20000
      for (let i = 0; Date.now() < deadline; i++) {
        await publish(`during${i}`)
        if (/role:master/.test(await replica.command('INFO', 'replication')) && accepted.at(-1) === `during${i}`) break
        await sleep(50)
      }
      assert.match(await replica.command('INFO', 'replication'), /role:master/, 'no failover happened')
      for (let i = 0; i < 20; i++) await publish(`after${i}`)
      assert.ok(accepted.includes('after19'), `publishes still rejected after the failover: ${rejected.slice(-3)}`)
      await eventually(() => afterWarm(c.events()).some((e) => e.data === 'after19'), 10000, 'the events after the failover')
      await sleep(300)
      const got = afterWarm(c.events()).filter((e) => e.event !== 'ssehub-gap')
      assert.deepEqual(datas(got), accepted, `rejected: ${rejected.length}`)
      // A client resuming on the other node, from before the failover.
      const firstId = got[0].id
      const resumed = addonStream(a, 'f', { 'Last-Event-ID': firstId })
      await eventually(() => resumed.events().some((e) => e.data === 'after19'), 5000, 'the replay')
      assert.deepEqual(datas(resumed.events().filter((e) => e.event !== 'ssehub-gap')), accepted.slice(1))
      c.destroy()
      resumed.destroy()
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  test('a Sentinel URL naming an unknown service fails with a clear error', async () => {
    const sse = new SSE(null, { redis: `redis+sentinel://127.0.0.1:${sentinel.port}/nosuchmaster` })
    sse.on('error', () => {})
    try {
      await assert.rejects(sse.broadcast('x'), (err) => err.code === 'ERR_SSEHUB_BUS' && /Sentinel named no primary/.test(err.message))
    } finally {
      await sse.close()
    }
  })

  test('a bad Sentinel URL is refused at once, with no password shown', () => {
    assert.throws(() => new SSE(null, { redis: 'redis+sentinel://:hunter2@127.0.0.1:26379' }),
      (err) => err.code === 'ERR_SSEHUB_INVALID_OPTION' && /names the service/.test(err.message) && !/hunter2/.test(err.message))
  })
})

describe('ACL users', () => {
  let redis
  before(async () => {
    redis = await startRedis({ persist: false })
    // The permissions the README lists, on the prefix's keys and channels
    // (the prefix is a hash tag: {ssehub:}).
    const needed = ['+evalsha', '+script|load', '+time', '+info', '+ping', '+subscribe', '+unsubscribe',
      '+mget', '+set', '+get', '+xadd', '+xrevrange', '+expire', '+publish']
    await redis.command('ACL', 'SETUSER', 'app', 'on', '>app-secret', '~{ssehub:}*', '&{ssehub:}*', ...needed)
    await redis.command('ACL', 'SETUSER', 'short', 'on', '>short-secret', '~{ssehub:}*', '&{ssehub:}*', ...needed.filter((p) => p !== '+script|load'))
  })
  after(() => redis.stop())

  test('a user with the listed permissions publishes, receives and resumes', async () => {
    const url = `redis://app:app-secret@127.0.0.1:${redis.port}/0`
    const a = await addonNode({ redis: url, history: 20 })
    const b = await addonNode({ redis: url, history: 20 })
    try {
      const c = addonStream(b, 'acl')
      await warm(c, (x) => a.sse.publish('acl', x))
      for (let i = 0; i < 5; i++) await a.sse.publish('acl', `u${i}`)
      await eventually(() => afterWarm(c.events()).length >= 5, 5000, 'the events')
      const got = afterWarm(c.events())
      assert.deepEqual(datas(got), ['u0', 'u1', 'u2', 'u3', 'u4'])
      const resumed = addonStream(a, 'acl', { 'Last-Event-ID': got[1].id })
      await eventually(() => resumed.events().length >= 3, 5000, 'the replay')
      assert.deepEqual(datas(resumed.events()), ['u2', 'u3', 'u4'])
      assert.deepEqual(a.sse.stats().bus.errors.auth, 0)
      c.destroy()
      resumed.destroy()
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  test('a user short of a permission fails at start with the auth class', async () => {
    const sse = new SSE(null, { redis: `redis://short:short-secret@127.0.0.1:${redis.port}/0` })
    try {
      const err = await firstError(sse)
      assert.equal(err.code, 'ERR_SSEHUB_BUS')
      assert.match(err.message, /\bauth\b/)
      assert.match(err.message, /NOPERM/i)
      assert.doesNotMatch(err.message, /short-secret/)
    } finally {
      await sse.close()
    }
  })
})
