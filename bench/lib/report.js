'use strict'
// Turns the suite's results into bench/RESULTS.md (tables and targets),
// bench/results.json (everything, for scripts) and bench/chart.svg.

const fs = require('node:fs')
const path = require('node:path')
const { renderChart } = require('./chart')

const int = (n) => (n === null || n === undefined || Number.isNaN(n) ? 'n/a' : Math.round(n).toLocaleString('en-US'))
const fixed = (n, digits = 1) => (n === null || n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(digits))
const ms = (us) => (us === null || us === undefined ? 'n/a' : fixed(us / 1000, us < 10_000 ? 2 : 1))
const pct = (x) => (x === null || x === undefined ? 'n/a' : `${fixed(x * 100, x < 0.1 ? 2 : 1)}%`)

/**
 * A 1-minute load average above this means other work competed: the
 * suite's own previous case (client + server) accounts for about the
 * number of cores.
 */
const BUSY_LOAD = require('node:os').cpus().length + 1.5

/** Why a case has no figures, or a short note about the ones it has. */
function caseNote(result, formatRepeat = int) {
  if (!result) return 'not run'
  if (result.skip) return `skipped: ${result.skip}`
  if (result.error) return `error: ${result.error}`
  const notes = []
  if (result.timedOut) notes.push(`**timed out**: delivered ${int(result.delivered)} of ${int(result.expected)}`)
  if (result.connect && result.connect.failed > 0) notes.push(`${int(result.connect.failed)} connections failed`)
  if (!result.serverFinished && !result.timedOut) notes.push('server did not report')
  if (result.repeats) {
    const spread = result.repeats.map(formatRepeat).join(', ')
    notes.push(`median of ${result.repeats.length} runs (${spread})${result.failedRepeats ? `, ${result.failedRepeats} failed` : ''}`)
  }
  if (result.load1 > BUSY_LOAD) notes.push(`machine busy at the start (load ${fixed(result.load1, 1)})`)
  return notes.join('; ')
}

const hasFigures = (result) => result && !result.skip && !result.error

/** A server's deliveries/s as a share of the ceiling's in the same table. */
function shareOfCeiling(byServer, r) {
  const ceiling = byServer.ceiling
  if (!hasFigures(ceiling) || !(ceiling.deliveriesPerSec > 0) || !hasFigures(r)) return null
  return r.deliveriesPerSec / ceiling.deliveriesPerSec
}

function burstTable(byServer, servers) {
  const base = byServer['sse-008']
  const rows = servers.map((server) => {
    const r = byServer[server.name]
    if (!hasFigures(r)) return `| ${server.label} | | | | | | | ${caseNote(r)} |`
    const ratio = hasFigures(base) && base.deliveriesPerSec > 0 ? `${fixed(r.deliveriesPerSec / base.deliveriesPerSec, 1)}x` : 'n/a'
    const busy = r.spanMs > 0 ? pct(r.clientCpuMs / r.spanMs) : 'n/a'
    const share = shareOfCeiling(byServer, r)
    return `| ${server.label} | ${int(r.deliveriesPerSec)} | ${share === null ? 'n/a' : pct(share)} | ${ratio} | ${pct(r.delivered / r.expected)} | ${fixed(r.cpuUsPerDelivery, 2)} | ${busy} | ${caseNote(r, (v) => `${int(v)}/s`)} |`
  })
  return [
    '| server | deliveries/s | share of ceiling | vs sse 0.0.8 | delivered | server CPU µs/delivery | load client busy | note |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    ...rows,
  ].join('\n')
}

function pacedTable(byServer, servers) {
  const rows = servers.map((server) => {
    const r = byServer[server.name]
    if (!hasFigures(r)) return `| ${server.label} | | | | | | | | | ${caseNote(r)} |`
    const lat = r.latencyUs || {}
    const elu = server.js ? pct(r.elu) : 'no JS'
    const delay = server.js ? fixed(r.loopDelayP99Ms, 2) : 'no JS'
    const busy = r.spanMs > 0 ? pct(r.clientCpuMs / r.spanMs) : 'n/a'
    return `| ${server.label} | ${ms(lat.p50)} | ${ms(lat.p99)} | ${ms(lat.max)} | ${pct(r.delivered / r.expected)} | ${elu} | ${delay} | ${fixed(r.cpuUsPerDelivery, 2)} | ${busy} | ${caseNote(r, (v) => `p99 ${ms(v)} ms`)} |`
  })
  return [
    '| server | latency p50 ms | p99 ms | max ms | delivered | JS event-loop utilisation | loop delay p99 ms | server CPU µs/delivery | load client busy | note |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows,
  ].join('\n')
}

/** Connect figures of a server at one client count: from its burst run, else its paced run. */
function connectOf(results, clients, name) {
  for (const key of ['burst', 'paced']) {
    const r = (results[key][clients] || {})[name]
    if (hasFigures(r) || (r && r.connect)) return r.connect
  }
  return null
}

function connectTable(results, clients, servers) {
  const rows = servers.map((server) => {
    const c = connectOf(results, clients, server.name)
    if (!c) return `| ${server.label} | | | | | | not measured |`
    const failed = c.failed > 0 ? `${int(c.failed)} failed: ${Object.keys(c.errors || {}).join(', ')}` : ''
    const busy = c.connectMs > 0 && c.clientCpuMs !== undefined ? pct(c.clientCpuMs / c.connectMs) : 'n/a'
    return `| ${server.label} | ${int(c.established)} | ${int(c.acceptsPerSec)} | ${busy} | ${fixed(c.rssPerConnKiB, 2)} | ${fixed(c.rssIdleKiB / 1024, 1)} | ${failed} |`
  })
  return [
    '| server | connected | accepts/s | load client busy | RSS per idle connection KiB | RSS with them MiB | note |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...rows,
  ].join('\n')
}

function idleSection(idle, options) {
  const title = `## Daemon alone: ${int(options.idleClients)} idle connections`
  if (!idle) return `${title}\n\nNot run${options.idle ? '' : ' (--no-idle)'}.`
  if (idle.skip || idle.error) return `${title}\n\n${idle.skip ? 'Skipped' : 'Error'}: ${idle.skip || idle.error}`
  const c = idle.connect
  const lines = [
    title,
    '',
    '| asked | connected | failed | accepts/s | load client busy | RSS total MiB | RSS per idle connection KiB |',
    '|---:|---:|---:|---:|---:|---:|---:|',
    `| ${int(c.requested)} | ${int(c.established)} | ${int(c.failed)} | ${int(c.acceptsPerSec)} | ${c.connectMs > 0 ? pct(c.clientCpuMs / c.connectMs) : 'n/a'} | ${fixed(c.rssIdleKiB / 1024, 1)} | ${fixed(c.rssPerConnKiB, 2)} |`,
  ]
  if (c.errors && c.errors.fd_limit) {
    lines.push(
      '',
      `The load client hit the open-files limit (RLIMIT_NOFILE = ${int(c.nofileLimit)}) after ${int(c.established)} connections: ` +
        'this machine caps every process at that many open files (hard limit), so it cannot open more.'
    )
  }
  for (const [kind, e] of Object.entries(c.errors || {})) {
    if (kind === 'fd_limit') continue
    const hint = kind === 'timeout' ? ' (a server out of file descriptors leaves connections unanswered like this)' : ''
    lines.push('', `${int(e.count)} connections failed (${kind}): ${e.first}${hint}`)
  }
  return lines.join('\n')
}

/** "Cost as work grows": per server, deliveries/s and CPU by client count. */
function growthSection(growth, servers) {
  const counts = Object.keys(growth || {}).map(Number).sort((a, b) => a - b)
  if (counts.length < 2) return ''
  const base = int(counts[0])
  const lines = [
    '## Cost as work grows',
    '',
    'Burst deliveries/s and server CPU per delivery by number of clients (counts the main tables ran are the same runs). ' +
      'Flat is the aim: the cost of one delivery should not depend on how many clients there are. ' +
      'Share of ceiling: against the ceiling at the same client count.',
  ]
  const grown = []
  for (const server of servers.filter((s) => counts.some((c) => growth[c][s.name] !== undefined))) {
    lines.push('', `### ${server.label}`, '', `| clients | deliveries/s | share of ceiling | CPU µs/delivery | CPU vs ${base} clients |`, '|---:|---:|---:|---:|---:|')
    const first = growth[counts[0]][server.name]
    const over = []
    let compared = 0
    for (const clients of counts) {
      const r = growth[clients][server.name]
      if (!hasFigures(r)) {
        lines.push(`| ${int(clients)} | ${caseNote(r)} | | | |`)
        continue
      }
      const rel = hasFigures(first) && first.cpuUsPerDelivery > 0 && r.cpuUsPerDelivery !== null ? r.cpuUsPerDelivery / first.cpuUsPerDelivery : null
      if (rel !== null && clients !== counts[0]) compared++
      if (rel !== null && rel > 1.25) over.push(`${int(clients)} (${fixed(rel, 2)}x)`)
      const share = shareOfCeiling(growth[clients], r)
      lines.push(
        `| ${int(clients)} | ${int(r.deliveriesPerSec)}${r.timedOut ? ' (timed out)' : ''} | ${share === null ? 'n/a' : pct(share)} | ${fixed(r.cpuUsPerDelivery, 3)} | ${rel === null ? 'n/a' : `${fixed(rel, 2)}x`} |`
      )
    }
    if (over.length) {
      grown.push(server.label)
      lines.push('', `Not flat: CPU per delivery is more than 25% above its ${base}-client figure at ${over.join(', ')} clients.`)
    } else if (compared > 0) {
      lines.push('', `Flat: CPU per delivery stays within 25% of its ${base}-client figure.`)
    } else {
      lines.push('', `Not enough figures to tell whether it is flat.`)
    }
  }
  lines.push(
    '',
    grown.length
      ? `CPU per delivery grows by more than 25% from ${base} clients for: ${grown.join('; ')}.`
      : `CPU per delivery stays within 25% of its ${base}-client figure wherever it was measured.`
  )
  return lines.join('\n')
}

/** The scale-out bars: what Redis adds, three nodes against one node alone. */
function scaleBars(scale) {
  if (!scale || scale.skip) return []
  const burst = scale.burst || {}
  const paced = scale.paced || {}
  const ok = (r) => hasFigures(r) && r.delivered > 0
  const p50 = (key) => (ok(paced[key]) ? paced[key].latencyUs.p50 : null)
  const cpu = (key) => (ok(burst[key]) ? burst[key].cpuUsPerDelivery : null)
  // The hop alone: one node on Redis against the same node without it
  // (three nodes add two load clients and two processes on the same cores).
  const added = p50('redis1') !== null && p50('local') !== null ? p50('redis1') - p50('local') : null
  const cpuRatio = cpu('redis3') !== null && cpu('local') ? cpu('redis3') / cpu('local') : null
  const perEvent = (key) => (ok(burst[key]) ? burst[key].redisCommandsPerEvent : null)
  const same = perEvent('redis1') !== null && perEvent('redis3') !== null ? perEvent('redis3') - perEvent('redis1') : null
  return [
    ['scale-out: p50 added by the Redis hop (one node on Redis vs alone, paced)', added, (v) => `${fixed(v / 1000, 2)} ms (${ms(p50('redis1'))} vs ${ms(p50('local'))}; 3 nodes: ${ms(p50('redis3'))})`, '≤ 1 ms', (v) => v <= 1000],
    ['scale-out: CPU per delivery, 3 nodes on Redis / one node alone (burst)', cpuRatio, (v) => `${fixed(v, 2)} (${fixed(cpu('redis3'), 3)} / ${fixed(cpu('local'), 3)} µs)`, '≤ 1.15', (v) => v <= 1.15],
    ['scale-out: Redis commands per event, 3 nodes minus 1 node', same, (v) => `${fixed(v, 2)} (${fixed(perEvent('redis3'), 2)} vs ${fixed(perEvent('redis1'), 2)})`, '0 (constant)', (v) => Math.abs(v) < 0.5],
  ]
}

function scaleSection(scale, options) {
  if (!scale) return ''
  const lines = ['## Scale-out through Redis', '']
  if (scale.skip) return [...lines, `Not measured: ${scale.skip}.`].join('\n')
  lines.push(
    `Nodes are ssehub addon processes on one Redis (a redis-server the run starts, no persistence), ${int(scale.clients)} clients each, ` +
      `one load client per node; every event is published on the first node. Burst: ${int(options.burst)} events; paced: ${options.rate} events/s for ${options.pacedSeconds} s. ` +
      "CPU is summed over the nodes (Redis's own is not in it); latency is the worst node's. Redis commands are INFO's total_commands_processed.",
    '',
    '| set-up | clients | burst deliveries/s | burst CPU µs/delivery | paced p50 ms | paced p99 ms | Redis commands/event | scripts/event |',
    '|---|---:|---:|---:|---:|---:|---:|---:|'
  )
  const { SETUPS } = require('./scale')
  for (const setup of SETUPS) {
    const b = scale.burst[setup.key] || {}
    const p = scale.paced[setup.key] || {}
    if (!hasFigures(b)) {
      lines.push(`| ${setup.label} | ${b.skip || b.error || 'n/a'} ||||||| `)
      continue
    }
    const lat = hasFigures(p) ? p.latencyUs : {}
    lines.push(
      `| ${setup.label} | ${int(b.clients)} | ${int(b.deliveriesPerSec)}${b.timedOut ? ' (timed out)' : ''} | ${fixed(b.cpuUsPerDelivery, 3)} | ${ms(lat.p50)} | ${ms(lat.p99)} | ` +
        `${b.redisCommandsPerEvent === null ? '—' : fixed(b.redisCommandsPerEvent, 2)} | ${b.scriptsPerEvent === null ? '—' : fixed(b.scriptsPerEvent, 2)} |`
    )
  }
  return lines.join('\n')
}

/** The bus bars: publish rate through one Redis, and the hop's latency. */
function busBars(bus) {
  if (!bus || bus.skip) return []
  const rate = (mode, publishers) => {
    const r = bus.rates.find((x) => x.mode === mode && x.publishers === publishers)
    return r && !r.failed ? r.eventsPerSecond : null
  }
  const { hop, alone } = bus.latency
  const added = hop.p50Us !== null && alone.p50Us !== null ? hop.p50Us - alone.p50Us : null
  return [
    ['bus: events/s published through one Redis by 3 nodes (pipelined)', rate('pipelined', 3), (v) => `${int(v)} (1 node: ${int(rate('pipelined', 1))})`, '≥ 50,000', (v) => v >= 50_000],
    [`bus: p50 added between nodes by Redis at ${int(hop.rate)} events/s`, added, (v) => `${fixed(v / 1000, 2)} ms (${ms(hop.p50Us)} vs ${ms(alone.p50Us)} alone)`, '≤ 1 ms', (v) => v <= 1000],
    ['bus: a three-master Redis Cluster / one Redis (3 nodes, pipelined)', bus.cluster && !bus.cluster.skip && rate('pipelined', 3) ? bus.cluster.eventsPerSecond / rate('pipelined', 3) : null, (v) => `${fixed(v, 2)}x (${int(bus.cluster.eventsPerSecond)}/s; one prefix is one hash slot, so one master)`, '≥ 2.5x', (v) => v >= 2.5],
  ]
}

function busSection(bus) {
  if (!bus) return ''
  const lines = ['## The bus: publishing through Redis', '']
  if (bus.skip) return [...lines, `Not measured: ${bus.skip}.`].join('\n')
  lines.push(
    `Nodes are ssehub addon processes (\`history: ${bus.history}\`, ${bus.size}-byte events) on one redis-server ${bus.redis} the run starts (no persistence), ` +
      'all on this machine, which runs Redis, the nodes and the receiving client on the same cores. ' +
      'Publishers publish to one channel at once; a client of another node receives every event (checked). ' +
      'Pipelined: 512 publishes in flight per node (the bus sends what waits as one script call); awaited: each publish waits for the one before. ' +
      "Events/s is over the slowest publisher's time; Redis CPU is redis-server's share of one core meanwhile.",
    '',
    '| publishing | nodes | events/s | Redis CPU | failed | delivered |',
    '|---|---:|---:|---:|---:|---:|'
  )
  for (const r of bus.rates) {
    lines.push(`| ${r.mode} | ${r.publishers} | ${int(r.eventsPerSecond)} | ${pct(r.redisCpu)} | ${int(r.failed)} | ${int(r.delivered)} / ${int(r.published)} |`)
  }
  const { hop, alone } = bus.latency
  lines.push(
    '',
    `Publish-to-delivery at ${int(hop.rate)} events/s (each event carries its publish time; the receiving client is this process):`,
    '',
    '| path | p50 ms | p99 ms | max ms | received | Redis CPU |',
    '|---|---:|---:|---:|---:|---:|',
    `| published on one node, received on another, through Redis | ${ms(hop.p50Us)} | ${ms(hop.p99Us)} | ${ms(hop.maxUs)} | ${int(hop.received)} / ${int(hop.sent)} | ${pct(hop.redisCpu)} |`,
    `| one node alone, no Redis | ${ms(alone.p50Us)} | ${ms(alone.p99Us)} | ${ms(alone.maxUs)} | ${int(alone.received)} / ${int(alone.sent)} | — |`,
    ''
  )
  const c = bus.cluster
  lines.push(
    c.skip
      ? `Redis Cluster: not measured (${c.skip}).`
      : `On a three-master Redis Cluster (no replicas, the masters on these cores too), 3 nodes pipelined: ${int(c.eventsPerSecond)} events/s, the masters' CPU summed ${pct(c.redisCpu)}, ` +
          `${int(c.failed)} failed, ${int(c.delivered)} / ${int(c.published)} delivered. Every key of a prefix is in one hash slot (see the README's Redis Cluster), so one master does the bus's work.`
  )
  return lines.join('\n')
}

/** The issue's targets, each with its measured value and PASS/MISS. */
function targets(report) {
  const { results, options } = report
  const clients = Math.max(...options.clients)
  const burst = results.burst[clients] || {}
  const paced = results.paced[clients] || {}
  const rate = (name) => (hasFigures(burst[name]) ? burst[name].deliveriesPerSec : null)
  const ratio = (a, b) => (a !== null && b ? a / b : null)
  const p99 = (name) => (hasFigures(paced[name]) && paced[name].latencyUs ? paced[name].latencyUs.p99 : null)
  const rss = (name) => {
    const c = connectOf(results, clients, name)
    return c ? c.rssPerConnKiB : null
  }
  const idle = results.idle && results.idle.connect ? results.idle.connect.rssPerConnKiB : rss('channels')
  const broadcastVsSse = ratio(rate('ssehub-broadcast'), rate('sse-008'))
  const dropinVsSse = ratio(rate('ssehub-dropin'), rate('sse-008'))
  const elu = hasFigures(paced['ssehub-broadcast']) ? paced['ssehub-broadcast'].elu : null
  const hubOverPlain = ratio(p99('ssehub-broadcast'), p99('plain-node'))
  const showLatencyRatio = (v) => `${fixed(v, 2)} (${ms(p99('ssehub-broadcast'))} / ${ms(p99('plain-node'))} ms)`
  const share = (name) => ratio(rate(name), rate('ceiling'))
  const informative = () => true
  return {
    clients,
    rows: [
      ['burst: ssehub broadcast deliveries/s vs sse 0.0.8', broadcastVsSse, (v) => `${fixed(v, 1)}x`, '≥ 50x', (v) => v >= 50],
      ['burst: ssehub drop-in client.send loop vs sse 0.0.8', dropinVsSse, (v) => `${fixed(v, 1)}x`, '≥ 15x', (v) => v >= 15],
      ['burst: ssehub daemon (channels, default logging) deliveries/s', rate('channels'), int, '≥ 2,000,000', (v) => v >= 2_000_000],
      ['burst: share of the ceiling, broadcast / drop-in / daemon', share('ssehub-broadcast'), (v) => `${pct(v)} / ${pct(share('ssehub-dropin'))} / ${pct(share('channels'))}`, '—', informative],
      ['paced: JS event-loop utilisation, ssehub broadcast', elu, pct, '≤ 2%', (v) => v <= 0.02],
      ['paced: p99 latency, ssehub broadcast / plain Node', hubOverPlain, showLatencyRatio, '≤ 0.25', (v) => v <= 0.25],
      ['paced: p99 latency, ceiling / plain Node (the floor of the row above)', ratio(p99('ceiling'), p99('plain-node')), (v) => `${fixed(v, 2)} (${ms(p99('ceiling'))} ms)`, '—', informative],
      ['RSS per idle connection, ssehub addon (broadcast server)', rss('ssehub-broadcast'), (v) => `${fixed(v, 2)} KiB`, '≤ 6 KiB', (v) => v <= 6],
      [`RSS per idle connection, ssehub daemon${results.idle && results.idle.connect ? ` (${int(results.idle.connect.established)} idle)` : ''}`, idle, (v) => `${fixed(v, 2)} KiB`, '≤ 3 KiB', (v) => v <= 3],
      ...scaleBars(results.scale),
      ...busBars(results.bus),
    ],
  }
}

function targetsTable(report) {
  const { clients, rows } = targets(report)
  const lines = [
    `Measured at ${int(clients)} clients${clients === 10000 ? '' : ' (the targets are stated for 10,000)'}.`,
    '',
    '| target | measured | goal | result |',
    '|---|---:|---:|---|',
  ]
  for (const [name, value, format, goal, ok] of rows) {
    const measured = value === null || value === undefined || Number.isNaN(value) ? 'not measured' : format(value)
    const verdict = measured === 'not measured' || goal === '—' ? '—' : ok(value) ? 'PASS' : 'MISS'
    lines.push(`| ${name} | ${measured} | ${goal} | ${verdict} |`)
  }
  return lines.join('\n')
}

function machineSection({ machine, run, options }) {
  const gib = (machine.memoryBytes / 2 ** 30).toFixed(1)
  const load = (l) => (l || []).map((x) => x.toFixed(2)).join(' ')
  return [
    `- Machine: ${machine.cores} cores (${machine.cpuModel}), ${gib} GiB memory, ${machine.platform}`,
    `- Node ${machine.node}; load average ${load(machine.loadAvgStart)} at the start, ${load(machine.loadAvgEnd)} at the end`,
    `- Run: \`${run.command}\`, ${run.started}, ${Math.round(run.seconds)} s`,
    `- Events: ${options.size}-byte data; burst: ${int(options.burst)} broadcasts (time limit ${options.burstTimeout} s); ` +
      `paced: ${options.rate} events/s for ${options.pacedSeconds} s`,
    `- Load client: bench/loadgen (Rust, tokio, ${options.loadgenThreads} thread${options.loadgenThreads > 1 ? 's' : ''}), on the same machine`,
  ].join('\n')
}

function renderMarkdown(report) {
  const { results, options, servers } = report
  const shown = servers.filter((s) => options.servers.includes(s.name))
  const sections = [
    '# ssehub benchmark results',
    '',
    'Generated by `npm run bench` (bench/run.js); methodology in [README.md](README.md).',
    '',
    machineSection(report),
    '',
    '## Targets',
    '',
    targetsTable(report),
    '',
    '![burst deliveries per second and paced p99 latency by server](chart.svg)',
  ]
  for (const clients of options.clients) {
    sections.push(
      '',
      `## ${int(clients)} clients`,
      '',
      `### Burst: ${int(options.burst)} broadcasts as fast as the server takes them`,
      '',
      burstTable(results.burst[clients] || {}, shown),
      '',
      `### Paced: ${options.rate} events/s to every client for ${options.pacedSeconds} s`,
      '',
      'Latency is from each event\'s scheduled send time to its arrival at the load client.',
      '',
      pacedTable(results.paced[clients] || {}, shown),
      '',
      '### Connections',
      '',
      connectTable(results, clients, shown)
    )
  }
  sections.push('', idleSection(results.idle, options), '', growthSection(results.growth, shown), '', scaleSection(results.scale, options), '', busSection(results.bus), '')
  return sections.join('\n')
}

/** Writes the three files into `dir`; returns their paths. */
function writeReport(report, dir) {
  fs.mkdirSync(dir, { recursive: true })
  const files = {
    md: path.join(dir, 'RESULTS.md'),
    json: path.join(dir, 'results.json'),
    svg: path.join(dir, 'chart.svg'),
  }
  fs.writeFileSync(files.md, renderMarkdown(report))
  fs.writeFileSync(files.json, JSON.stringify(report, null, 2) + '\n')
  fs.writeFileSync(files.svg, renderChart(report))
  return Object.values(files)
}

module.exports = { writeReport, renderMarkdown, targets }
