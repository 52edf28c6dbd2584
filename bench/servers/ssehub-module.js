'use strict'
// Loads ssehub from this repository (or from SSEHUB_BENCH_ROOT, the
// checkout `--baseline` names), or explains why the benchmark has to skip
// its servers (no index.js yet, or no native addon built).
const fs = require('node:fs')
const path = require('node:path')
const { SkipError } = require('./common')

const root = process.env.SSEHUB_BENCH_ROOT || path.join(__dirname, '..', '..')

function loadSsehub() {
  if (!fs.existsSync(path.join(root, 'index.js'))) {
    throw new SkipError('ssehub index.js is not in this tree yet')
  }
  try {
    return require(root)
  } catch (err) {
    throw new SkipError(`ssehub cannot be loaded: ${err.message.split('\n')[0]}`)
  }
}

module.exports = { loadSsehub }
