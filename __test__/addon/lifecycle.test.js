'use strict'
// Disconnects in both directions with their reasons, sse.close() and
// server.close(), the client limit, ids and addresses.

const test = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const path = require('node:path')
const { spawn } = require('node:child_process')
const { startSse, get, nextConnection, eventually, SSE } = require('../helpers/addon')

for (const transport of ['auto', 'fallback']) {
  test(`a client that disconnects is reported with reason 'client' (${transport})`, async (t) => {
    const { sse, port, stop } = await startSse({ transport })
    t.after(stop)
    const connected = nextConnection(sse)
    const raw = get(port, '/sse')
    const { client } = await connected
    await raw.bodyIncludes(':ok')
    const closed = new Promise((resolve) => client.on('close', resolve))
    raw.destroy()
    assert.equal(await closed, 'client')
    assert.equal(client.closed, true)
    assert.equal(sse.clients, 0)
    assert.equal(client.send('x'), false)
  })
}

test('client fields: id, remoteAddress, lastEventId, req, transport', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const a = nextConnection(sse)
  const rawA = get(port, '/sse', { 'Last-Event-ID': '41' })
  const { client: first } = await a
  const b = nextConnection(sse)
  const rawB = get(port, '/sse?lastEventId=7')
  const { client: second } = await b
  assert.notEqual(first.id, second.id)
  assert.equal(first.remoteAddress, '127.0.0.1')
  assert.equal(first.lastEventId, '41')
  assert.equal(second.lastEventId, '7')
  assert.equal(first.req.url, '/sse')
  assert.equal(first.transport, 'native')
  assert.equal(sse.clients, 2)
  rawA.destroy()
  rawB.destroy()
})

test('sse.close() delivers everything sent before it, then ends every stream', async (t) => {
  const { sse, port, server } = await startSse()
  const clients = []
  sse.on('connection', (client) => clients.push(client))
  const raws = [get(port, '/sse'), get(port, '/sse'), get(port, '/sse', {}, '1.0')]
  await eventually(() => clients.length === 3)
  const reasons = []
  clients.forEach((c) => c.on('close', (r) => reasons.push(r)))
  for (let i = 0; i < 100; i++) sse.broadcast(`event ${i}`)
  const done = sse.close()
  assert.equal(sse.close(), done, 'a second close is the same promise')
  await done
  assert.deepEqual(reasons, ['shutdown', 'shutdown', 'shutdown'])
  for (const raw of raws) {
    await raw.closed()
    const events = raw.body.split('\n\n').filter((e) => e.startsWith('data: '))
    assert.equal(events.length, 100)
    assert.equal(events[99], 'data: event 99')
  }
  assert.ok(raws[0].text.endsWith('0\r\n\r\n'))
  const late = get(port, '/sse')
  await late.until((r) => r.head !== null)
  assert.match(late.head, /^HTTP\/1\.1 503/)
  late.destroy()
  await new Promise((r) => server.close(r))
})

test('server.close() stops listening; open streams go on until sse.close(), then the server closes (as with sse)', async () => {
  const { sse, port, server } = await startSse()
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  let serverClosed = false
  const closing = new Promise((resolve) => server.close(() => resolve((serverClosed = true))))
  await new Promise((r) => setTimeout(r, 50))
  assert.equal(server.listening, false)
  assert.equal(serverClosed, false, 'the open stream keeps server.close() waiting')
  assert.equal(client.send('still here'), true)
  await raw.bodyIncludes('data: still here')
  const closed = new Promise((resolve) => client.on('close', resolve))
  await sse.close()
  assert.equal(await closed, 'shutdown')
  await raw.closed()
  await closing
})

test('an open native stream keeps the process up after server.close(), as with sse; it exits once the stream ends', async (t) => {
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'stream-keeps-process.js')], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)))
  await eventually(() => /^\d+\n/.test(out), 10000, 'the port')
  const raw = get(Number(out.split('\n')[0]), '/sse')
  await raw.bodyIncludes('data: still here', 5000)
  assert.match(out, /closed/)
  assert.equal(child.exitCode, null, 'still up while its stream is open')
  raw.destroy()
  assert.equal(await exited, 0, 'and gone once it ended')
})

test('past maxClients new clients get 503 and existing ones are untouched', async (t) => {
  const { sse, port, stop } = await startSse({ maxClients: 2 })
  t.after(stop)
  const clients = []
  sse.on('connection', (c) => clients.push(c))
  const ok = [get(port, '/sse'), get(port, '/sse')]
  await eventually(() => clients.length === 2)
  const refused = get(port, '/sse')
  await refused.until((r) => r.head !== null)
  assert.match(refused.head, /^HTTP\/1\.1 503/)
  sse.broadcast('still here')
  for (const raw of ok) await raw.bodyIncludes('data: still here')
  ok[0].destroy()
  await eventually(() => sse.clients === 1)
  const again = get(port, '/sse')
  await again.bodyIncludes(':ok')
  for (const raw of [ok[1], refused, again]) raw.destroy()
})

test('stats count clients and deliveries', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const clients = []
  sse.on('connection', (c) => clients.push(c))
  const raws = [get(port, '/sse'), get(port, '/sse')]
  await eventually(() => clients.length === 2)
  sse.broadcast('a')
  sse.broadcast('b')
  const s = sse.stats()
  assert.equal(s.clients, 2)
  assert.equal(s.nativeClients, 2)
  assert.equal(s.eventsPublished, 2)
  assert.equal(s.eventsDelivered, 4)
  raws.forEach((r) => r.destroy())
})

test('SSE without a server and with an unused hub can be created and closed', async () => {
  const sse = new SSE(null, { path: '/x' })
  assert.equal(sse.clients, 0)
  await sse.close()
  await sse.close()
  const server = http.createServer()
  const other = new SSE(server)
  await other.close()
})

test('an adopted client keeps its addresses but not Node\'s destroyed socket', async (t) => {
  const { sse, port, stop } = await startSse()
  t.after(stop)
  const connected = nextConnection(sse)
  const raw = get(port, '/sse')
  const { client } = await connected
  assert.equal(client.transport, 'native')
  assert.equal(client.req.socket.remoteAddress, '127.0.0.1')
  assert.equal(client.req.socket.localPort, port)
  assert.equal(client.req.socket.destroyed, false, 'open while the stream is')
  assert.ok(!(client.req.socket instanceof require('node:net').Socket), 'a stand-in, not the Socket')
  assert.equal(client.res.socket, client.req.socket)
  const gone = new Promise((resolve) => client.on('close', resolve))
  raw.destroy()
  await gone
  assert.equal(client.req.socket.destroyed, true)
})
