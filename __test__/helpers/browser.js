'use strict'
// Helpers for the browser tests: Debian's headless Chromium driven by
// playwright-core, a fresh profile per browser, pages served at a given
// origin, and a screenshot check that looks at the pixels.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const zlib = require('node:zlib')

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/**
 * Starts Chromium with a fresh temporary profile. Throws a clear error if
 * Chromium is not installed: these tests never skip (.ci/run installs it).
 * Returns { context, close }; `close` removes the profile too.
 * `contextOptions` go to Playwright (say, `ignoreHTTPSErrors` for a test
 * certificate).
 */
async function launch(contextOptions = {}) {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: the browser tests need it. ` +
        'Install it with `apt-get install -y chromium` (.ci/run does this), or set CHROMIUM_PATH.'
    )
  }
  const { chromium } = require('playwright-core')
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ssehub-chromium-'))
  let context
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 800, height: 600 },
      ...contextOptions,
    })
  } catch (err) {
    fs.rmSync(profile, { recursive: true, force: true })
    throw err
  }
  const close = async () => {
    try {
      await context.close()
    } finally {
      fs.rmSync(profile, { recursive: true, force: true })
    }
  }
  return { context, close }
}

/**
 * Opens `html` as the document at `url` without a server for it (the page
 * then has that URL's origin, so its requests to the daemon are same-origin).
 * The interception is removed once the page has loaded: the streams that
 * follow go straight to the network.
 */
async function openAt(context, url, html) {
  const page = await context.newPage()
  const handler = (route) => route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html })
  await page.route(url, handler)
  await page.goto(url)
  await page.unroute(url, handler)
  return page
}

/** Resolves once `fn()` (maybe async) is truthy, polling; rejects with `what` after `ms`. */
async function waitUntil(fn, ms, what) {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await fn()
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Decodes an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes). */
function decodePng(buffer) {
  if (buffer.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG')
  let at = 8
  let width, height, colorType, depth, interlace
  const idat = []
  while (at < buffer.length) {
    const length = buffer.readUInt32BE(at)
    const type = buffer.toString('latin1', at + 4, at + 8)
    const data = buffer.subarray(at + 8, at + 8 + length)
    if (type === 'IHDR') {
      width = data.readUInt32BE(0)
      height = data.readUInt32BE(4)
      depth = data[8]
      colorType = data[9]
      interlace = data[12]
    } else if (type === 'IDAT') idat.push(data)
    else if (type === 'IEND') break
    at += 12 + length
  }
  if (depth !== 8 || (colorType !== 2 && colorType !== 6) || interlace !== 0) {
    throw new Error(`unsupported PNG (depth ${depth}, color type ${colorType}, interlace ${interlace})`)
  }
  const bpp = colorType === 6 ? 4 : 3
  const raw = zlib.inflateSync(Buffer.concat(idat))
  const stride = width * bpp
  const pixels = Buffer.alloc(stride * height)
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1))
    const out = pixels.subarray(y * stride, (y + 1) * stride)
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : null
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[x - bpp] : 0
      const b = prev ? prev[x] : 0
      const c = prev && x >= bpp ? prev[x - bpp] : 0
      let v = line[x]
      if (filter === 1) v += a
      else if (filter === 2) v += b
      else if (filter === 3) v += (a + b) >> 1
      else if (filter === 4) {
        const p = a + b - c
        const pa = Math.abs(p - a)
        const pb = Math.abs(p - b)
        const pc = Math.abs(p - c)
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c
      } else if (filter !== 0) throw new Error(`bad PNG filter ${filter}`)
      out[x] = v & 0xff
    }
  }
  return { width, height, bpp, pixels }
}

/**
 * What a screenshot shows: its size, how many distinct colours, and how
 * many pixels differ from the most common one (the background).
 */
function inkOf(png) {
  const { width, height, bpp, pixels } = decodePng(png)
  const counts = new Map()
  for (let i = 0; i < pixels.length; i += bpp) {
    const key = (pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]
    counts.set(key, (counts.get(key) || 0) + 1)
  }
  let background = 0
  for (const n of counts.values()) background = Math.max(background, n)
  return { width, height, colors: counts.size, ink: width * height - background }
}

module.exports = { launch, openAt, waitUntil, decodePng, inkOf, CHROMIUM }

/**
 * A page whose EventSource listens to `url` for each event type in `types`
 * and shows every event in a list (#log). `window.received` holds
 * { type, data, id } for each; `window.opens` / `window.errors` count the
 * EventSource's open and error events (an error precedes each reconnect).
 */
function eventSourcePage(url, types) {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>ssehub in a browser</title>
<style>body { font: 16px sans-serif; margin: 16px; background: #fff; color: #111 } li { padding: 2px 0 }</style>
</head><body>
<h1>ssehub events</h1>
<ul id="log"></ul>
<script>
window.received = []
window.opens = 0
window.errors = 0
const log = document.getElementById('log')
const es = new EventSource(${JSON.stringify(url)})
window.es = es
function show(e) {
  window.received.push({ type: e.type, data: e.data, id: e.lastEventId })
  const li = document.createElement('li')
  li.textContent = e.type + ' #' + e.lastEventId + ': ' + e.data
  log.append(li)
}
for (const type of ${JSON.stringify(types)}) es.addEventListener(type, show)
es.onopen = () => { window.opens++ }
es.onerror = () => { window.errors++ }
</script>
</body></html>`
}

/** With SSEHUB_SHOTS=<folder>, keeps a screenshot there to look at. */
function keepShot(name, png) {
  if (process.env.SSEHUB_SHOTS) fs.writeFileSync(path.join(process.env.SSEHUB_SHOTS, `${name}.png`), png)
}

module.exports.eventSourcePage = eventSourcePage
module.exports.keepShot = keepShot
