'use strict'
// The client side of tests/churn.js, in its own process: opens and drops
// TOTAL connections to an SSE stream, CONCURRENCY at a time, in four ways
// in turn: clean close after the response head, reset (RST) after it,
// close right after sending the request, close without a request.
// A server that does not close a stream within 5 s of the client's clean
// close counts as lingered. Prints {"done":N,"heads":H,"lingered":L}.
// Usage: node churner.js PORT PATH TOTAL CONCURRENCY
const net = require('node:net')
const [port, path, total, concurrency] = process.argv.slice(2)
const TOTAL = Number(total)
let started = 0
let done = 0
let heads = 0
let lingered = 0

function one(kind) {
  return new Promise((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1')
    let text = ''
    const finish = () => { s.destroy(); resolve() }
    s.on('error', finish)
    s.on('close', finish)
    s.on('connect', () => {
      if (kind === 3) return s.end()
      s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)
      if (kind === 2) return s.destroy()
    })
    s.on('data', (d) => {
      text += d.toString('latin1')
      if (!text.includes('\r\n\r\n')) return
      heads++
      s.removeAllListeners('data')
      if (kind === 1) return s.resetAndDestroy()
      s.end()
      const timer = setTimeout(() => { lingered++; finish() }, 5000)
      s.on('close', () => clearTimeout(timer))
    })
  })
}

async function worker() {
  while (started < TOTAL) {
    const kind = started++ % 4
    await one(kind)
    done++
  }
}

Promise.all(Array.from({ length: Number(concurrency) }, worker)).then(() => {
  process.stdout.write(JSON.stringify({ done, heads, lingered }) + '\n')
})
