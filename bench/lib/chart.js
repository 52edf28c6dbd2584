'use strict'
// A dependency-free SVG chart of the results: two log-scale bar panels,
// burst deliveries per second and paced p99 latency, grouped by client
// count, one colour per server.

const COLORS = ['#d9480f', '#f08c00', '#1c7ed6', '#2f9e44', '#868e96', '#7048e8']
/** Reference bars keep one colour of their own, whatever else is shown. */
const FIXED_COLORS = { ceiling: '#212529' }
/** The colours of the shown servers, in order: the palette, in turn, for all but the fixed ones. */
const colorsOf = (servers) => {
  let next = 0
  return servers.map((server) => FIXED_COLORS[server.name] || COLORS[next++ % COLORS.length])
}
const WIDTH = 980
const PANEL = { top: 56, height: 260, left: 70, width: 380, gap: 110 }
const LEGEND_TOP = PANEL.top + PANEL.height + 48

const escape = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function compact(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k`
  if (n >= 10) return n.toFixed(0)
  return n.toFixed(n >= 1 ? 1 : 2)
}

function text(x, y, content, attrs = '') {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${escape(content)}</text>`
}

/** Decades spanning the values, for a log axis. */
function logRange(values) {
  const positive = values.filter((v) => v > 0)
  if (positive.length === 0) return { lo: 0, hi: 1 }
  const lo = Math.floor(Math.log10(Math.min(...positive)))
  const hi = Math.ceil(Math.log10(Math.max(...positive)))
  return { lo, hi: hi > lo ? hi : lo + 1 }
}

/**
 * One panel. `series[g][s]` is the value of server s in group g (null when
 * missing), `flags[g][s]` marks a bar whose run timed out.
 */
function panel(x0, title, unit, groups, series, flags, colors) {
  const { lo, hi } = logRange(series.flat().filter((v) => v !== null))
  const y = (v) => PANEL.top + PANEL.height - ((Math.log10(v) - lo) / (hi - lo)) * PANEL.height
  const out = [text(x0, PANEL.top - 24, title, 'font-weight="bold" font-size="14"')]
  for (let d = lo; d <= hi; d++) {
    const yy = y(10 ** d)
    out.push(`<line x1="${x0}" x2="${x0 + PANEL.width}" y1="${yy.toFixed(1)}" y2="${yy.toFixed(1)}" stroke="#dee2e6"/>`)
    out.push(text(x0 - 6, yy + 4, compact(10 ** d), 'text-anchor="end" font-size="11" fill="#495057"'))
  }
  out.push(text(x0 - 52, PANEL.top - 8, unit, 'font-size="11" fill="#495057"'))
  const groupWidth = PANEL.width / groups.length
  const barWidth = Math.min(36, (groupWidth - 20) / Math.max(1, series[0].length))
  groups.forEach((group, g) => {
    const gx = x0 + g * groupWidth + (groupWidth - barWidth * series[g].length) / 2
    series[g].forEach((value, s) => {
      const bx = gx + s * barWidth
      if (value === null || !(value > 0)) {
        out.push(text(bx + barWidth / 2, PANEL.top + PANEL.height - 4, '–', 'text-anchor="middle" font-size="11"'))
        return
      }
      const top = Math.min(y(value), PANEL.top + PANEL.height - 1)
      out.push(
        `<rect x="${(bx + 1).toFixed(1)}" y="${top.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" ` +
          `height="${(PANEL.top + PANEL.height - top).toFixed(1)}" fill="${colors[s]}"/>`
      )
      const label = compact(value) + (flags[g][s] ? '*' : '')
      out.push(text(bx + barWidth / 2, top - 4, label, 'text-anchor="middle" font-size="10"'))
    })
    out.push(text(x0 + (g + 0.5) * groupWidth, PANEL.top + PANEL.height + 18, group, 'text-anchor="middle" font-size="12"'))
  })
  out.push(`<line x1="${x0}" x2="${x0 + PANEL.width}" y1="${PANEL.top + PANEL.height}" y2="${PANEL.top + PANEL.height}" stroke="#212529"/>`)
  return out.join('\n')
}

/** `measured[s]`: whether server s has a bar anywhere in the chart. */
function legend(servers, measured, colors) {
  const perRow = 2
  return servers
    .map((server, i) => {
      const label = measured[i] ? server.label : `${server.label}: not run`
      const x = PANEL.left + (i % perRow) * 440
      const y = LEGEND_TOP + Math.floor(i / perRow) * 20
      return (
        `<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${colors[i]}"/>` +
        text(x + 18, y, label, 'font-size="12"')
      )
    })
    .join('\n')
}

function valuesOf(report, servers, key, pick) {
  return report.options.clients.map((clients) =>
    servers.map((server) => {
      const r = (report.results[key][clients] || {})[server.name]
      return r && !r.skip && !r.error ? pick(r) : null
    })
  )
}

function renderChart(report) {
  const servers = report.servers.filter((s) => report.options.servers.includes(s.name))
  const groups = report.options.clients.map((n) => `${n.toLocaleString('en-US')} clients`)
  const rates = valuesOf(report, servers, 'burst', (r) => r.deliveriesPerSec)
  const rateFlags = valuesOf(report, servers, 'burst', (r) => r.timedOut)
  const p99 = valuesOf(report, servers, 'paced', (r) => (r.latencyUs ? r.latencyUs.p99 / 1000 : null))
  const p99Flags = valuesOf(report, servers, 'paced', (r) => r.timedOut)
  const height = LEGEND_TOP + Math.ceil(servers.length / 2) * 20 + 24
  const secondX = PANEL.left + PANEL.width + PANEL.gap
  const colors = colorsOf(servers)
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    panel(PANEL.left, `Burst: deliveries per second (${report.options.burst} broadcasts)`, 'per s, log', groups, rates, rateFlags, colors),
    panel(secondX, `Paced: p99 latency (${report.options.rate} events/s)`, 'ms, log', groups, p99, p99Flags, colors),
    legend(servers, servers.map((_, s) => [...rates, ...p99].some((group) => group[s] !== null)), colors),
    text(PANEL.left, height - 8, `* timed out (figure over what was delivered). ${report.machine.cores} cores, Node ${report.machine.node}, ${report.run.started.slice(0, 10)}. Higher is better on the left, lower on the right.`, 'font-size="11" fill="#495057"'),
    '</svg>',
    '',
  ].join('\n')
}

module.exports = { renderChart }
