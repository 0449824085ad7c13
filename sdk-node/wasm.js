'use strict'
// changewire on WebAssembly (wasm-bindgen, Node.js target): the same API and
// the same answers as the native addon, for runtimes where native addons
// cannot load. Built by `npm run build:wasm` (scripts/build-wasm.js).
let binding
try {
  binding = require('./wasm/pkg/node/changewire_wasm.js')
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND') {
    throw new Error('changewire/wasm is not built: run `npm run build:wasm` in the changewire package', { cause: err })
  }
  throw err
}
module.exports = require('./lib/api.js').createApi(binding, 'wasm')
