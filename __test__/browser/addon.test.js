'use strict'
// A real browser (headless Chromium) against an Express app with the addon:
// the page's EventSource gets plain and named events, comes back by itself
// after the server drops the stream, with Last-Event-ID, and gets what it
// missed from the history; the screenshot shows them.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const SSE = require('../..')
const { launch, waitUntil, inkOf, keepShot, eventSourcePage } = require('../helpers/browser')

let browser
before(async () => {
  browser = await launch()
})
after(async () => {
  if (browser) await browser.close()
})

/** An Express app: the page at /, the stream at /events (after a middleware header). */
async function startApp(options) {
  const sse = new SSE(null, options)
  const app = express()
  app.get('/', (req, res) => res.type('html').send(eventSourcePage('/events', ['message', 'greeting'])))
  app.get(
    '/events',
    (req, res, next) => {
      res.setHeader('X-From-Middleware', 'yes')
      next()
    },
    (req, res) => sse.handleRequest(req, res)
  )
  const server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s))
  })
  const stop = async () => {
    await sse.close()
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  }
  return { sse, server, port: server.address().port, stop }
}

for (const transport of ['auto', 'fallback']) {
  test(`Chromium's EventSource through Express (${transport}): events, named events, reconnect with Last-Event-ID, screenshot`, async (t) => {
    const { sse, port, stop } = await startApp({ history: 10, heartbeat: 0, retry: 100, transport })
    t.after(stop)
    const connections = []
    sse.on('connection', (client) => connections.push(client))

    const page = await browser.context.newPage()
    t.after(() => page.close())
    await page.goto(`http://127.0.0.1:${port}/`)
    await waitUntil(() => connections.length === 1 && page.evaluate(() => window.opens === 1), 10000, 'the first connection')
    const first = connections[0]
    assert.equal(first.transport, transport === 'auto' ? 'native' : 'fallback')
    assert.equal(first.lastEventId, null)

    sse.broadcast({ id: 1, data: 'one' })
    sse.broadcast({ id: 2, event: 'greeting', data: 'hello from the hub' })
    first.send({ event: 'unlistened', data: 'no listener for this type' })
    await waitUntil(() => page.evaluate(() => window.received.length === 2), 5000, 'two events in the page')

    // The server drops the stream; the browser must come back by itself with
    // Last-Event-ID 2 and get the event it missed, then live ones.
    first.close()
    sse.broadcast({ id: 3, data: 'missed while away' })
    await waitUntil(() => connections.length === 2, 10000, 'the browser to reconnect')
    const second = connections[1]
    assert.equal(second.lastEventId, '2')
    sse.broadcast({ id: 4, event: 'greeting', data: 'live again' })

    const received = await waitUntil(
      () => page.evaluate(() => (window.received.length >= 4 ? window.received : null)),
      5000,
      'four events in the page'
    )
    assert.deepEqual(received, [
      { type: 'message', data: 'one', id: '1' },
      { type: 'greeting', data: 'hello from the hub', id: '2' },
      { type: 'message', data: 'missed while away', id: '3' },
      { type: 'greeting', data: 'live again', id: '4' },
    ])
    assert.equal(await page.evaluate(() => window.opens), 2)

    // What a person sees: four lines of text in the list.
    const log = page.locator('#log')
    assert.equal((await log.innerText()).split('\n').length, 4)
    const png = await log.screenshot()
    keepShot(`addon-${transport}`, png)
    const shot = inkOf(png)
    assert.ok(shot.width > 100 && shot.height > 40, `screenshot ${shot.width}x${shot.height}`)
    assert.ok(shot.colors > 2 && shot.ink > 500, `screenshot is blank: ${JSON.stringify(shot)}`)
  })
}
