'use strict'
// The daemon's Windows side (crates/daemon/src/sys/windows.rs and
// channels/fifo/windows.rs), run under wine from the win32-x64-gnu
// package: the channels mode with its FIFO as a named pipe, the log file
// held against a second daemon, local-time stamps, the process metrics
// from Win32, the refusals that have no Windows meaning, and the start in
// the background. (run.platform.js streams its demo mode.)
const { describe, test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { SLOW_MS, artifacts, notBuilt, launch, stop, fetchText, waitForLog, wineserverToStop } = require('./common')
const { byName } = require('../../scripts/platforms/targets')
const { runtime } = require('../../scripts/platforms/runtimes')

const t = byName('win32-x64-gnu')
const rt = runtime(t.name)
const files = artifacts(t)
const skip = !files ? notBuilt(t) : rt.skip
wineserverToStop(rt)

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-windows-daemon-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** A folder holding the daemon, for one run. */
function folder(name) {
  const dir = path.join(tmp, name)
  fs.mkdirSync(dir)
  fs.copyFileSync(files.daemon, path.join(dir, t.daemon))
  return dir
}

/** The daemon in `dir`, as argv: under wine by its name (the folder is wine's cwd). */
const daemonIn = (dir) => rt.exec(rt.wine ? t.daemon : path.join(dir, t.daemon))

/** Runs the daemon to its end; its stdout and stderr as one text. */
async function runToEnd(dir, args) {
  const out = path.join(dir, `run-${Date.now()}.out`)
  const child = launch([...daemonIn(dir), ...args], { cwd: dir, env: rt.env, log: out })
  const timer = setTimeout(() => stop(child), SLOW_MS)
  const { code } = await child.exited
  clearTimeout(timer)
  return { code, text: fs.readFileSync(out, 'utf8') }
}

/** Writes lines to a named pipe from a Windows Node.js, as a local program would. */
async function writePipe(dir, name, script) {
  const file = path.join(dir, `writer-${Date.now()}.js`)
  fs.writeFileSync(file, `const fs = require('node:fs'); const pipe = ${JSON.stringify(`\\\\.\\pipe\\${name}`)};\n${script}`)
  const out = path.join(dir, 'writer.out')
  const child = launch([...rt.node, path.basename(file)], { cwd: dir, env: rt.env, log: out })
  const { code } = await child.exited
  assert.equal(code, 0, `the pipe writer failed: ${fs.readFileSync(out, 'utf8')}`)
}

/** A GET whose body is collected as it comes. */
function openStream(port, target) {
  const s = { text: '', status: null }
  s.req = http.get({ host: '127.0.0.1', port, path: target, agent: false }, (res) => {
    s.status = res.statusCode
    res.setEncoding('utf8')
    res.on('data', (c) => (s.text += c))
    s.ended = new Promise((resolve) => res.on('close', resolve))
  })
  s.req.on('error', () => {})
  s.waitFor = async (re, ms = SLOW_MS) => {
    const end = Date.now() + ms
    while (!re.test(s.text)) {
      if (Date.now() > end) throw new Error(`no ${re} in ${ms} ms: ${JSON.stringify(s.text)}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return s
}

function sendControl(port, text) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.end(text))
    sock.on('close', resolve)
    sock.on('error', reject)
  })
}

describe(`${t.pkg}: the daemon's Windows side under wine`, { skip, timeout: 6 * SLOW_MS }, () => {
  const pipe = `ssehub-test-${process.pid}`
  let dir, child, logFile, port, ctl, metrics

  before(async () => {
    dir = folder('channels')
    logFile = path.join(dir, 'sse.log')
    child = launch([...daemonIn(dir), 'channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '-F', pipe, '-l', 'sse.log', '--metrics', '0'],
      { cwd: dir, env: rt.env, log: path.join(dir, 'daemon.out') })
    const m = await waitForLog(logFile, /Web server listening on port (\d+)[\s\S]*?Controller listening on port (\d+)[\s\S]*?http:\/\/127\.0\.0\.1:(\d+)\/metrics[\s\S]*?Commands not allowed/, child)
    ;[port, ctl, metrics] = [Number(m[1]), Number(m[2]), Number(m[3])]
  })
  after(() => child && stop(child))

  test('log lines carry the local time as SSE-Server stamps it; the FIFO is the named pipe', () => {
    const text = fs.readFileSync(logFile, 'utf8')
    assert.match(text, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d{4} ={51}\n/)
    const stamp = text.slice(0, 19).replace(' ', 'T') + 'Z'
    const offset = text.slice(19, 24)
    const minutes = (offset[0] === '-' ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(3, 5)))
    const utc = Date.parse(stamp) - minutes * 60000
    assert.ok(Math.abs(utc - Date.now()) < 10 * 60000, `the stamp ${text.slice(0, 24)} is now, in its zone`)
    assert.match(text, new RegExp(`Controller listening on FIFO ${pipe}\\n`))
  })

  test('a stream gets what the query, the control port and named-pipe writers (one after another and at once) publish', async () => {
    const s = openStream(port, '/room')
    await s.waitFor(/^/)
    await waitForLog(logFile, /Client \d+ requests channel "room"/, child)
    assert.equal((await fetchText(port, '/room?ev=by-query')).status, 200)
    await s.waitFor(/event: ev\ndata: by-query\n\n/)
    await sendControl(ctl, 'room=by-control-port\n')
    await s.waitFor(/data: by-control-port\n\n/)
    await writePipe(dir, pipe, `
fs.writeFileSync(pipe, 'room=pipe-one\\n')
fs.writeFileSync(pipe, 'room=pipe-two\\n')
const a = fs.createWriteStream(pipe), b = fs.createWriteStream(pipe)
let open = 2
const done = () => { if (--open === 0) process.exit(0) }
a.on('error', (e) => { console.error(e); process.exit(1) }); b.on('error', (e) => { console.error(e); process.exit(1) })
a.end('room=at-once-a\\n', done); b.end('room=at-once-b\\n', done)
`)
    await s.waitFor(/data: at-once-a\n\n[\s\S]*data: at-once-b\n\n|data: at-once-b\n\n[\s\S]*data: at-once-a\n\n/)
    assert.match(s.text, /data: by-control-port\n\n[\s\S]*data: pipe-one\n\n[\s\S]*data: pipe-two\n\n/)
    assert.equal(s.status, 200)
    s.req.destroy()
  })

  test('/metrics has the process metrics, read from Win32', async () => {
    const r = await fetchText(metrics, '/metrics')
    assert.equal(r.status, 200)
    const value = (name) => {
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(r.body)
      assert.ok(m, `${name} in /metrics`)
      return Number(m[1])
    }
    assert.ok(value('process_resident_memory_bytes') > 1e6, 'a working set of over 1 MB')
    // Wine answers GetProcessHandleCount with 0; Windows counts every handle.
    if (rt.wine) assert.ok(value('process_open_fds') >= 0, 'a handle count')
    else assert.ok(value('process_open_fds') >= 3, 'handles are counted')
    assert.equal(value('process_max_fds'), 2 ** 24, "Windows' handle limit")
    assert.ok(value('process_cpu_seconds_total') > 0)
    assert.ok(Math.abs(value('process_start_time_seconds') - Date.now() / 1000) < 3600, 'started within the hour')
  })

  test('a second daemon on the same log file is refused; the log stays readable', async () => {
    const sameLog = await runToEnd(dir, ['channels', '-n', '-p', '127.0.0.1:0', '-l', 'sse.log'])
    assert.equal(sameLog.code, 75, sameLog.text)
    assert.match(sameLog.text, /Cannot get an exclusive lock on sse\.log/)
    // Read while the first daemon writes it (a Windows lock would forbid it).
    assert.match(fs.readFileSync(logFile, 'utf8'), /Web server listening/)
  })

  // Wine does not honour FILE_FLAG_FIRST_PIPE_INSTANCE: there a second
  // Node.js server listens on a pipe name already served, too (libuv asks
  // for the flag). The release workflow runs this on Windows.
  test('a second daemon on the same pipe name is refused', { skip: rt.wine && 'wine does not honour FILE_FLAG_FIRST_PIPE_INSTANCE' }, async () => {
    const samePipe = await runToEnd(folder('second'), ['channels', '-n', '-p', '127.0.0.1:0', '-F', pipe])
    assert.equal(samePipe.code, 73, samePipe.text)
    assert.match(samePipe.text, new RegExp(`FIFO file ${pipe}: cannot create it`))
  })

  test('what has no Windows meaning is refused with the reason: a path for -F, --fifo-mode, -U', async () => {
    const d = folder('refusals')
    const badPipe = await runToEnd(d, ['channels', '-n', '-p', '127.0.0.1:0', '-F', 'C:\\temp\\sse.fifo'])
    assert.equal(badPipe.code, 64, badPipe.text)
    assert.match(badPipe.text, /on Windows the FIFO is a named pipe: give a NAME without/)
    const mode = await runToEnd(d, ['channels', '-n', '-p', '127.0.0.1:0', '-F', 'x', '--fifo-mode', '0600'])
    assert.equal(mode.code, 64, mode.text)
    assert.match(mode.text, /--fifo-mode: the FIFO is a named pipe on Windows, with no mode/)
    const user = await runToEnd(d, ['channels', '-n', '-p', '127.0.0.1:0', '-U', 'nobody'])
    assert.equal(user.code, 69, user.text)
    assert.match(user.text, /Cannot switch to user nobody: Windows has no setuid/)
  })

  test('halt on the named pipe ends every stream and the daemon exits 0', async () => {
    const s = openStream(port, '/room')
    await s.waitFor(/^/)
    await waitForLog(logFile, /Client \d+ requests channel "room"[\s\S]*Client \d+ requests channel "room"/, child)
    await writePipe(dir, pipe, `fs.writeFileSync(pipe, 'halt\\n')`)
    const { code } = await child.exited
    assert.equal(code, 0)
    await s.ended
    assert.match(fs.readFileSync(logFile, 'utf8'), /Stopping\n$/)
  })

  test('without -n it starts in the background, detached; halt on the control port stops it', async () => {
    const d = folder('background')
    const r = await runToEnd(d, ['channels', '-p', '127.0.0.1:0', '-P', '0', '-l', 'bg.log'])
    assert.equal(r.code, 0, r.text)
    const pid = r.text.match(/^Background process started, process id (\d+)\r?\n$/)
    assert.ok(pid, r.text)
    const bgLog = path.join(d, 'bg.log')
    const m = await waitForLog(bgLog, /Controller listening on port (\d+)[\s\S]*Running in background, process id (\d+)\n/, { exitCode: null, signalCode: null })
    assert.equal(m[2], pid[1], 'the copy that serves is the one announced')
    await sendControl(Number(m[1]), 'halt\n')
    await waitForLog(bgLog, /Stopping\n$/, { exitCode: null, signalCode: null })
  })
})
