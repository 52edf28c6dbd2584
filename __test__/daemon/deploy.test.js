'use strict'
// examples/ssehub.service and examples/Dockerfile run the daemon binary
// directly (no node or npx in between). The unit passes systemd's own
// checker, and the command lines both give are run here with the built
// binary: they start, serve, and stop with exit 0 on the signal the init
// system sends (SIGTERM).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { raw, split, dechunk, chunkedDone } = require('../helpers/daemon')
const { daemonBinaryPath } = require('../../lib/platform')

const EXAMPLES = path.join(__dirname, '..', '..', 'examples')
const unit = fs.readFileSync(path.join(EXAMPLES, 'ssehub.service'), 'utf8')
const dockerfile = fs.readFileSync(path.join(EXAMPLES, 'Dockerfile'), 'utf8')

/** The value of `Key=` in the unit (the last one, as systemd does). */
function unitValue(key) {
  const values = [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1].trim())
  return values.at(-1)
}

/** Runs the binary itself; resolves once `ready` matches its output. */
function runBinary(t, args, { env = {}, ready }) {
  const child = spawn(daemonBinaryPath(), args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    return exited
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready: ${output}`)), 10000)
    const onData = (b) => {
      output += b
      const m = output.match(ready)
      if (m) {
        clearTimeout(timer)
        resolve({ child, match: m, exited, output: () => output })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    exited.then((e) => reject(new Error(`exited ${JSON.stringify(e)}: ${output}`)))
  })
}

test('ssehub.service: ExecStart is the binary itself, and systemd-analyze verify finds nothing', (t) => {
  const exec = unitValue('ExecStart')
  assert.match(exec, /^\/usr\/local\/bin\/ssehub channels -n /, 'the binary, in the foreground, no npx')
  assert.doesNotMatch(unit.replace(/^#.*$/gm, ''), /npx|node /)
  assert.equal(unitValue('KillSignal'), 'SIGTERM')
  const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => fs.existsSync(p))
  if (!analyze) return t.skip('systemd-analyze is not installed (package systemd)')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-unit-'))
  try {
    // verify checks that ExecStart's binary exists: point it at the built one.
    const file = path.join(dir, 'ssehub.service')
    fs.writeFileSync(file, unit.replaceAll('/usr/local/bin/ssehub', daemonBinaryPath()))
    const result = spawnSync(analyze, ['verify', file], { encoding: 'utf8' })
    assert.equal(result.status, 0, result.stderr)
    assert.equal(result.stderr.trim(), '', 'no warning from systemd-analyze')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test("ssehub.service: its ExecStart command line starts, serves a FIFO event, and SIGTERM exits 0", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-unit-run-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  // The unit's flags, with free loopback ports and a temporary RuntimeDirectory.
  const [binary, ...args] = unitValue('ExecStart').split(/\s+/)
  assert.equal(binary, '/usr/local/bin/ssehub')
  const local = args.map((a, i) => {
    const flag = args[i - 1]
    if (flag === '-p' || flag === '-P' || flag === '--metrics') return '127.0.0.1:0'
    return a.replace('/run/ssehub', dir)
  })
  const d = await runBinary(t, local, { ready: /Web server listening on port (\d+)[\s\S]*?Commands (not )?allowed/ })
  const port = Number(d.output().match(/Web server listening on port (\d+)/)[1])
  const fifo = path.join(dir, 'sse.fifo')
  assert.equal(fs.statSync(fifo).mode & 0o777, 0o600)

  const stream = raw(port, 'GET /news HTTP/1.1\r\nHost: x\r\n\r\n', { until: (s) => s.includes('data: from the fifo') })
  await new Promise((r) => setTimeout(r, 200))
  fs.writeFileSync(fifo, 'news/alert = from the fifo\n')
  const text = await stream
  assert.match(dechunk(split(text).body).data, /event: alert\ndata: from the fifo\n\n/)

  d.child.kill(unitValue('KillSignal'))
  assert.deepEqual(await d.exited, { code: 0, signal: null })
})

test('Dockerfile: builds only the daemon, runs the binary as PID 1; its CMD starts, serves, and stops on SIGTERM', async (t) => {
  assert.match(dockerfile, /^RUN cargo build --release --locked --bin ssehub --no-default-features --features daemon$/m)
  assert.match(dockerfile, /^COPY --from=build \/src\/target\/release\/ssehub \/usr\/local\/bin\/ssehub$/m)
  const entrypoint = JSON.parse(dockerfile.match(/^ENTRYPOINT (\[.*\])$/m)[1])
  const cmd = JSON.parse(dockerfile.match(/^CMD (\[.*\])$/m)[1])
  assert.deepEqual(entrypoint, ['/usr/local/bin/ssehub'], 'exec form, the binary itself')
  assert.match(dockerfile, /^STOPSIGNAL SIGTERM$/m)
  assert.match(dockerfile, /^ENV PORT=8080$/m)
  assert.doesNotMatch(dockerfile.replace(/^#.*$/gm, ''), /npx|node/)

  const d = await runBinary(t, cmd, { env: { PORT: '0' }, ready: /Starting sse-server at :(\d+) \.\.\./ })
  const port = Number(d.match[1])
  const reply = await raw(port, 'GET /stream?count=1 HTTP/1.1\r\nHost: x\r\n\r\n', { until: chunkedDone })
  assert.match(dechunk(split(reply).body).data, /^id: hello\ndata: Hello, 127\.0\.0\.1:\d+!\n\nid: message-1\n/)
  d.child.kill('SIGTERM')
  assert.deepEqual(await d.exited, { code: 0, signal: null })
})
