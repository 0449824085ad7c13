'use strict'
// The Express example, served on 127.0.0.1 and driven with fetch.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { createApp } = require('../examples/express-receiver.js')
const { signBody, signStandard } = require('..')

const URL = 'https://hooks.example.com/ion-events'
const SECRET = 'whsec_c2VjcmV0LWtleS1ieXRlcw=='
const BODY =
  '{"event_id": 42, "subscription_id": 1, "resource": "run_steps", "action": "update", "transaction_id": 7, ' +
  '"occurred_at": "2026-04-26T19:33:42.108Z", "data": {"id": 1234, "etag": "abc123", ' +
  '"old": {"status": "in_progress"}, "new": {"status": "complete", "10": 1, "2": 2.0}}}'

test('the Express example verifies, deduplicates and refuses', async () => {
  const server = createApp({ secret: SECRET, url: URL }).listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const { port } = server.address()
  const post = async (body, headers) => {
    const res = await fetch(`http://127.0.0.1:${port}/ion-events`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', ...headers },
      signal: AbortSignal.timeout(10_000),
    })
    return [res.status, await res.text()]
  }
  try {
    const ion = { 'x-ion-signature': signBody(SECRET, URL, BODY) }
    const now = Math.floor(Date.now() / 1000)
    const other = BODY.replace('"event_id": 42', '"event_id": 43')
    const std = { 'webhook-id': '43', 'webhook-timestamp': String(now), 'webhook-signature': signStandard(SECRET, '43', now, other) }
    assert.deepEqual(await post(BODY, ion), [200, 'processed'])
    assert.deepEqual(await post(BODY, ion), [200, 'duplicate'])
    assert.deepEqual(await post(BODY.replace('complete', 'cancelled'), ion), [401, 'signature does not match'])
    assert.deepEqual(await post(BODY, {}), [401, 'missing `x-ion-signature` header'])
    assert.deepEqual(await post(other, std), [200, 'processed'])
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})
