'use strict'
// better-sse 0.16.1 with its defaults: one session per request, all
// registered on one channel, channel.broadcast(data). Its default
// serializer is JSON, so data arrives quoted (the load client allows it).
const { runHttpServer, notFound } = require('./common')

runHttpServer((server) => {
  const { createSession, createChannel } = require('better-sse')
  const channel = createChannel()
  server.removeAllListeners('request')
  server.on('request', async (req, res) => {
    if (req.url !== '/sse') return notFound(req, res)
    try {
      channel.register(await createSession(req, res))
    } catch {
      res.destroy()
    }
  })
  return {
    broadcast: (data) => channel.broadcast(data),
    clients: () => channel.sessionCount,
  }
})
