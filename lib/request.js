'use strict'
// What every way in (a Node request, a Fetch Request) asks of a stream
// request, written once: the id it resumes from, the headers a stream must
// not carry, and how a stream that cannot open now is refused.

const querystring = require('node:querystring')
const { splitTarget } = require('./path')

/** Connection-specific headers: forbidden in HTTP/2 (RFC 9113 8.2.2) and in a Fetch Response. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'])

/** Framing headers set upstream would corrupt the stream. */
const FRAMING = new Set(['content-length', 'transfer-encoding'])

/**
 * The id a client resumes from: its `Last-Event-ID` header, else the last
 * `lastEventId` of its query (for EventSource polyfills that cannot set
 * headers); null when it gives none.
 * @param {string | null | undefined} header
 * @param {string | null} query the raw query string, without '?'
 */
function lastEventId(header, query) {
  if (typeof header === 'string') return header
  if (!query) return null
  const values = new URLSearchParams(query).getAll('lastEventId')
  return values.length > 0 ? values[values.length - 1] : null
}

/** `lastEventId` of a Node request. */
function lastEventIdOf(req) {
  return lastEventId(req.headers['last-event-id'], splitTarget(req.url).query)
}

/** The query `'connection'` listeners get: given (an object or a string) or parsed from the URL. */
function queryOf(query, url) {
  if (query && typeof query === 'object') return query
  if (typeof query === 'string') return querystring.parse(query)
  if (query === undefined) return querystring.parse(splitTarget(url).query || '')
  return querystring.parse('')
}

/**
 * The answer to a stream request that cannot be served now (`why`:
 * 'limit' or 'shutdown'): a 503 with Retry-After, or with `refuse:
 * 'retry'` a 200 stream that only says `retry:` and ends, for EventSource
 * gives up for good on a non-200. `headers` is null when the stream's own
 * headers go with it.
 * @returns {{ status: number, headers: Record<string,string> | null, body: string }}
 */
function refusal(options, why) {
  const ms = options.retryAfter
  if (options.refuse === 'retry') return { status: 200, headers: null, body: `retry: ${ms}\n\n` }
  return {
    status: 503,
    headers: { 'Content-Type': 'text/plain', 'Retry-After': String(Math.ceil(ms / 1000)) },
    body: why === 'limit' ? 'Too many SSE clients\n' : 'SSE server is shutting down\n',
  }
}

module.exports = { HOP_BY_HOP, FRAMING, lastEventId, lastEventIdOf, queryOf, refusal }
