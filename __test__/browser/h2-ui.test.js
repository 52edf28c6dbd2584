'use strict'
// Headless Chromium and the daemon's HTTP/2 and status page:
// - eight EventSource streams from one page to one origin over TLS: on
//   HTTP/1.1 a browser stops at six connections per host and the seventh
//   hangs; ALPN gives h2 and every stream gets every event;
// - the operator's /ui/ page, rendered: it fills itself from /ui/status
//   (clients, channels) and the screenshot is checked not blank; under its
//   Content-Security-Policy (no inline script or style) nothing is refused.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const tls = require('node:tls')
const { start } = require('../helpers/daemon')
const { launch, openAt, waitUntil, inkOf, keepShot } = require('../helpers/browser')

const FIXTURES = path.join(__dirname, '..', 'fixtures')
const STREAMS = 8

let browser
before(async () => {
  browser = await launch({ ignoreHTTPSErrors: true })
})
after(async () => {
  if (browser) await browser.close()
})

function daemon(t, args) {
  const d = start(args, { ready: /Web server listening on port (\d+)[\s\S]*?Commands/ })
  t.after(() => d.stop())
  return d
}

test(`channels over TLS: ${STREAMS} EventSources on one origin all get every event (HTTP/2 by ALPN)`, async (t) => {
  const d = daemon(t, ['channels', '-n', '-p', '127.0.0.1:0', '-P', '0', '--heartbeat', '0',
    '-c', path.join(FIXTURES, 'test-cert.pem'), '-k', path.join(FIXTURES, 'test-key.pem')])
  const port = Number((await d.ready)[1])
  const ctl = Number(d.stdout.match(/Controller listening on port (\d+)/)[1])
  const origin = `https://127.0.0.1:${port}`
  const page = await openAt(browser.context, `${origin}/page`, `<!doctype html><meta charset="utf-8">
<title>eight streams</title><ul id="log"></ul>
<script>
window.got = []
window.opened = 0
for (let i = 0; i < ${STREAMS}; i++) {
  window.got.push([])
  const es = new EventSource('/tab/' + i)
  es.onopen = () => { window.opened++ }
  es.onmessage = (e) => {
    window.got[i].push(e.data)
    const li = document.createElement('li')
    li.textContent = 'stream ' + i + ': ' + e.data
    document.getElementById('log').append(li)
  }
}
</script>`)
  await waitUntil(() => page.evaluate(() => window.opened === 8), 10000, 'all eight streams to open')
  const sock = tls.connect({ port: ctl, host: '127.0.0.1', rejectUnauthorized: false })
  await new Promise((r) => sock.on('secureConnect', r))
  sock.end('tab = one\ntab = two\n')
  await waitUntil(() => page.evaluate(() => window.got.every((g) => g.length === 2)), 10000, 'both events on every stream')
  assert.deepEqual(await page.evaluate(() => window.got), Array.from({ length: STREAMS }, () => ['one', 'two']))
  await page.close()
})

test('the /ui/ status page renders live figures and clients per channel', async (t) => {
  const d = daemon(t, ['channels', '-n', '-p', '127.0.0.1:0', '--metrics', '0', '--heartbeat', '0'])
  const port = Number((await d.ready)[1])
  const mport = Number(d.stdout.match(/Metrics and status on http:\/\/127\.0\.0\.1:(\d+)/)[1])
  // Three streams in two channels, from another page of the browser (which
  // may ask for /favicon.ico as well: in this mode that is one more stream).
  const streams = await openAt(browser.context, `http://127.0.0.1:${port}/p`, `<!doctype html><script>
window.es = ['/news', '/news', '/sport'].map((p) => new EventSource(p))
</script>`)
  const page = await browser.context.newPage()
  // Chromium logs every resource, script or style the policy refuses.
  const refused = []
  page.on('console', (msg) => { if (/Content Security Policy/i.test(msg.text())) refused.push(msg.text()) })
  const res = await page.goto(`http://127.0.0.1:${mport}/ui/`)
  assert.equal(res.headers()['content-security-policy'], "default-src 'self'; frame-ancestors 'none'")
  const rows = () => page.locator('#channels tr').allInnerTexts()
  await waitUntil(async () => (await rows()).some((r) => /^sport\s+1/.test(r)), 20000, 'the page to show the channels')
    .catch(async (e) => { throw new Error(`${e.message}: ${await page.locator('body').innerText()}`) })
  assert.equal(await page.locator('#state').innerText(), 'live')
  assert.equal(await page.locator('#mode').innerText(), 'channels')
  assert.ok(Number(await page.locator('#clients').innerText()) >= 3)
  const shown = await rows()
  assert.match(shown[0], /^news\s+2/, 'the biggest channel first')
  assert.ok(shown.some((r) => /^sport\s+1/.test(r)))
  assert.deepEqual(refused, [], 'no Content-Security-Policy violation logged')
  assert.match(await page.evaluate(() => getComputedStyle(document.querySelector('.bar')).width), /^[1-9]\d*(\.\d+)?px$/, 'bars sized by the script')
  const png = await page.screenshot()
  keepShot('ui', png)
  const shot = inkOf(png)
  assert.ok(shot.colors > 10 && shot.ink > 5000, `the status page is not blank: ${JSON.stringify(shot)}`)
  await streams.close()
  await page.close()
})
