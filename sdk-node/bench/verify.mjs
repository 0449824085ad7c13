// Verifications per second on a 1 KB ION payload: changewire (native addon and
// wasm) against an equivalent written in JavaScript with node:crypto, which
// formats `data` with Python's str()/repr() rules as ION's reference does.
//
//   node bench/verify.mjs [--seconds 1]
//
// Prints one JSON object. "raw body" is what a receiver does per request:
// the JavaScript version needs JSON.parse(body).data first; changewire's
// verifyRequest takes the raw bytes and the headers.
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const native = require('../index.js')
let wasm = null
try {
  wasm = require('../wasm.js')
} catch {
  // not built: `npm run build:wasm`
}

const SECRET = 'GWbFXru-8tGJ-6WTqjbYfxXQRX0R8tTh'
const URL = 'https://ion-sync.internal.example.net/hooks/run-steps'

// --- the node:crypto equivalent ------------------------------------------

const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u

function reprString(s) {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'"
  let out = quote
  for (const ch of s) {
    const cp = ch.codePointAt(0)
    if (ch === '\\') out += '\\\\'
    else if (ch === quote) out += `\\${quote}`
    else if (ch === '\n') out += '\\n'
    else if (ch === '\r') out += '\\r'
    else if (ch === '\t') out += '\\t'
    else if (cp >= 0x20 && cp < 0x7f) out += ch
    else if (cp >= 0x80 && !NON_PRINTABLE.test(ch)) out += ch
    else if (cp <= 0xff) out += `\\x${cp.toString(16).padStart(2, '0')}`
    else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, '0')}`
    else out += `\\U${cp.toString(16).padStart(8, '0')}`
  }
  return out + quote
}

function reprFloat(n) {
  if (Number.isNaN(n)) return 'nan'
  if (!Number.isFinite(n)) return n < 0 ? '-inf' : 'inf'
  if (n === 0) return Object.is(n, -0) ? '-0.0' : '0.0'
  const [mantissa, exp] = Math.abs(n).toExponential().split('e')
  const digits = mantissa.replace('.', '')
  const e = Number(exp)
  const sign = n < 0 ? '-' : ''
  if (e >= -4 && e < 16) {
    if (e < 0) return `${sign}0.${'0'.repeat(-e - 1)}${digits}`
    if (digits.length <= e + 1) return `${sign}${digits}${'0'.repeat(e + 1 - digits.length)}.0`
    return `${sign}${digits.slice(0, e + 1)}.${digits.slice(e + 1)}`
  }
  const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits
  return `${sign}${m}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`
}

function repr(v) {
  if (v === null || v === undefined) return 'None'
  if (v === true) return 'True'
  if (v === false) return 'False'
  if (typeof v === 'number') return Number.isSafeInteger(v) ? String(v) : reprFloat(v)
  if (typeof v === 'string') return reprString(v)
  if (Array.isArray(v)) return `[${v.map(repr).join(', ')}]`
  return `{${Object.keys(v)
    .map((k) => `${reprString(k)}: ${repr(v[k])}`)
    .join(', ')}}`
}

function jsVerifySignature(secret, url, data, signature) {
  const params = Object.keys(data)
    .filter((k) => data[k] !== null && data[k] !== undefined)
    // UTF-16 order; Python sorts by code point, which differs only for keys
    // with astral characters (none here), so this errs in favour of speed.
    .sort()
    .map((k) => `${k}:${typeof data[k] === 'string' ? data[k] : repr(data[k])}`)
  const expected = Buffer.from(
    createHmac('sha1', secret).update(`${url}?${params.join('&')}`, 'utf8').digest('base64'),
  )
  const given = Buffer.from(signature)
  return expected.length === given.length && timingSafeEqual(expected, given)
}

function jsVerifyRawBody(secret, url, body, headers) {
  return jsVerifySignature(secret, url, JSON.parse(body).data, headers['x-ion-signature'])
}

// --- payload and timing --------------------------------------------------

function payload() {
  const old = {
    status: 'in_progress',
    assigned_to_id: 2912,
    location_id: 26,
    duration_seconds: 3748.5,
    passed: null,
    notes: 'Torque check pending on fixture B',
    serial_number: 'SN-774113',
    completed_at: null,
    attributes: { lot: 'L-2026-11', qty: 12, inspected: false },
  }
  const neu = {
    status: 'complete',
    assigned_to_id: 3310,
    location_id: 142,
    duration_seconds: 4012.25,
    passed: true,
    notes: 'Torque verified: 12.5 Nm on all 8 fasteners (fixture B)',
    serial_number: 'SN-866021',
    completed_at: '2026-04-26T19:33:42.108Z',
    attributes: { lot: 'L-2026-11', qty: 12, inspected: true, inspector: 'Zoë Müller' },
  }
  const body = {
    event_id: 5182912,
    subscription_id: 362,
    resource: 'run_step',
    action: 'update',
    transaction_id: 60068168,
    occurred_at: '2026-04-26T19:33:42.108Z',
    data: {
      id: 508241,
      etag: '54702d7d9f3e',
      old,
      new: neu,
      record_url: 'https://app.example.net/runs/508241',
      related: { run_id: 77120, procedure: 'Final assembly, rev C', station: 'A-07' },
    },
  }
  // The same bytes as Python's json.dumps(body, ensure_ascii=False) (", " and ": ").
  return Buffer.from(JSON.stringify(body, null, 1).replace(/\n */g, (m) => (m.length > 1 ? ' ' : '')).replace(/([{[]) /g, '$1').replace(/ ([}\]])/g, '$1'))
}

function rate(fn, seconds) {
  let n = 1
  for (;;) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i++) fn()
    const dt = Number(process.hrtime.bigint() - t0) / 1e9
    if (dt > 0.05) break
    n *= 2
  }
  let best = Infinity
  const rounds = Math.max(3, Math.round(seconds / 0.2))
  const per = Math.max(1, Math.round((n * 0.2) / 0.05))
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < per; i++) fn()
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9 / per)
  }
  return 1 / best
}

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 1
const body = payload()
const data = JSON.parse(body).data
const signature = native.signBody(SECRET, URL, body)
const headers = { 'content-type': 'application/json', 'x-ion-signature': signature }

// All of them must agree before anything is timed.
if (!jsVerifyRawBody(SECRET, URL, body, headers)) throw new Error('the node:crypto version does not verify')
if (!native.verifySignature(SECRET, URL, data, signature)) throw new Error('native verifySignature fails')
if (native.verifyRequest(SECRET, URL, body, headers) !== 'ion') throw new Error('native verifyRequest fails')

const results = {
  node_crypto_verify_signature: rate(() => jsVerifySignature(SECRET, URL, data, signature), seconds),
  native_verify_signature: rate(() => native.verifySignature(SECRET, URL, data, signature), seconds),
  node_crypto_raw_body: rate(() => jsVerifyRawBody(SECRET, URL, body, headers), seconds),
  native_verify_request: rate(() => native.verifyRequest(SECRET, URL, body, headers), seconds),
}
if (wasm) {
  results.wasm_verify_signature = rate(() => wasm.verifySignature(SECRET, URL, data, signature), seconds)
  results.wasm_verify_request = rate(() => wasm.verifyRequest(SECRET, URL, body, headers), seconds)
}
const round = (x) => Math.round(x * 100) / 100
console.log(
  JSON.stringify(
    {
      payload_bytes: body.length,
      node: process.version,
      verifications_per_second: Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(v)])),
      speedup: {
        native_verify_signature: round(results.native_verify_signature / results.node_crypto_verify_signature),
        native_raw_body: round(results.native_verify_request / results.node_crypto_raw_body),
        ...(wasm && {
          wasm_verify_signature: round(results.wasm_verify_signature / results.node_crypto_verify_signature),
          wasm_raw_body: round(results.wasm_verify_request / results.node_crypto_raw_body),
        }),
      },
      target_speedup_native: 1.5,
    },
    null,
    2,
  ),
)
