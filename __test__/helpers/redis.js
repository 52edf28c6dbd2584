'use strict'
// The scale-out tests' helpers: a real Redis (scripts/redis-server.js) and
// the SSE events of a stream body.

const { haveRedis, startRedis, startCluster, freePort } = require('../../bench/lib/redis-server')

/** The SSE events of a stream body, as `{ id, event, data }`. */
function events(body) {
  const out = []
  for (const block of body.split('\n\n')) {
    if (block === '' || block.startsWith(':')) continue
    const e = { id: null, event: 'message', data: [] }
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) e.id = line.slice(4)
      else if (line.startsWith('event: ')) e.event = line.slice(7)
      else if (line.startsWith('data: ')) e.data.push(line.slice(6))
    }
    if (e.data.length === 0 && e.event === 'message') continue
    out.push({ ...e, data: e.data.join('\n') })
  }
  return out
}

module.exports = { haveRedis, startRedis, startCluster, freePort, events }
