// A real signed delivery, verified by the installed npm package.
//
//   node deliver.mjs DIST/changewire VERSION native|wasm
//
// run from (a copy of this file in) the folder where `changewire` was
// installed, so `require('changewire')` and `import('changewire')` resolve as
// in a user's project. Starts the gateway binary on a fresh SQLite store and a
// receiver (node:http) on 127.0.0.1, registers it (GraphQL, ION + Standard
// Webhooks), publishes one event with `POST /v1/events`, and verifies what the
// receiver got through both entry points. Every wait is bounded; loopback only.
import { spawn } from 'node:child_process'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import { mkdtempSync, openSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const [binary, version, backend] = process.argv.slice(2)
const TOKEN = 'dist-test-admin-token-0123456789abcdef'
const require = createRequire(import.meta.url)

// Throws: a failure still runs the `finally` that stops the gateway, and an
// uncaught error exits non-zero.
function fail(message) {
  throw new Error(`deliver.mjs: FAIL: ${message}`)
}
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms))

const cjs = require('changewire')
const esm = await import('changewire')
for (const [entry, cw] of [
  ['require', cjs],
  ['import', esm],
]) {
  if (cw.version !== version) fail(`${entry}('changewire').version is ${cw.version}, the crates are ${version}`)
  if (cw.backend !== backend) fail(`${entry}('changewire').backend is ${cw.backend}, expected ${backend}`)
}
if (esm.default !== cjs || esm.verifyRequest !== cjs.verifyRequest) fail('the ES module is not the CommonJS API')
const resolved = require.resolve('changewire')
if (!resolved.includes('node_modules')) fail(`changewire resolved to ${resolved}, not node_modules`)

// The receiver.
const received = []
const receiver = createServer((req, res) => {
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    received.push({ url: req.url, rawHeaders: req.rawHeaders, headers: req.headers, body: Buffer.concat(chunks) })
    res.writeHead(200, { 'content-length': '0' }).end()
  })
})
await new Promise((ok) => receiver.listen(0, '127.0.0.1', ok))
const url = `http://127.0.0.1:${receiver.address().port}/hooks/ion-events`

// The gateway.
const port = await new Promise((ok) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address()
    s.close(() => ok(port))
  })
})
const work = mkdtempSync(join(tmpdir(), 'changewire-dist-node-'))
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CHANGEWIRE_')))
Object.assign(env, {
  CHANGEWIRE_LISTEN: `127.0.0.1:${port}`,
  CHANGEWIRE_STORE: `sqlite://${join(work, 'store.db')}`,
  CHANGEWIRE_ADMIN_TOKEN: TOKEN,
  CHANGEWIRE_ALLOW_HTTP: 'true',
  CHANGEWIRE_ALLOW_PRIVATE_NETWORKS: 'true',
  CHANGEWIRE_RESOURCES: 'RUNS=runs',
  CHANGEWIRE_LOG__LEVEL: 'warn',
  CHANGEWIRE_DELIVERY__POLL_INTERVAL_MS: '20',
})
const logFile = join(work, 'gateway.log')
const log = openSync(logFile, 'w')
const gateway = spawn(binary, ['serve'], { env, stdio: ['ignore', log, log] })
const base = `http://127.0.0.1:${port}`
const gatewayLog = () => readFileSync(logFile, 'utf8')

async function call(path, payload, expect) {
  const r = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(10_000),
  })
  const text = await r.text()
  if (r.status !== expect) fail(`${path} answered ${r.status}: ${text}`)
  return JSON.parse(text)
}
async function graphql(query) {
  const body = await call('/graphql', { query }, 200)
  if (body.errors) fail(`GraphQL: ${JSON.stringify(body.errors)}`)
  return body.data
}

let delivery
let secret
try {
  const deadline = Date.now() + 30_000
  for (;;) {
    if (gateway.exitCode !== null) fail(`changewire exited at start-up (${gateway.exitCode}): ${gatewayLog()}`)
    try {
      if ((await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) })).ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) fail('changewire did not become healthy in 30 s')
    await sleep(100)
  }
  const created = await graphql(
    `mutation { createWebhookReceiver(input: { name: "dist", webhookUri: ${JSON.stringify(url)}, ` +
      `signatureSchemes: [ION, STANDARD] }) { webhookReceiver { id sharedSecret } } }`,
  )
  const { id, sharedSecret } = created.createWebhookReceiver.webhookReceiver
  secret = sharedSecret
  await graphql(
    `mutation { createWebhookSubscription(input: { receiverId: ${JSON.stringify(id)}, resource: RUNS, action: UPDATE }) ` +
      '{ webhookSubscription { id } } }',
  )
  await call(
    '/v1/events',
    {
      resource: 'RUNS',
      action: 'UPDATE',
      id: 42,
      old: { status: 'open' },
      new: { status: 'done', qty: 1.5, note: 'café\n' },
    },
    202,
  )
  const until = Date.now() + 30_000
  while (received.length === 0) {
    if (Date.now() > until) fail(`no delivery in 30 s: ${gatewayLog()}`)
    await sleep(20)
  }
  delivery = received[0]
} finally {
  gateway.kill('SIGTERM')
  const exited = await Promise.race([
    new Promise((ok) => (gateway.exitCode !== null ? ok(true) : gateway.once('exit', () => ok(true)))),
    sleep(15_000).then(() => false),
  ])
  if (!exited) gateway.kill('SIGKILL')
  receiver.closeAllConnections()
  receiver.close()
}

const { body, headers, rawHeaders } = delivery
for (const name of ['x-ion-signature', 'webhook-id', 'webhook-timestamp', 'webhook-signature']) {
  if (!(name in headers)) fail(`the delivery has no ${name} header: ${JSON.stringify(headers)}`)
}
const answers = {}
for (const [entry, cw] of [
  ['require', cjs],
  ['import', esm],
]) {
  const got = {
    default: cw.verifyRequest(secret, url, body, headers),
    ion: cw.verifyRequest(secret, url, body, rawHeaders, { require: 'ion' }),
    standard: cw.verifyRequest(secret, url, body, new Headers(headers), { require: 'standard' }),
  }
  if (JSON.stringify(got) !== JSON.stringify({ default: 'standard', ion: 'ion', standard: 'standard' })) {
    fail(`${entry}: schemes ${JSON.stringify(got)}`)
  }
  const event = cw.parseEvent(body)
  if (event.resource !== 'runs' || event.action !== 'update' || event.data.new.note !== 'café\n') {
    fail(`${entry}: parsed event ${JSON.stringify(event)}`)
  }
  const tampered = Buffer.from(body.toString('utf8').replace('"done"', '"paid"'))
  let refused = null
  try {
    cw.verifyRequest(secret, url, tampered, headers, { require: 'ion' })
  } catch (err) {
    refused = err
  }
  if (!(refused instanceof cw.WebhookVerificationError) || refused.code !== 'signature_mismatch') {
    fail(`${entry}: a tampered body gave ${refused}`)
  }
  answers[entry] = got
}
console.log(
  `node (${backend}): changewire ${cjs.version} from ${resolved} verified a delivery ` +
    `(${body.length} bytes) through require and import: ${JSON.stringify(answers.require)}`,
)
