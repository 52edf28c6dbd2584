'use strict'
// A real browser (headless Chromium) against each daemon mode, started as a
// user would (`node bin/ssehub.js <mode>`). The page is opened at the
// daemon's own origin, so its requests go straight to the daemon.
// - channels: EventSource gets plain and typed events; the daemon stops
//   (SIGTERM ends every stream) and starts again on the same port; the
//   browser comes back by itself (with --refuse retry, so a reconnect during
//   the drain is told to retry instead of getting a 503). SSE-Server's events carry no ids, so
//   there is no Last-Event-ID to send in this mode.
// - demo: EventSource gets hello and numbered messages; `count=2` ends the
//   stream, the browser reconnects with Last-Event-ID and the daemon resumes
//   there. The mode sends only `message` events (no named ones).
// - jwt: events are emitted raw, so named events and ids come from the
//   payload. EventSource cannot send an Authorization header: one page
//   reads the stream with fetch() and a ReadableStream reader (its own SSE
//   parser and reconnect, sending Last-Event-ID, with the header); another
//   uses EventSource with the token in the access_token query parameter.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const net = require('node:net')
const { start, raw, split } = require('../helpers/daemon')
const { launch, openAt, waitUntil, inkOf, keepShot, eventSourcePage } = require('../helpers/browser')

let browser
before(async () => {
  browser = await launch()
})
after(async () => {
  if (browser) await browser.close()
})

/** Stops a daemon with SIGTERM (its graceful stop), SIGKILL after 5 s. */
async function stopGracefully(d) {
  if (d.exited) return d.exited
  d.child.kill('SIGTERM')
  const timer = setTimeout(() => d.child.kill('SIGKILL'), 5000)
  const exited = await d.done
  clearTimeout(timer)
  return exited
}

/** Starts a daemon, stopped after the test whatever happens. */
function daemon(t, args, options) {
  const d = start(args, options)
  t.after(() => stopGracefully(d))
  return d
}

async function checkScreenshot(page, name, lines) {
  const log = page.locator('#log')
  assert.equal((await log.innerText()).trim().split('\n').length, lines)
  const png = await log.screenshot()
  keepShot(name, png)
  const shot = inkOf(png)
  assert.ok(shot.width > 100 && shot.height > 10 * lines, `screenshot ${shot.width}x${shot.height}`)
  assert.ok(shot.colors > 2 && shot.ink > 100 * lines, `screenshot is blank: ${JSON.stringify(shot)}`)
}

/** Writes lines to a control port and waits until the daemon closed it or 200 ms passed. */
function control(port, text) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.write(text)
      setTimeout(() => sock.destroy(), 200)
    })
    sock.on('close', resolve)
    sock.on('error', reject)
  })
}

const received = (page) => page.evaluate(() => window.received)

/** POSTs a form to the jwt control listener; resolves the 200 reply's body. */
async function post(ctlPort, target, form) {
  const body = new URLSearchParams(form).toString()
  const reply = await raw(ctlPort, `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  assert.match(reply, /^HTTP\/1\.1 200 /, reply)
  return split(reply).body
}


test('channels: EventSource gets plain and typed events, and comes back after the daemon restarts', async (t) => {
  const ready = /Web server listening on port (\d+)[\s\S]*?Controller listening on port (\d+)/
  // --refuse retry: a reconnect that lands while the old daemon still drains
  // gets a retry: hint, not the 503 after which EventSource gives up.
  const args = (port) => ['channels', '-n', '-p', `127.0.0.1:${port}`, '-P', '0', '--heartbeat', '1', '--refuse', 'retry']
  const first = daemon(t, args(0), { ready })
  const [, port, ctl] = (await first.ready).map(Number)
  const origin = `http://127.0.0.1:${port}`

  const page = await openAt(browser.context, `${origin}/page.html`, eventSourcePage('/news', ['message', 'greeting']))
  t.after(() => page.close())
  await waitUntil(() => page.evaluate(() => window.opens === 1), 10000, 'the EventSource to open')
  await first.waitFor(/Client \d+ requests channel "news"/)

  await control(ctl, 'news/greeting = hello from the FIFO-less control port\nnews = plain\nsports = not for this page\n')
  await raw(port, `GET /news?greeting=by%20query HTTP/1.1\r\nHost: x\r\n\r\n`, { until: (s) => s.includes('OK\r\n') })
  await waitUntil(async () => (await received(page)).length === 3, 5000, 'three events in the page')

  // The daemon stops: every stream ends cleanly; a new one on the same port
  // gets the browser back without the page doing anything.
  assert.equal((await stopGracefully(first)).code, 0)
  const second = daemon(t, args(port), { ready })
  const [, , ctl2] = (await second.ready).map(Number)
  await second.waitFor(/Client \d+ requests channel "news"/, 15000)
  await waitUntil(() => page.evaluate(() => window.opens >= 2 && window.es.readyState === 1), 5000, 'the EventSource to reopen')
  await control(ctl2, 'news/greeting = back again\n')

  await waitUntil(async () => (await received(page)).length === 4, 5000, 'the event after the reconnect')
  assert.deepEqual(await received(page), [
    { type: 'greeting', data: 'hello from the FIFO-less control port', id: '' },
    { type: 'message', data: 'plain', id: '' },
    { type: 'greeting', data: 'by query', id: '' },
    { type: 'greeting', data: 'back again', id: '' },
  ])
  // The new daemon has the browser's one stream.
  assert.equal(second.stdout.match(/requests channel "news"/g).length, 1)
  await checkScreenshot(page, 'daemon-channels', 4)
})

test('demo: EventSource gets hello and messages, and resumes with Last-Event-ID after count ends the stream', async (t) => {
  const d = daemon(t, ['demo'], { env: { PORT: '0', SSEHUB_DEMO_INTERVAL_MS: '50' }, ready: /Starting sse-server at :(\d+) \.\.\./ })
  const port = Number((await d.ready)[1])
  const origin = `http://127.0.0.1:${port}`

  const page = await openAt(browser.context, `${origin}/page.html`, eventSourcePage('/stream?count=2', ['message']))
  t.after(() => page.close())
  // Chromium waits its default 3 s before the reconnect (the demo sends no `retry:`).
  const got = await waitUntil(async () => {
    const r = await received(page)
    return r.length >= 6 ? r : null
  }, 15000, 'six events (two connections) in the page')
  await page.evaluate(() => window.es.close())

  assert.deepEqual(got.slice(0, 6).map((e) => e.id), ['hello', 'message-1', 'message-2', 'hello', 'message-2', 'message-3'])
  assert.match(got[0].data, /^Hello, 127\.0\.0\.1:\d+!$/)
  for (const e of [got[1], got[2], got[4], got[5]]) {
    assert.equal(e.type, 'message')
    assert.match(e.data, /^\{\n {2}"time": \d+,\n {2}"random": "[A-Za-z]+"\n\}$/)
  }
  const random = (e) => JSON.parse(e.data).random
  assert.equal(random(got[4]), random(got[2]), 'message-2 is sent again on resume')
  assert.notEqual(random(got[5]), random(got[4]))
  // The daemon saw Last-Event-ID: message-2 on the reconnect (it resumes at 2).
  await d.waitFor(/Starting stream for 127\.0\.0\.1:\d+, 1 -> 3 \.\.\./)
  await d.waitFor(/Starting stream for 127\.0\.0\.1:\d+, 2 -> 4 \.\.\./)
  await checkScreenshot(page, 'daemon-demo', got.length)
})

/** The jwt page: fetch() with the token, a ReadableStream reader, its own SSE parsing and reconnect. */
function jwtPage(token) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>ssehub jwt in a browser</title>
<style>body { font: 16px sans-serif; margin: 16px; background: #fff; color: #111 } li { padding: 2px 0 }</style>
</head><body>
<h1>ssehub jwt events</h1>
<ul id="log"></ul>
<script>
window.received = []
window.opens = 0
window.opened = []
window.statuses = []
let lastId = ''
const log = document.getElementById('log')
function dispatch(block) {
  let type = 'message', id = null
  const data = []
  for (const line of block.split('\\n')) {
    if (line === '' || line.startsWith(':')) continue
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') type = value
    else if (field === 'data') data.push(value)
    else if (field === 'id') id = value
  }
  if (id !== null) lastId = id
  if (data.length === 0) return
  window.received.push({ type, data: data.join('\\n'), id: lastId })
  const li = document.createElement('li')
  li.textContent = type + ' #' + lastId + ': ' + data.join(' / ')
  log.append(li)
}
async function run() {
  for (;;) {
    const headers = { Authorization: 'Bearer ' + ${JSON.stringify(token)} }
    if (lastId) headers['Last-Event-ID'] = lastId
    try {
      const res = await fetch('/events/', { headers, cache: 'no-store' })
      window.statuses.push(res.status)
      // A draining daemon answers 503: try again later (EventSource would give up).
      if (res.status === 503) throw new Error('503')
      if (res.status !== 200) return
      window.opens++
      window.opened.push(headers)
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end
        while ((end = buffer.indexOf('\\n\\n')) >= 0) {
          dispatch(buffer.slice(0, end))
          buffer = buffer.slice(end + 2)
        }
      }
    } catch (err) {
      window.lastError = String(err)
    }
    await new Promise((r) => setTimeout(r, 300))
  }
}
run()
</script>
</body></html>`
}

test('jwt: a fetch() stream reader with the token gets raw, named and id-ed events, and resumes after a restart', async (t) => {
  const ready = /Listening for clients on 127\.0\.0\.1:(\d+), control on 127\.0\.0\.1:(\d+)/
  const args = (port) => ['jwt', '-bind', `127.0.0.1:${port}`, '-bindctl', '127.0.0.1:0', '-secret', 'browser-test-secret-key', '-heartbeat', '1']
  const first = daemon(t, args(0), { ready })
  const [, port, ctl] = (await first.ready).map(Number)
  const token = await post(ctl, '/token/', { userId: 'ada', channel: 'room', exp: '600' })
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/)

  const page = await openAt(browser.context, `http://127.0.0.1:${port}/page.html`, jwtPage(token))
  t.after(() => page.close())
  await waitUntil(() => page.evaluate(() => window.opens === 1), 10000, 'the stream to open')

  await post(ctl, '/emit/', { userId: 'ada', channel: 'room', payload: 'id: 1\ndata: one\n' })
  await post(ctl, '/emit/', { userId: '*', channel: 'room', payload: 'event: greeting\nid: 2\ndata: hello\ndata: two lines\n' })
  await post(ctl, '/emit/', { userId: 'bob', channel: 'room', payload: 'data: for bob only\n' })
  await waitUntil(async () => (await received(page)).length === 2, 5000, 'two events in the page')

  assert.equal((await stopGracefully(first)).code, 0)
  const second = daemon(t, args(port), { ready })
  const [, , ctl2] = (await second.ready).map(Number)
  await waitUntil(() => page.evaluate(() => window.opens === 2), 10000, 'the page to reconnect')
  await post(ctl2, '/emit/', { userId: 'ada', channel: 'room', payload: 'event: greeting\nid: 3\ndata: after the restart\n' })

  await waitUntil(async () => (await received(page)).length === 3, 5000, 'the event after the reconnect')
  assert.deepEqual(await received(page), [
    { type: 'message', data: 'one', id: '1' },
    { type: 'greeting', data: 'hello\ntwo lines', id: '2' },
    { type: 'greeting', data: 'after the restart', id: '3' },
  ])
  assert.equal((await page.evaluate(() => window.statuses)).at(-1), 200)
  // The page's reconnect sent the token and the last id it had seen (the
  // jwt mode keeps no history, so the daemon itself does not use it).
  const opened = await page.evaluate(() => window.opened)
  assert.equal(opened.length, 2)
  assert.equal(opened[0]['Last-Event-ID'], undefined)
  assert.equal(opened[1]['Last-Event-ID'], '2')
  assert.equal(opened[1].Authorization, `Bearer ${token}`)
  await checkScreenshot(page, 'daemon-jwt', 3)
})

test('jwt: EventSource with the token in access_token gets named events, and comes back after a restart', async (t) => {
  const ready = /Listening for clients on 127\.0\.0\.1:(\d+), control on 127\.0\.0\.1:(\d+)/
  const args = (port) => ['jwt', '-bind', `127.0.0.1:${port}`, '-bindctl', '127.0.0.1:0', '-secret', 'browser-test-secret-key', '-heartbeat', '1', '-refuse', 'retry']
  const first = daemon(t, args(0), { ready })
  const [, port, ctl] = (await first.ready).map(Number)
  const token = await post(ctl, '/token/', { userId: 'eve', channel: 'news', exp: '600' })
  const url = `/events/?access_token=${encodeURIComponent(token)}`
  const page = await openAt(browser.context, `http://127.0.0.1:${port}/page.html`, eventSourcePage(url, ['message', 'greeting']))
  t.after(() => page.close())
  await waitUntil(() => page.evaluate(() => window.opens === 1), 10000, 'the EventSource to open')

  await post(ctl, '/emit/', { userId: 'eve', channel: 'news', payload: 'event: greeting\nid: 1\ndata: hello eve\n' })
  await post(ctl, '/emit/', { userId: '*', channel: 'news', payload: 'id: 2\ndata: to everyone\n' })
  await waitUntil(async () => (await received(page)).length === 2, 5000, 'two events in the page')

  // SIGTERM drains (streams end; with -refuse retry a reconnect during the
  // drain gets a retry: hint, not a 503); a new daemon on the same port gets
  // the page back by itself.
  assert.equal((await stopGracefully(first)).code, 0)
  const second = daemon(t, args(port), { ready })
  const [, , ctl2] = (await second.ready).map(Number)
  await waitUntil(() => page.evaluate(() => window.opens >= 2 && window.es.readyState === 1), 15000, 'the EventSource to reopen')
  await post(ctl2, '/emit/', { userId: 'eve', channel: 'news', payload: 'event: greeting\nid: 3\ndata: back\n' })
  await waitUntil(async () => (await received(page)).length === 3, 5000, 'the event after the reconnect')
  assert.deepEqual(await received(page), [
    { type: 'greeting', data: 'hello eve', id: '1' },
    { type: 'message', data: 'to everyone', id: '2' },
    { type: 'greeting', data: 'back', id: '3' },
  ])
  await checkScreenshot(page, 'daemon-jwt-eventsource', 3)
})
