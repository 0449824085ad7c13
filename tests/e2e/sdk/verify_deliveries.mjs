// Verifies captured gateway deliveries with the Node SDK, native and wasm.
//
//   node verify_deliveries.mjs DELIVERIES.json native|wasm
//
// Prints one JSON list: for each case, the scheme that verified or
// "error:<code>" (same convention as verify_deliveries.py).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)
const flavour = process.argv[3] ?? 'native'
const sdk = require(join(here, '../../../sdk-node', flavour === 'wasm' ? 'wasm.js' : 'index.js'))
const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const out = cases.map((c) => {
  const body = Buffer.from(c.body_b64, 'base64')
  const headers = Object.fromEntries(c.headers)
  try {
    return sdk.verifyRequest(c.secret, c.url, body, headers, { now: c.now, require: c.scheme })
  } catch (e) {
    return 'error:' + (e.code ?? e.message)
  }
})
console.log(JSON.stringify(out))
