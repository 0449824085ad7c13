'use strict'
// changewire for Node.js: the public API (lib/api.js) over the native addon
// (napi-rs, loaded by binding.js: `changewire.<platform>.node` beside this
// file when built from source, else the platform package such as
// `changewire-linux-x64-gnu` from optionalDependencies). When no native addon
// loads (no package for this platform, `--omit=optional`, a runtime without
// native addons), the WebAssembly build in wasm/pkg/node runs the same core:
// same API, same answers; `backend` says which one loaded.
//
// CHANGEWIRE_BACKEND=native fails instead of falling back; =wasm skips the
// native addon.
const { createApi } = require('./lib/api.js')

function load() {
  const wanted = process.env.CHANGEWIRE_BACKEND
  if (wanted && wanted !== 'native' && wanted !== 'wasm') {
    throw new Error(`changewire: CHANGEWIRE_BACKEND must be 'native' or 'wasm', not '${wanted}'`)
  }
  let nativeError = null
  if (wanted !== 'wasm') {
    try {
      return createApi(require('./binding.js'), 'native')
    } catch (err) {
      if (wanted === 'native') throw err
      nativeError = err
    }
  }
  try {
    return createApi(require('./wasm/pkg/node/changewire_wasm.js'), 'wasm')
  } catch (wasmError) {
    const error = new Error(
      'changewire: neither the native addon nor the WebAssembly build loads' +
        (nativeError ? ` (native: ${nativeError.message})` : '') +
        ` (wasm: ${wasmError.message})`,
    )
    error.cause = nativeError || wasmError
    error.errors = [nativeError, wasmError].filter(Boolean)
    throw error
  }
}

module.exports = load()
