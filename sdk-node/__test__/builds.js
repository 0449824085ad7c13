'use strict'
// The builds every test runs against: the native addon, the wasm build for
// Node (CommonJS), and the wasm build for browsers (ES module, initSync).
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

async function loadBuilds() {
  const web = await import(path.join(root, 'wasm', 'pkg', 'web', 'index.mjs'))
  web.initSync(fs.readFileSync(path.join(root, 'wasm', 'pkg', 'web', 'changewire_wasm_bg.wasm')))
  return [
    ['native', require('..')],
    ['wasm', require('../wasm.js')],
    ['wasm/web', web],
  ]
}

const vectorsDir = path.join(root, '..', 'tests', 'vectors')
function vectors(name) {
  return JSON.parse(fs.readFileSync(path.join(vectorsDir, name), 'utf8')).tests
}

module.exports = { loadBuilds, vectors, root }
