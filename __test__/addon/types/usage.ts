// Compiled by types.test.js with `tsc --strict`: the public API as users write it.
import * as http from 'node:http'
import SSE = require('../../..')

const server = http.createServer((_req, res) => res.end('ok'))
const sse = new SSE(server, {
  path: '/events/*',
  verifyRequest: async (req) => req.headers.authorization === 'Bearer x',
  heartbeat: 10_000,
  retry: 3000,
  headers: { 'Access-Control-Allow-Origin': '*', 'X-Accel-Buffering': 'no' },
  history: 100,
  maxQueueBytes: 1 << 20,
  maxClients: 10_000,
})

sse.on('connection', (client: SSE.Client, query) => {
  const room: string | string[] | undefined = query.room
  client.send('hello')
  client.send('update', { n: 1 }, 7)
  client.send({ event: 'tick', data: 42, id: 'a1', retry: 5000 })
  client.join(typeof room === 'string' ? room : 'lobby')
  client.on('close', (reason: SSE.CloseReason) => {
    const ok: boolean = client.send('late')
    void ok
    void reason
  })
  const id: number = client.id
  const last: string | null = client.lastEventId
  void id
  void last
})

const reached: number = sse.broadcast({ data: 'all', id: 1 })
sse.publish(['a', 'b'], 'news', 'text')
const stats: SSE.Stats = sse.stats()
void reached
void stats
sse.close().then(() => server.close())

// HTTP/2 (compat API) requests, the 'native' transport, the resolved options.
import * as http2 from 'node:http2'
const h2 = http2.createServer()
const h2sse = new SSE(h2, { transport: 'native', historyBytes: 1 << 20, refuse: 'retry', retryAfter: 2000 })
h2.on('request', (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
  const client = h2sse.handleRequest(req, res)
  client.join('h2') // never null: no check needed
  const transport: 'native' | 'fallback' | 'none' = client.transport
  void transport
})
const heartbeat: number = h2sse.options.heartbeat
const mode: 'auto' | 'native' | 'fallback' = h2sse.options.transport
const failures: number = h2sse.stats().takeoverFailures
void heartbeat
void mode
void failures

// With Redis: publish and broadcast return a Promise of the event's id.
const scaled = new SSE(null, { redis: { url: 'redis://127.0.0.1:6379/0', prefix: 'app:' }, history: 1000 })
const published: Promise<string | null> = scaled.publish('room', 'hi')
const everywhere: Promise<string | null> = scaled.broadcast({ event: 'tick', data: 1 })
const bus: SSE.BusStats | null = scaled.stats().bus
void published.then((id) => id?.length)
void everywhere
void bus?.connected
const local: number = new SSE(null, { redis: null }).broadcast('x')
void local
