'use strict'
// ssehub with the `redis` option: sse.broadcast() goes through Redis (one
// script: number, PUBLISH) and comes back to every node subscribed,
// this one included, which frames it once and fans it out in Rust. The
// scale-out benchmark runs several of these on one Redis
// (SSEHUB_BENCH_REDIS) and publishes on one.
const { runHttpServer, SkipError } = require('./common')
const { loadSsehub } = require('./ssehub-module')

runHttpServer((server) => {
  const url = process.env.SSEHUB_BENCH_REDIS
  if (!url) throw new SkipError('SSEHUB_BENCH_REDIS is not set')
  const SSE = loadSsehub()
  const sse = new SSE(server, { path: '/sse', redis: url })
  // As an app that publishes a stream of events would: without waiting
  // for each one's round trip (Redis takes them in order, pipelined); a
  // refused one is an error of the run.
  const failed = (err) => {
    console.error(`[ssehub-redis] publish refused: ${err.message}`)
    process.exitCode = 1
  }
  return {
    broadcast: (data) => {
      sse.broadcast(data).catch(failed)
    },
    clients: () => sse.clients,
    stop: () => sse.close(),
  }
})
