'use strict'
// The public API beyond the vectors, for every build: argument shapes,
// errors (classes, codes, exact messages), events, options, entry points.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { loadBuilds } = require('./builds.js')

const URL = 'https://hooks.example.com/ion-events'
const SECRET = 's3cret'
const BODY =
  '{"event_id": 17, "subscription_id": 3, "resource": "run_steps", "action": "update", ' +
  '"transaction_id": 99, "occurred_at": "2026-04-26T19:33:42.108Z", "data": {"id": 7, ' +
  '"etag": "e1", "old": {"status": "open", "qty": 1.0}, "new": {"status": "done", "10": 1, "2": 2}}}'
const STD_SECRET = 'whsec_c2VjcmV0LWtleS1ieXRlcw=='

// Ed25519 by node:crypto (OpenSSL), not by changewire: a key from a 32-byte
// seed (PKCS#8 DER around the seed) and its `whpk_` public key.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
function ed25519Key(fill) {
  const seed = Buffer.alloc(32, fill)
  const key = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  const spki = crypto.createPublicKey(key).export({ format: 'der', type: 'spki' })
  return [key, `whpk_${spki.subarray(spki.length - 32).toString('base64')}`]
}
function v1a(key, msgId, timestamp, body) {
  return `v1a,${crypto.sign(null, Buffer.from(`${msgId}.${timestamp}.${body}`), key).toString('base64')}`
}

function throwsCode(cw, fn, code, message) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof cw.WebhookVerificationError, `${err}`)
    assert.ok(err instanceof Error)
    assert.equal(err.name, 'WebhookVerificationError')
    assert.equal(err.code, code)
    if (message !== undefined) assert.equal(err.message, message)
    return true
  })
}

test('the API of every build', async (t) => {
  for (const [name, cw] of await loadBuilds()) {
    const SIG = cw.signBody(SECRET, URL, BODY)

    await t.test(`${name}: raw body verifies; the parsed object shows what JSON.parse lost`, () => {
      assert.equal(cw.verifyRequest(SECRET, URL, Buffer.from(BODY), { 'x-ion-signature': SIG }), 'ion')
      const data = JSON.parse(BODY).data
      // JSON.parse moved "2" and "10" in front of "status" and turned 1.0 into 1:
      // what was signed is gone, so the parsed-object call cannot verify it.
      assert.deepEqual(Object.keys(data.new), ['2', '10', 'status'])
      assert.equal(cw.verifySignature(SECRET, URL, data, SIG), false)
      // Data without such keys or numbers verifies from the parsed object.
      const plain = '{"data": {"id": 7, "etag": "e1", "new": {"status": "done", "n": 2, "f": 1.5, "ok": [true, null]}}}'
      const plainSig = cw.signBody(SECRET, URL, plain)
      assert.equal(cw.verifySignature(SECRET, URL, JSON.parse(plain).data, plainSig), true)
      assert.equal(cw.verifySignature(SECRET, URL + '/', JSON.parse(plain).data, plainSig), false)
      assert.equal(cw.verifySignature(SECRET, URL, JSON.parse(plain).data, plainSig.toLowerCase()), false)
    })

    await t.test(`${name}: JavaScript values map to what Python would hold`, () => {
      const cases = [
        [{ a: 1, b: 2.5, c: -0, d: 2 ** 53, e: 1e21, f: 5e-324 }, "u?a:1&b:2.5&c:0&d:9007199254740992.0&e:1e+21&f:5e-324"],
        [{ n: [NaN, Infinity, -Infinity], big: 12345678901234567890n }, 'u?big:12345678901234567890&n:[nan, inf, -inf]'],
        [{ s: "it's", t: 'say "hi"', u: 'a\\b\n', v: ['\u00e9\u00a0\ud83d\ude00\udc00'] },
          "u?s:it's&t:say \"hi\"&u:a\\b\n&v:['é\\xa0😀\\udc00']"],
        [{ z: null, y: undefined, x: [undefined, null], w: { k: {} } }, "u?w:{'k': {}}&x:[None, None]"],
      ]
      for (const [data, signed] of cases) {
        // The signature of the expected canonical string, made with node:crypto.
        assert.equal(cw.verifySignature('k', 'u', data, hmacOf(signed)), true, signed)
      }
    })

    await t.test(`${name}: data that cannot be signed is refused with a reason`, () => {
      throwsCode(cw, () => cw.verifySignature('k', 'u', { k: '\udc00' }, 'x'), 'unencodable',
        '`data.k` holds a lone surrogate, which Python cannot encode as UTF-8')
      throwsCode(cw, () => cw.verifySignature('k', 'u', [1], 'x'), 'not_an_object',
        '`data` must be a JSON object, found a JSON array')
      throwsCode(cw, () => cw.verifySignature('k', 'u', null, 'x'), 'not_an_object')
      assert.throws(() => cw.verifySignature('k', 'u', { d: new Date(0) }, 'x'), {
        name: 'TypeError',
        message: 'cannot sign a Date: data must hold plain JSON values',
      })
      assert.throws(() => cw.verifySignature('k', 'u', { f: () => 1 }, 'x'), TypeError)
      assert.throws(() => cw.verifySignature('k', 'u', {}, Buffer.from('x')), {
        name: 'TypeError',
        message: 'signature must be a string, not a Buffer',
      })
      let deep = []
      for (let i = 0; i < 600; i++) deep = [deep]
      assert.throws(() => cw.verifySignature('k', 'u', { deep }, 'x'), RangeError)
    })

    await t.test(`${name}: every header shape`, () => {
      const shapes = [
        { 'x-ion-signature': SIG },
        { 'X-Ion-Signature': [SIG, 'second'] },
        new Headers({ 'X-Ion-Signature': SIG }),
        new Map([['x-ion-signature', SIG]]),
        [['X-ION-SIGNATURE', SIG]],
        ['Content-Type', 'application/json', 'X-Ion-Signature', SIG],
      ]
      for (const headers of shapes) assert.equal(cw.verifyRequest(SECRET, URL, BODY, headers), 'ion')
      assert.throws(() => cw.verifyRequest(SECRET, URL, BODY, 'x-ion-signature: x'), TypeError)
    })

    await t.test(`${name}: every body shape`, () => {
      const buf = Buffer.from(BODY)
      const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length)
      for (const body of [buf, new Uint8Array(buf), ab, new DataView(ab), BODY]) {
        assert.equal(cw.verifyRequest(SECRET, URL, body, { 'x-ion-signature': SIG }), 'ion')
      }
      assert.throws(() => cw.verifyRequest(SECRET, URL, JSON.parse(BODY), { 'x-ion-signature': SIG }), {
        name: 'TypeError',
        message:
          'body must be the raw request body (Buffer, Uint8Array, ArrayBuffer or string), not an object; ' +
          'to check an already-parsed data object use verifySignature()',
      })
    })

    await t.test(`${name}: errors carry core's reason and a code`, () => {
      const h = { 'x-ion-signature': SIG }
      throwsCode(cw, () => cw.verifyRequest(SECRET, URL, BODY, {}), 'missing_header', 'missing `x-ion-signature` header')
      throwsCode(cw, () => cw.verifyRequest('other', URL, BODY, h), 'signature_mismatch', 'signature does not match')
      throwsCode(cw, () => cw.verifyRequest(SECRET, URL, 'id=1', h), 'invalid_json',
        'body is not valid JSON: invalid JSON at byte 0: expected a value')
      throwsCode(cw, () => cw.verifyRequest(SECRET, URL, '{}', h), 'missing_data', 'body has no `data` field')
      throwsCode(cw, () => cw.verifyRequest(SECRET, URL, '{"data": 1}', h), 'not_an_object',
        '`data` must be a JSON object, found a JSON number')
      throwsCode(cw, () => cw.explain(URL, '[]'), 'not_an_object', '`body` must be a JSON object, found a JSON array')
    })

    await t.test(`${name}: Standard Webhooks with the clock and options`, () => {
      const now = Math.floor(Date.now() / 1000)
      const headers = new Headers({
        'webhook-id': '17',
        'webhook-timestamp': String(now),
        'webhook-signature': cw.signStandard(STD_SECRET, '17', now, BODY),
      })
      assert.equal(cw.verifyRequest(STD_SECRET, URL, BODY, headers), 'standard')
      assert.equal(cw.verifyRequest(STD_SECRET, URL, BODY, headers, { now: new Date((now + 300) * 1000) }), 'standard')
      throwsCode(cw, () => cw.verifyRequest(STD_SECRET, URL, BODY, headers, { now: now + 301 }), 'timestamp_too_old',
        'timestamp is 301s old, beyond the 300s tolerance (replay?)')
      throwsCode(cw, () => cw.verifyRequest(STD_SECRET, URL, BODY, headers, { now: now - 11, toleranceSeconds: 10 }),
        'timestamp_too_new', 'timestamp is 11s in the future, beyond the 10s tolerance (clock skew?)')
      throwsCode(cw, () => cw.verifyRequest(STD_SECRET, URL, BODY, headers, { require: 'ion' }), 'missing_header',
        'missing `x-ion-signature` header')
      throwsCode(cw, () => cw.verifyRequest('not base64!', URL, BODY, headers), 'invalid_secret',
        'invalid secret: a Standard Webhooks secret is `whsec_` followed by base64')
      assert.throws(() => cw.verifyRequest(STD_SECRET, URL, BODY, headers, { require: 'hmac' }), {
        name: 'TypeError',
        message: 'require: unknown signature scheme `hmac`; expected `ion`, `standard` or `ed25519`',
      })
      // Scheme names are read in any case; the scheme returned is always lowercase.
      assert.equal(cw.verifyRequest(STD_SECRET, URL, BODY, headers, { require: 'Standard' }), 'standard')
      throwsCode(cw, () => cw.verifyRequest(STD_SECRET, URL, BODY, headers, { require: 'ION' }), 'missing_header',
        'missing `x-ion-signature` header')
      assert.throws(() => cw.verifyRequest(STD_SECRET, URL, BODY, headers, { now: 'soon' }), TypeError)
    })

    await t.test(`${name}: a whpk_ public key verifies v1a signed by node:crypto (OpenSSL)`, () => {
      const [signer, publicKey] = ed25519Key(7)
      const other = ed25519Key(8)
      const now = Math.floor(Date.now() / 1000)
      const signature = `${cw.signStandard(STD_SECRET, '17', now, BODY)} ${v1a(other[0], '17', now, BODY)} ${v1a(signer, '17', now, BODY)}`
      const headers = { 'webhook-id': '17', 'webhook-timestamp': String(now), 'webhook-signature': signature }
      // The same entry point as a whsec_ secret; the key selects Ed25519.
      assert.equal(cw.verifyRequest(publicKey, URL, BODY, headers), 'ed25519')
      assert.equal(cw.verifyRequest(other[1], URL, BODY, headers), 'ed25519')
      assert.equal(cw.verifyRequest(publicKey, URL, BODY, headers, { require: 'Ed25519' }), 'ed25519')
      assert.equal(cw.verifyRequest(STD_SECRET, URL, BODY, headers), 'standard')
      throwsCode(cw, () => cw.verifyRequest(publicKey, URL, `${BODY} `, headers), 'signature_mismatch',
        'signature does not match')
      throwsCode(cw, () => cw.verifyRequest(ed25519Key(9)[1], URL, BODY, headers), 'signature_mismatch')
      throwsCode(cw, () => cw.verifyRequest(publicKey, URL, BODY, headers, { now: now + 301 }), 'timestamp_too_old')
      throwsCode(cw, () => cw.verifyRequest(publicKey, URL, BODY, headers, { require: 'standard' }), 'invalid_secret')
      throwsCode(cw, () => cw.verifyRequest(STD_SECRET, URL, BODY, headers, { require: 'ed25519' }), 'invalid_secret')
      throwsCode(cw, () => cw.verifyRequest('whpk_AAAA', URL, BODY, headers), 'invalid_secret',
        'invalid secret: an Ed25519 public key is `whpk_` followed by base64 of its 32 bytes')
      const hmacOnly = { ...headers, 'webhook-signature': cw.signStandard(STD_SECRET, '17', now, BODY) }
      throwsCode(cw, () => cw.verifyRequest(publicKey, URL, BODY, hmacOnly), 'malformed_header')
    })

    await t.test(`${name}: parseEvent checks the envelope`, () => {
      const event = cw.parseEvent(Buffer.from(BODY))
      assert.equal(event.event_id, 17)
      assert.equal(event.action, 'update')
      assert.deepEqual(event.data.old, { status: 'open', qty: 1 })
      assert.deepEqual(cw.parseEvent(BODY), event)
      assert.throws(() => cw.parseEvent('{"event_id": 1}'), (err) => {
        assert.ok(err instanceof cw.InvalidEventError)
        assert.equal(err.code, 'invalid_event')
        assert.match(err.message, /^body is not a changewire event: missing field `subscription_id`/)
        return true
      })
      assert.throws(() => cw.parseEvent(BODY.replace('"update"', '"merge"')), /unknown variant `merge`/)
    })

    await t.test(`${name}: explain and diagnose`, () => {
      assert.equal(
        cw.explain(URL, BODY),
        `${URL}?etag:e1&id:7&new:{'status': 'done', '10': 1, '2': 2}&old:{'status': 'open', 'qty': 1.0}`,
      )
      assert.deepEqual(cw.diagnose(SECRET, URL, BODY, SIG), {
        signedString: cw.explain(URL, BODY),
        expectedSignature: SIG,
        matches: true,
        cause: null,
      })
      const slash = cw.diagnose(SECRET, `${URL}/`, BODY, SIG)
      assert.equal(slash.matches, false)
      assert.equal(
        slash.cause,
        `the signature matches the URL \`${URL}\` (without the trailing slash); verify with the URL exactly as registered`,
      )
      assert.equal(cw.UNICODE_VERSION, '14.0.0')
      assert.equal(cw.DEFAULT_TOLERANCE, 300)
      // The compiled core's version (Cargo) is the npm package's.
      assert.equal(cw.version, require('../package.json').version)
      assert.equal(cw.backend, name === 'native' ? 'native' : 'wasm')
    })
  }
})

test('CommonJS and ES module entry points export the same API', async () => {
  const cjs = require('..')
  const esm = await import('changewire')
  const wasmEsm = await import('changewire/wasm')
  for (const key of Object.keys(cjs)) {
    assert.equal(esm[key], cjs[key], key)
    assert.ok(key in wasmEsm, key)
  }
  assert.equal(esm.default, cjs)
  assert.equal(require('changewire/wasm').WebhookVerificationError, cjs.WebhookVerificationError)
})

test('without a native addon, `changewire` falls back to the WebAssembly build', () => {
  const { execFileSync } = require('node:child_process')
  const fs = require('node:fs')
  const os = require('node:os')
  const path = require('node:path')
  const root = path.join(__dirname, '..')
  // The package as published without its platform package: no .node file anywhere.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'changewire-fallback-'))
  try {
    for (const f of ['index.js', 'binding.js', 'package.json', 'lib', path.join('wasm', 'pkg', 'node')]) {
      fs.cpSync(path.join(root, f), path.join(dir, f), { recursive: true })
    }
    const probe = `const cw = require(${JSON.stringify(dir)});
      const sig = cw.signBody('k', 'https://x.test/h', '{"data": {"a": 1}}');
      console.log(JSON.stringify([cw.backend, cw.version, cw.verifySignature('k', 'https://x.test/h', {a: 1}, sig)]))`
    const run = (env) =>
      JSON.parse(execFileSync(process.execPath, ['-e', probe], { env: { ...process.env, ...env }, encoding: 'utf8' }))
    const version = require('../package.json').version
    assert.deepEqual(run({ CHANGEWIRE_BACKEND: '' }), ['wasm', version, true])
    assert.throws(
      () => execFileSync(process.execPath, ['-e', probe], { env: { ...process.env, CHANGEWIRE_BACKEND: 'native' }, stdio: 'pipe' }),
      /Cannot find native binding/,
    )
    // And beside this checkout's addon, CHANGEWIRE_BACKEND=wasm skips it.
    const here = `const cw = require(${JSON.stringify(root)}); console.log(JSON.stringify([cw.backend, cw.version]))`
    const forced = execFileSync(process.execPath, ['-e', here], { env: { ...process.env, CHANGEWIRE_BACKEND: 'wasm' }, encoding: 'utf8' })
    assert.deepEqual(JSON.parse(forced), ['wasm', version])
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

/** The ION signature (secret 'k') of a canonical string. */
function hmacOf(signed) {
  return require('node:crypto').createHmac('sha1', 'k').update(signed, 'utf8').digest('base64')
}
