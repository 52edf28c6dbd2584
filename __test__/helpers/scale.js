'use strict'
// The scale-out tests' addon nodes and streams: nodes whose clients join
// the channels of their `ch` query, streams parsed into events, the warm-up
// that waits for a node to subscribe, and the first 'error' of an SSE.

const assert = require('node:assert')
const { events } = require('./redis')
const { startSse, get } = require('./addon')

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const datas = (list) => list.map((e) => e.data)
/** The events that are not gap notices. */
const live = (list) => list.filter((e) => e.event !== 'ssehub-gap')

/** An addon node whose clients join the channels of their `ch` query. */
async function addonNode(options) {
  const node = await startSse(options)
  node.sse.on('connection', (client, query) => {
    for (const c of String(query.ch || '').split(',').filter(Boolean)) client.join(c)
  })
  return node
}

/** An addon stream of `channels` on `node`: `.events()` parses what arrived. */
function addonStream(node, channels, headers = {}) {
  const c = get(node.port, `/sse?ch=${channels}`, headers)
  c.events = () => events(c.body)
  return c
}

/**
 * Publishes probes until client `c` gets one: its node has subscribed to
 * the channel (a node subscribes once a client joins, asynchronously).
 */
async function warm(c, publish) {
  for (let i = 0; !c.body.includes('data: warm'); i++) {
    if (i > 200) assert.fail('the node never subscribed')
    await publish('warm').catch(() => {})
    await sleep(25)
  }
}

/** The events after the last probe. */
const afterWarm = (list) => list.slice(list.findLastIndex((e) => e.data === 'warm') + 1)

/** The first 'error' `sse` emits, within `ms`. */
function firstError(sse, ms = 5000) {
  return new Promise((resolve, reject) => {
    sse.once('error', resolve)
    setTimeout(() => reject(new Error('no error event')), ms)
  })
}

module.exports = { datas, live, addonNode, addonStream, warm, afterWarm, firstError }
