'use strict'
// changewire for Node.js: the native addon (napi-rs) behind the public API.
// For runtimes that cannot load native addons use `changewire/wasm`.
module.exports = require('./lib/api.js').createApi(require('./binding.js'))
