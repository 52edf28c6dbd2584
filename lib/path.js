'use strict'
// Request path matching exactly as `sse` 0.0.8 does it: the pattern is
// regex-escaped, its first `*` matches anything, the match is anchored,
// case-sensitive, and a trailing slash counts. Leading `//+` collapses to `/`.

const SPECIALS = /[.?*+^$[\]\\(){}|-]/g

function compilePattern(pattern) {
  const quoted = String(pattern).replace(SPECIALS, '\\$&')
  return new RegExp('^' + quoted.replace('\\*', '.*') + '$')
}

function matchesPath(pathname, pattern) {
  return compilePattern(pattern).test(pathname)
}

/**
 * Splits a request target into its pathname and raw query, as
 * `url.parse(target)` would (absolute-form targets and `#` included).
 */
function splitTarget(target) {
  let rest = String(target || '')
  const hash = rest.indexOf('#')
  if (hash !== -1) rest = rest.slice(0, hash)
  const absolute = /^[a-z][a-z0-9+.-]*:\/\/[^/?]*/i.exec(rest)
  if (absolute) rest = rest.slice(absolute[0].length)
  const q = rest.indexOf('?')
  const pathname = (q === -1 ? rest : rest.slice(0, q)) || '/'
  const query = q === -1 ? null : rest.slice(q + 1)
  return { pathname: pathname.replace(/^\/{2,}/, '/'), query }
}

module.exports = { compilePattern, matchesPath, splitTarget }
