'use strict'
// Every shared vector in tests/vectors/, through the public API of each build.
// Expected values were computed by Python and are frozen: a failure here is a
// bug in the SDK or the core, never a reason to change a vector.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { loadBuilds, vectors } = require('./builds.js')

const ION = vectors('ion_signature.json')
const STANDARD = vectors('standard_webhooks.json')
const ED25519 = vectors('standard_webhooks_ed25519.json')

function ionCodes(flags) {
  if (flags.includes('Unencodable')) return ['unencodable']
  if (flags.includes('BadData')) return ['invalid_json', 'missing_data', 'not_an_object']
  return ['signature_mismatch']
}

function outcome(fn) {
  try {
    return { value: fn() }
  } catch (err) {
    return { error: err }
  }
}

function report(failures, total, what) {
  assert.equal(failures.length, 0, `${failures.length} of ${total} ${what} failed:\n${failures.slice(0, 40).join('\n')}`)
}

test('vector files are complete', () => {
  assert.ok(ION.length >= 1000, `${ION.length} ION vectors`)
  assert.ok(STANDARD.length >= 200, `${STANDARD.length} Standard Webhooks vectors`)
  assert.ok(ED25519.length >= 100, `${ED25519.length} Ed25519 vectors`)
})

test('every build agrees with every vector', async (t) => {
  for (const [name, cw] of await loadBuilds()) {
    await t.test(`${name}: ION vectors through verifyRequest, signBody and explain`, () => {
      const failures = []
      for (const c of ION) {
        const id = `tcId ${c.tcId} (${c.comment})`
        const body = Buffer.from(c.body, 'utf8')
        const sig = c.signature
        let valid = c.result === 'valid'
        if (sig !== sig.trim()) {
          // HTTP strips whitespace around header values, and so does verifyRequest.
          valid = outcome(() => cw.signBody(c.secret, c.url, body)).value === sig.trim()
        }
        const got = outcome(() => cw.verifyRequest(c.secret, c.url, body, { 'X-Ion-Signature': sig }))
        if (valid) {
          if (got.value !== 'ion') failures.push(`${id}: verifyRequest gave ${got.error}`)
        } else if (!(got.error instanceof cw.WebhookVerificationError) || !ionCodes(c.flags).includes(got.error.code)) {
          failures.push(`${id}: verifyRequest gave ${got.value ?? got.error}`)
        } else if (got.error.code === 'signature_mismatch' && got.error.message !== 'signature does not match') {
          failures.push(`${id}: message ${got.error.message}`)
        }
        const rotated = [
          ['x-ion-signature', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA='],
          ['x-ion-signature-next', sig],
        ]
        const viaNext = outcome(() => cw.verifyRequest(c.secret, c.url, body, rotated))
        if ((viaNext.value === 'ion') !== valid) failures.push(`${id}: x-ion-signature-next gave ${viaNext.error}`)
        if (c.result === 'valid') {
          const signed = outcome(() => cw.signBody(c.secret, c.url, body))
          if (signed.value !== sig) failures.push(`${id}: signBody gave ${signed.value ?? signed.error}`)
          const canonical = outcome(() => cw.explain(c.url, c.body))
          if (canonical.value !== c.canonical) failures.push(`${id}: explain gave ${canonical.value ?? canonical.error}`)
        }
      }
      report(failures, ION.length, 'ION vectors')
    })

    await t.test(`${name}: ION vectors through verifySignature (parsed data)`, () => {
      const failures = []
      let checked = 0
      for (const c of ION) {
        // JsLossy: JSON.parse loses what was signed; parsed-object APIs must skip these.
        if (c.flags.includes('JsLossy')) continue
        const id = `tcId ${c.tcId} (${c.comment})`
        let data
        try {
          data = JSON.parse(c.body).data
        } catch {
          if (!c.flags.includes('BadData')) failures.push(`${id}: JSON.parse failed`)
          continue // no data to pass
        }
        const got = outcome(() => cw.verifySignature(c.secret, c.url, data, c.signature))
        checked += 1
        if (data === null || typeof data !== 'object' || Array.isArray(data)) {
          if (got.error?.code !== 'not_an_object') failures.push(`${id}: gave ${got.value ?? got.error}`)
        } else if (c.flags.includes('Unencodable')) {
          if (got.error?.code !== 'unencodable') failures.push(`${id}: gave ${got.value ?? got.error}`)
        } else if (got.value !== (c.result === 'valid')) {
          failures.push(`${id}: gave ${got.value ?? got.error}, want ${c.result}`)
        }
      }
      assert.ok(checked >= 1000, `only ${checked} vectors survive JSON.parse`)
      report(failures, checked, 'parsed-data ION vectors')
    })

    await t.test(`${name}: Standard Webhooks vectors`, () => {
      const failures = []
      for (const c of STANDARD) {
        const id = `tcId ${c.tcId} (${c.comment})`
        const body = Buffer.from(c.body, 'utf8')
        const headers = {
          'webhook-id': c.msgId,
          'Webhook-Timestamp': String(c.timestamp),
          'webhook-signature': c.signatureHeader,
          'x-ion-signature': 'ignored: Standard Webhooks headers take precedence',
        }
        const got = outcome(() => cw.verifyRequest(c.secret, 'https://r.test/', body, headers, { now: c.now }))
        const age = c.now - c.timestamp
        let want
        if (c.result === 'valid') want = null
        else if (c.flags.includes('StaleTimestamp')) want = `timestamp is ${age}s old, beyond the 300s tolerance (replay?)`
        else if (c.flags.includes('FutureTimestamp'))
          want = `timestamp is ${-age}s in the future, beyond the 300s tolerance (clock skew?)`
        else if (c.flags.includes('OtherVersion')) want = 'malformed `webhook-signature` header: no `v1,` signature'
        else if (c.flags.includes('MalformedHeader')) want = undefined // malformed or mismatch
        else want = 'signature does not match'
        if (want === null) {
          if (got.value !== 'standard') failures.push(`${id}: gave ${got.error}`)
        } else if (!(got.error instanceof cw.WebhookVerificationError)) {
          failures.push(`${id}: gave ${got.value ?? got.error}, want ${want}`)
        } else if (want === undefined) {
          if (!['malformed_header', 'signature_mismatch'].includes(got.error.code)) failures.push(`${id}: ${got.error.code}`)
        } else if (got.error.message !== want) {
          failures.push(`${id}: message ${JSON.stringify(got.error.message)}, want ${JSON.stringify(want)}`)
        }
        const signed = outcome(() => cw.signStandard(c.secret, c.msgId, c.timestamp, body))
        if (signed.value !== c.expectedSignature) failures.push(`${id}: signStandard gave ${signed.value ?? signed.error}`)
      }
      report(failures, STANDARD.length, 'Standard Webhooks vectors')
    })

    await t.test(`${name}: Standard Webhooks Ed25519 (v1a) vectors with the whpk_ public key`, () => {
      const failures = []
      for (const c of ED25519) {
        const id = `tcId ${c.tcId} (${c.comment})`
        const body = Buffer.from(c.body, 'utf8')
        const headers = {
          'Webhook-Id': c.msgId,
          'webhook-timestamp': String(c.timestamp),
          'webhook-signature': c.signatureHeader,
          'x-ion-signature': 'ignored: a public key verifies the Standard Webhooks headers',
        }
        const got = outcome(() => cw.verifyRequest(c.publicKey, 'https://r.test/', body, headers, { now: c.now }))
        const age = c.now - c.timestamp
        let codes = ['signature_mismatch']
        let want = 'signature does not match'
        if (c.result === 'valid') want = null
        else if (c.flags.includes('MalformedPublicKey')) {
          // Without the whpk_ prefix it is read as a whsec_ secret: refused, or no v1 entry.
          codes = c.publicKey.startsWith('whpk_') ? ['invalid_secret'] : ['invalid_secret', 'malformed_header']
          want = undefined
        } else if (c.flags.includes('StaleTimestamp')) {
          codes = ['timestamp_too_old']
          want = `timestamp is ${age}s old, beyond the 300s tolerance (replay?)`
        } else if (c.flags.includes('FutureTimestamp')) {
          codes = ['timestamp_too_new']
          want = `timestamp is ${-age}s in the future, beyond the 300s tolerance (clock skew?)`
        } else if (c.flags.includes('MissingV1a')) {
          codes = ['malformed_header']
          want =
            'malformed `webhook-signature` header: no `v1a,` signature ' +
            '(a `whpk_` public key verifies only Ed25519 `v1a` signatures)'
        } else if (c.flags.includes('MalformedSignature')) {
          codes = ['malformed_header']
          want = 'malformed `webhook-signature` header: a `v1a,` signature is not base64 of 64 bytes'
        } else if (c.flags.includes('MalformedHeader')) {
          codes = ['malformed_header']
          want = 'malformed `webhook-signature` header: each signature is `<version>,<base64>`'
        }
        if (want === null) {
          if (got.value !== 'ed25519') failures.push(`${id}: gave ${got.value ?? got.error}`)
        } else if (!(got.error instanceof cw.WebhookVerificationError) || !codes.includes(got.error.code)) {
          failures.push(`${id}: gave ${got.value ?? got.error}, want ${codes}`)
        } else if (want !== undefined && got.error.message !== want) {
          failures.push(`${id}: message ${JSON.stringify(got.error.message)}, want ${JSON.stringify(want)}`)
        }
      }
      report(failures, ED25519.length, 'Ed25519 vectors')
    })
  }
})
