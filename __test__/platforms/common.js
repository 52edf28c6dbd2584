'use strict'
// What the platform suite shares: the platform table, where each
// package's files are, and which were built.
const fs = require('node:fs')
const path = require('node:path')
const { TARGETS } = require('../../scripts/platforms/targets')

const ROOT = path.join(__dirname, '..', '..')

function dirOf(t) {
  return path.join(ROOT, 'npm', t.name)
}

/** The package's binaries, if they are there (daemon: null where there is none, with t.noDaemon). */
function artifacts(t) {
  const addon = path.join(dirOf(t), t.addon)
  const daemon = t.noDaemon ? null : path.join(dirOf(t), t.daemon)
  return fs.existsSync(addon) && (!daemon || fs.existsSync(daemon)) ? { addon, daemon } : null
}

const notBuilt = (t) => `npm/${t.name}/ has no ${t.addon}${t.noDaemon ? '' : ` and ${t.daemon}`}: run \`npm run build:platforms -- --only ${t.name}\``

module.exports = { ROOT, TARGETS, dirOf, artifacts, notBuilt }
