'use strict'
// The Redis URL's password stays out of what the daemon prints (its start
// line, its errors), and the URL can be given outside the command line
// (which `ps` shows every user): SSEHUB_REDIS_URL, or a file
// (channels `--redis-file` and its config keyword, jwt `-redis-file`).
// A real redis-server with a password checks that the URL so given is
// the one used.
const { test, describe, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { start, runToEnd, raw, split } = require('../helpers/daemon')
const { startRedis, freePort } = require('../helpers/redis')

const SECRET = 'jwt-redis-secret-0123456789ab'
const CHANNELS = ['channels', '-n', '-p', '127.0.0.1:0', '--heartbeat', '0']
const JWT = ['jwt', '-secret', SECRET, '-bind', '127.0.0.1:0', '-bindctl', '127.0.0.1:0', '-heartbeat', '0']
const CHANNELS_READY = /Web server listening on port (\d+)[\s\S]*?Commands/
const JWT_READY = /Listening for clients on 127\.0\.0\.1:\d+, control on 127\.0\.0\.1:(\d+)/

let tmp
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-redis-url-'))
})
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** A file holding `text`, readable by its owner only. */
function secretFile(name, text) {
  const file = path.join(tmp, name)
  fs.writeFileSync(file, text, { mode: 0o600 })
  return file
}

const noPassword = (text) => assert.doesNotMatch(text, /hunter2/, text)

describe('the password never printed', () => {
  test('channels: the command line in the start-up log has it masked', async () => {
    // Nothing listens there: the bus connects in the background, the daemon serves.
    const port = await freePort()
    for (const args of [['--redis', `redis://app:hunter2@127.0.0.1:${port}/0`], [`--redis=redis://127.0.0.1:${port}/0?password=hunter2`]]) {
      const d = start([...CHANNELS, ...args], { ready: CHANNELS_READY })
      try {
        await d.ready
        const line = d.stdout.match(/Command: .*/)[0]
        noPassword(line)
        assert.match(line, /app:\*\*\*@|password=\*\*\*/)
      } finally {
        await d.stop()
      }
    }
  })

  test('a URL the daemon refuses is named masked (channels, jwt; flag, variable, file)', async () => {
    const bad = 'redis://app:hunter2@127.0.0.1:notaport/0'
    const cases = [
      [[...CHANNELS, '--redis', bad], {}],
      [[...CHANNELS, '--redis-file', secretFile('bad-url', `${bad}\n`)], {}],
      [CHANNELS, { SSEHUB_REDIS_URL: bad }],
      [[...JWT, '-redis', bad], {}],
      [[...JWT, '-redis-file', secretFile('bad-url', bad)], {}],
      [JWT, { SSEHUB_REDIS_URL: bad }],
    ]
    for (const [args, env] of cases) {
      const r = await runToEnd(args, { env })
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`)
      noPassword(r.stderr + r.stdout)
      assert.match(r.stderr, /invalid Redis URL 'redis:\/\/app:\*\*\*@127\.0\.0\.1:notaport\/0'/)
    }
  })
})

describe('the URL outside the command line', () => {
  test('a flag and a file together are a usage error; so is an empty or missing file', async () => {
    const url = 'redis://127.0.0.1:6379/0'
    const file = secretFile('url', `${url}\n`)
    const conf = secretFile('with-redis-file.conf', `redis-file ${file}\n`)
    const empty = secretFile('empty', '\n')
    const cases = [
      [64, [...CHANNELS, '--redis', url, '--redis-file', file], /--redis and --redis-file/],
      [64, [...CHANNELS, '--redis', url, '-C', conf], /--redis and --redis-file/],
      [64, [...JWT, '-redis', url, '-redis-file', file], /-redis and -redis-file/],
      [64, [...CHANNELS, '--redis-file', empty], /is empty/],
      [64, [...JWT, '-redis-file', empty], /is empty/],
      [66, [...CHANNELS, '--redis-file', path.join(tmp, 'missing')], /cannot read/],
      [64, [...JWT, '-redis-file', path.join(tmp, 'missing')], /cannot read/],
    ]
    for (const [code, args, message] of cases) {
      const r = await runToEnd(args)
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`)
      assert.match(r.stderr, message)
    }
  })

  describe('against a Redis that wants a password', () => {
    let redis, url
    before(async () => {
      redis = await startRedis({ persist: false })
      await redis.command('CONFIG', 'SET', 'requirepass', 'hunter2')
      url = `redis://:hunter2@127.0.0.1:${redis.port}/0`
    })
    after(() => redis && redis.stop())

    /** The bus object of /status on an operator port, once connected. */
    async function connected(port) {
      const end = Date.now() + 8000
      for (;;) {
        const r = await raw(port, `GET /status HTTP/1.1\r\nHost: localhost\r\n\r\n`, { until: (t) => t.endsWith('}') })
        const bus = JSON.parse(split(r).body).bus || { connected: false, why: 'no bus in /status' }
        if (bus.connected || Date.now() > end) return bus
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }

    // Each way to give the URL: its name, then its arguments and environment.
    const ways = [
      ['channels --redis-file', () => [[...CHANNELS, '--metrics', '0', '--redis-file', secretFile('url', `${url}\n`)], {}]],
      ['channels, config file redis-file', () => [[...CHANNELS, '--metrics', '0', '-C', secretFile('c.conf', `redis-file ${secretFile('url', url)}\n`)], {}]],
      ['channels SSEHUB_REDIS_URL', () => [[...CHANNELS, '--metrics', '0'], { SSEHUB_REDIS_URL: url }]],
      ['jwt -redis-file', () => [[...JWT, '-redis-file', secretFile('url', url)], {}]],
      ['jwt SSEHUB_REDIS_URL', () => [JWT, { SSEHUB_REDIS_URL: url }]],
    ]

    for (const [name, way] of ways) {
      test(`${name}: connects with the password, prints none`, async () => {
        const [args, env] = way()
        const ready = args[0] === 'jwt' ? JWT_READY : /Metrics and status on http:\/\/127\.0\.0\.1:(\d+)/
        const d = start(args, { env, ready })
        try {
          const bus = await connected(Number((await d.ready)[1]))
          assert.equal(bus.connected, true, JSON.stringify(bus))
          noPassword(d.stdout + d.stderr)
        } finally {
          await d.stop()
        }
      })
    }
  })
})
