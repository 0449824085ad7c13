'use strict'
// The public API of `changewire`, over a binding: the native addon
// (`binding.js`) or the WebAssembly build (`wasm/pkg/…`). Both bindings export
// the same functions with the same semantics; this file only normalises
// arguments and errors, so native and wasm behave identically.
//
// This file must stay free of `require`/`import`: scripts/build-wasm.js
// wraps it into an ES module for the browser build.

/** Error codes of changewire-core (`Error::code`). */
const VERIFICATION_CODES = new Set([
  'invalid_json',
  'missing_data',
  'not_an_object',
  'unencodable',
  'missing_header',
  'malformed_header',
  'invalid_secret',
  'timestamp_too_old',
  'timestamp_too_new',
  'signature_mismatch',
])

/** A webhook failed verification: `message` says why, `code` names the kind. */
class WebhookVerificationError extends Error {
  constructor(message, code) {
    super(message)
    this.name = 'WebhookVerificationError'
    this.code = code
  }
}

/** A (verified) body is not a changewire event envelope. */
class InvalidEventError extends Error {
  constructor(message) {
    super(message)
    this.name = 'InvalidEventError'
    this.code = 'invalid_event'
  }
}

const HEADERS_READ = ['x-ion-signature', 'x-ion-signature-next', 'webhook-id', 'webhook-timestamp', 'webhook-signature']
const DEFAULT_TOLERANCE = 300
const MAX_DEPTH = 500
const encoder = new TextEncoder()
const hasOwn = Object.prototype.hasOwnProperty

function article(name) {
  return /^[aeiouAEIOU]/.test(name) ? `an ${name}` : `a ${name}`
}

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value)
    const name = proto !== null && proto !== Object.prototype && value.constructor && value.constructor.name
    return name ? article(name) : 'an object'
  }
  return article(typeof value)
}

function translate(err) {
  if (err && typeof err.code === 'string') {
    if (VERIFICATION_CODES.has(err.code)) return new WebhookVerificationError(err.message, err.code)
    if (err.code === 'invalid_event') return new InvalidEventError(err.message)
    if (err.code === 'invalid_option') return new TypeError(err.message)
  }
  return err
}

function text(value, name) {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, not ${describe(value)}`)
  return value
}

/** The raw body as bytes. */
function bytes(body) {
  if (body instanceof Uint8Array) return body
  if (typeof body === 'string') return encoder.encode(body)
  if (body instanceof ArrayBuffer) return new Uint8Array(body)
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
  throw new TypeError(
    `body must be the raw request body (Buffer, Uint8Array, ArrayBuffer or string), not ${describe(body)}; ` +
      'to check an already-parsed data object use verifySignature()',
  )
}

/** The headers verification reads, as a flat [name, value, …] list. */
function headerList(headers) {
  const out = []
  const add = (name, value) => {
    if (typeof name !== 'string') return
    const lower = name.toLowerCase()
    if (!HEADERS_READ.includes(lower)) return
    if (Array.isArray(value)) value = value[0]
    if (value === undefined || value === null) return
    out.push(lower, String(value))
  }
  if (headers === null || typeof headers !== 'object') {
    throw new TypeError(`headers must be an object, a Headers, a Map or [name, value] pairs, not ${describe(headers)}`)
  }
  if (typeof headers.get === 'function' && typeof headers.has === 'function' && !(headers instanceof Map)) {
    // The Fetch API's Headers (case-insensitive, duplicates joined).
    for (const name of HEADERS_READ) {
      const value = headers.get(name)
      if (value !== null && value !== undefined) out.push(name, value)
    }
  } else if (headers instanceof Map) {
    for (const [name, value] of headers) add(name, value)
  } else if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const [name, value] of headers) add(name, value)
    } else {
      // Node's `req.rawHeaders`: [name, value, name, value, …]
      for (let i = 0; i + 1 < headers.length; i += 2) add(headers[i], headers[i + 1])
    }
  } else {
    for (const name in headers) if (hasOwn.call(headers, name)) add(name, headers[name])
  }
  return out
}

function encodeNumber(n) {
  // The mapping of the shared vectors: a safe integer is a Python int, any
  // other number a float (spelled so that core reads it as one).
  if (Number.isSafeInteger(n)) return n === 0 ? '0' : String(n)
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return 'Infinity'
  if (n === -Infinity) return '-Infinity'
  const s = String(n)
  return /[.e]/.test(s) ? s : `${s}.0`
}

/** A parsed `data` value as JSON text that core reads as Python would hold it. */
function encode(value, depth) {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'number':
      return encodeNumber(value)
    case 'boolean':
      return value ? 'true' : 'false'
    case 'bigint':
      return value.toString()
    case 'undefined':
      return 'null'
    case 'object': {
      if (value === null) return 'null'
      if (depth >= MAX_DEPTH) throw new RangeError(`data nests deeper than ${MAX_DEPTH} levels`)
      if (Array.isArray(value)) {
        let out = '['
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ','
          out += encode(value[i], depth + 1)
        }
        return `${out}]`
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError(`cannot sign ${describe(value)}: data must hold plain JSON values`)
      }
      let out = '{'
      let first = true
      for (const key of Object.keys(value)) {
        if (!first) out += ','
        first = false
        out += `${JSON.stringify(key)}:${encode(value[key], depth + 1)}`
      }
      return `${out}}`
    }
    default:
      throw new TypeError(`cannot sign ${describe(value)}: data must hold plain JSON values`)
  }
}

/**
 * Whether JSON.stringify writes `value` exactly as `encode` would: only plain
 * objects, arrays, strings, booleans, null and numbers that are safe integers
 * or non-integral and finite. Then the native JSON.stringify does the work.
 */
function plainJson(value, depth) {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true
    case 'number':
      return Number.isSafeInteger(value) || (Number.isFinite(value) && !Number.isInteger(value))
    case 'object': {
      if (value === null) return true
      if (depth >= MAX_DEPTH) return false
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) if (!plainJson(value[i], depth + 1)) return false
        return true
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return false
      for (const key in value) {
        if (hasOwn.call(value, key) && !plainJson(value[key], depth + 1)) return false
      }
      return true
    }
    default:
      return false
  }
}

/** The `data` argument as JSON text for the binding. */
function encodeData(data) {
  return plainJson(data, 0) ? JSON.stringify(data) : encode(data, 0)
}

/**
 * The public API over `binding`; `backend` ('native' or 'wasm') is exported
 * as is, so callers can tell which one loaded.
 */
function createApi(binding, backend) {
  function call(fn, ...args) {
    try {
      return fn(...args)
    } catch (err) {
      throw translate(err)
    }
  }

  /**
   * ION's reference `verify_signature(secret, url, data, header_signature)`:
   * `data` is the parsed `data` member. Returns true or false.
   */
  function verifySignature(secret, url, data, signature) {
    text(secret, 'secret')
    text(signature, 'signature')
    return call(binding.verifyData, secret, String(url), encodeData(data), signature)
  }

  /**
   * Verifies a request (raw body + headers); returns 'ion', 'standard' or
   * 'ed25519' (`secret` is then a `whpk_` public key).
   */
  function verifyRequest(secret, url, rawBody, headers, options = {}) {
    text(secret, 'secret')
    text(url, 'url')
    const { now, toleranceSeconds = DEFAULT_TOLERANCE, require: scheme } = options || {}
    let seconds
    if (now === undefined) seconds = Math.floor(Date.now() / 1000)
    else if (now instanceof Date) seconds = Math.floor(now.getTime() / 1000)
    else if (typeof now === 'number' && Number.isFinite(now)) seconds = Math.floor(now)
    else throw new TypeError(`options.now must be Unix seconds or a Date, not ${describe(now)}`)
    if (!Number.isInteger(toleranceSeconds) || toleranceSeconds < 0 || toleranceSeconds > 0xffffffff) {
      throw new TypeError('options.toleranceSeconds must be a non-negative integer')
    }
    return call(
      binding.verifyRequest,
      secret,
      url,
      bytes(rawBody),
      headerList(headers),
      seconds,
      toleranceSeconds,
      scheme === undefined ? null : scheme,
    )
  }

  /** The `x-ion-signature` value for a raw body. */
  function signBody(secret, url, rawBody) {
    return call(binding.signBody, text(secret, 'secret'), text(url, 'url'), bytes(rawBody))
  }

  /** The Standard Webhooks `webhook-signature` value (`v1,<base64>`). */
  function signStandard(secret, msgId, timestamp, rawBody) {
    if (!Number.isSafeInteger(timestamp)) throw new TypeError('timestamp must be an integer (Unix seconds)')
    return call(binding.signStandard, text(secret, 'secret'), text(msgId, 'msgId'), timestamp, bytes(rawBody))
  }

  /** The exact string the ION scheme signs for this URL and raw body. */
  function explain(url, rawBody) {
    return call(binding.explain, text(url, 'url'), bytes(rawBody))
  }

  /** Recomputes the ION signature of a raw body and explains a mismatch. */
  function diagnose(secret, url, rawBody, signature) {
    const d = call(
      binding.diagnose,
      text(secret, 'secret'),
      text(url, 'url'),
      bytes(rawBody),
      text(signature, 'signature'),
    )
    return {
      signedString: d.signedString,
      expectedSignature: d.expectedSignature,
      matches: d.matches,
      cause: d.cause === undefined ? null : d.cause,
    }
  }

  /** Parses a (verified) raw body as an event; throws InvalidEventError. */
  function parseEvent(rawBody) {
    const body = bytes(rawBody)
    call(binding.checkEvent, body)
    return JSON.parse(typeof rawBody === 'string' ? rawBody : new TextDecoder().decode(body))
  }

  return {
    verifySignature,
    verifyRequest,
    signBody,
    signStandard,
    explain,
    diagnose,
    parseEvent,
    WebhookVerificationError,
    InvalidEventError,
    UNICODE_VERSION: binding.unicodeVersion(),
    DEFAULT_TOLERANCE,
    version: binding.version(),
    backend,
  }
}

module.exports = { createApi, WebhookVerificationError, InvalidEventError }
