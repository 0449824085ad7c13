/**
 * changewire: verify and parse changewire (and First Resonance ION) webhooks.
 *
 * ```js
 * const { verifyRequest, parseEvent } = require('changewire')
 * app.post('/ion-events', express.raw({ type: '*\/*' }), (req, res) => {
 *   verifyRequest(SECRET, 'https://hooks.example.com/ion-events', req.body, req.headers)
 *   const event = parseEvent(req.body)
 * })
 * ```
 */

/** The raw request body, exactly as received. */
export type RawBody = Uint8Array | ArrayBuffer | ArrayBufferView | string

/**
 * Request headers: Node's `req.headers` (or `req.rawHeaders`), a Fetch API
 * `Headers`, a `Map`, or `[name, value]` pairs. Names are case-insensitive.
 */
export type HeadersLike =
  | Record<string, string | string[] | undefined>
  | { get(name: string): string | null; has(name: string): boolean }
  | Map<string, string | string[]>
  | ReadonlyArray<readonly [string, string]>
  | ReadonlyArray<string>

/**
 * A signature scheme changewire sends: ION's `x-ion-signature`, Standard
 * Webhooks' HMAC (`v1`), or Standard Webhooks' Ed25519 (`v1a`, verified with
 * a `whpk_` public key).
 */
export type Scheme = 'ion' | 'standard' | 'ed25519'

/** The stable error codes of {@link WebhookVerificationError}. */
export type VerificationErrorCode =
  | 'invalid_json'
  | 'missing_data'
  | 'not_an_object'
  | 'unencodable'
  | 'missing_header'
  | 'malformed_header'
  | 'invalid_secret'
  | 'timestamp_too_old'
  | 'timestamp_too_new'
  | 'signature_mismatch'

/** A webhook failed verification: `message` says why, `code` names the kind. */
export class WebhookVerificationError extends Error {
  readonly name: 'WebhookVerificationError'
  readonly code: VerificationErrorCode
}

/** A (verified) body is not a changewire event envelope. */
export class InvalidEventError extends Error {
  readonly name: 'InvalidEventError'
  readonly code: 'invalid_event'
}

export interface VerifyOptions {
  /** The receiver's clock, Unix seconds or a `Date` (default: now). */
  now?: number | Date
  /** How far `webhook-timestamp` may be from `now`, in seconds (default 300). */
  toleranceSeconds?: number
  /**
   * Accept only this scheme. By default Standard Webhooks headers are
   * preferred when present (they cover the whole body and stop replays) and
   * `x-ion-signature` (or, during a secret rotation, `x-ion-signature-next`)
   * is the fallback. A `whpk_` public key always means `'ed25519'`, and
   * `'ed25519'` needs one.
   */
  require?: Scheme
}

/**
 * ION's reference `verify_signature(secret, url, data, header_signature)`,
 * for code that already parsed the body: `data` is its `data` member.
 * Returns `true` or `false`.
 *
 * Caveat: `JSON.parse` has already changed what was signed in two ways this
 * function cannot undo: integer-like keys (`"10"`, `"2"`) of nested objects
 * move to the front in numeric order, and `1.0` becomes `1` (safe integers
 * are read as Python ints, other numbers as floats). Bodies with such keys or
 * numbers fail here although they are genuine; use {@link verifyRequest} on
 * the raw body instead.
 */
export function verifySignature(secret: string, url: string, data: Record<string, unknown>, signature: string): boolean

/**
 * Verifies a request: the URL exactly as registered with the gateway, the
 * raw body bytes and the headers. Returns the scheme that verified; throws
 * {@link WebhookVerificationError} saying why otherwise.
 *
 * `secret` is the receiver's shared secret (`whsec_…` for Standard
 * Webhooks), or a `whpk_…` Ed25519 public key: then the `v1a` entry of
 * `webhook-signature` is verified and the result is `'ed25519'`.
 *
 * This is the safe call: it reads the body as the sender's Python did, so
 * key order and number spelling (`1.0` vs `1`) count as they should.
 */
export function verifyRequest(
  secret: string,
  url: string,
  rawBody: RawBody,
  headers: HeadersLike,
  options?: VerifyOptions,
): Scheme

/** The `x-ion-signature` value for a raw body (what the gateway sends). */
export function signBody(secret: string, url: string, rawBody: RawBody): string

/** The Standard Webhooks `webhook-signature` value (`v1,<base64>`) for a `whsec_…` secret. */
export function signStandard(secret: string, msgId: string, timestamp: number, rawBody: RawBody): string

/** The exact string the ION scheme signs for this URL and raw body. */
export function explain(url: string, rawBody: RawBody): string

/** What {@link diagnose} found. */
export interface Diagnosis {
  /** The exact string the ION scheme signs. */
  signedString: string
  /** The signature this secret gives. */
  expectedSignature: string
  /** Whether the given signature matches. */
  matches: boolean
  /** On a mismatch, the most likely cause, in words; `null` on a match. */
  cause: string | null
}

/**
 * Recomputes the ION signature of a raw body and explains a mismatch: a URL
 * spelled differently from the one registered, a re-serialized body, pairs
 * sorted as strings, or a wrong secret / modified body.
 */
export function diagnose(secret: string, url: string, rawBody: RawBody, signature: string): Diagnosis

/** The database operation behind an event. */
export type Action = 'create' | 'update' | 'delete' | 'test'

/** The `data` member of an event: the row and what changed. */
export interface EventData {
  /** The row's primary key. */
  id: number | string
  /** The row's new etag. */
  etag?: string | null
  /** The changed fields before the change; `null` on create. */
  old?: Record<string, unknown> | null
  /** The changed fields after the change; `null` on delete. */
  new?: Record<string, unknown> | null
  /** `record`, `related`, plugin fields… */
  [extra: string]: unknown
}

/** One delivery's body (ION's envelope). */
export interface WebhookEvent {
  /** Unique per delivery and stable across retries: the idempotency key. */
  event_id: number
  /** The subscription that matched. */
  subscription_id: number
  /** The resource, lowercase (`run_steps`). */
  resource: string
  /** The operation. */
  action: Action
  /** The database transaction; events of one transaction share it. */
  transaction_id: number
  /** When the change committed (UTC, ISO 8601). */
  occurred_at: string
  /** The change. */
  data: EventData
}

/**
 * Parses a (verified) raw body as an event: checks the envelope, then returns
 * `JSON.parse` of it. Throws {@link InvalidEventError} saying what is wrong.
 */
export function parseEvent(rawBody: RawBody): WebhookEvent

/** The Unicode version whose notion of "printable" the canonical form uses. */
export const UNICODE_VERSION: string
/** Default Standard Webhooks timestamp tolerance, in seconds. */
export const DEFAULT_TOLERANCE: number
/** This package's version (the compiled core's, equal to package.json's). */
export const version: string
/**
 * What runs the core: `'native'` (the napi-rs addon, from the platform
 * package such as `changewire-linux-x64-gnu` or built from source) or
 * `'wasm'` (the WebAssembly build, used when no native addon loads).
 */
export const backend: 'native' | 'wasm'

declare const changewire: {
  verifySignature: typeof verifySignature
  verifyRequest: typeof verifyRequest
  signBody: typeof signBody
  signStandard: typeof signStandard
  explain: typeof explain
  diagnose: typeof diagnose
  parseEvent: typeof parseEvent
  WebhookVerificationError: typeof WebhookVerificationError
  InvalidEventError: typeof InvalidEventError
  UNICODE_VERSION: string
  DEFAULT_TOLERANCE: number
  version: string
  backend: 'native' | 'wasm'
}
export default changewire
