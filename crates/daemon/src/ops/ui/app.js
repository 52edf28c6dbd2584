'use strict'
// The status page's script (crates/daemon/src/ops/ui/index.html), a file of its
// own: the page's Content-Security-Policy runs no inline script and applies
// no style attribute, so elements are made here and sized through
// element.style (which the policy allows). Refreshed from this listener's
// own status JSON (`status`, beside the page) once a second; rates are the
// change between two readings.
const $ = (id) => document.getElementById(id)
let last = null
function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`
}
function render(st) {
  const now = performance.now()
  $('mode').textContent = st.mode
  $('version').textContent = `v${st.version}`
  $('clients').textContent = st.connected_clients.toLocaleString()
  $('slow').textContent = st.clients_dropped_slow_total.toLocaleString()
  $('total').textContent = st.connections_total.toLocaleString()
  $('uptime').textContent = duration(st.uptime_seconds)
  if (last) {
    const secs = (now - last.at) / 1000
    $('eps').textContent = Math.round((st.events_published_total - last.st.events_published_total) / secs).toLocaleString()
    $('dps').textContent = Math.round((st.events_delivered_total - last.st.events_delivered_total) / secs).toLocaleString()
  }
  last = { st, at: now }
  const rows = st.largest_channels || []
  const most = Math.max(1, ...rows.map((r) => r.clients))
  const body = $('channels')
  body.replaceChildren(...(rows.length ? rows.map((r) => channelRow(r, most)) : [noChannels()]))
}
function cell(text, className) {
  const td = document.createElement('td')
  if (text !== undefined) td.textContent = text
  if (className) td.className = className
  return td
}
function channelRow(r, most) {
  const tr = document.createElement('tr')
  const bar = document.createElement('div')
  bar.className = 'bar'
  bar.style.width = `${(100 * r.clients / most).toFixed(1)}%`
  const barCell = cell()
  barCell.append(bar)
  tr.append(cell(r.channel === '' ? '(all channels)' : r.channel), cell(r.clients.toLocaleString(), 'n'), barCell)
  return tr
}
function noChannels() {
  const tr = document.createElement('tr')
  const td = cell('no channels')
  td.colSpan = 3
  tr.append(td)
  return tr
}
async function tick() {
  try {
    const res = await fetch('status', { cache: 'no-store' })
    if (!res.ok) throw new Error(res.status)
    render(await res.json())
    $('state').textContent = 'live'
    $('state').className = ''
  } catch (e) {
    $('state').textContent = `unreachable (${e.message})`
    $('state').className = 'bad'
  }
}
tick()
setInterval(tick, 1000)
