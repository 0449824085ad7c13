// A changewire / ION webhook receiver with Express.
//
//   CHANGEWIRE_SECRET=s3cret CHANGEWIRE_URL=https://hooks.example.com/ion-events \
//     node examples/express-receiver.js        # listens on 127.0.0.1:3000 (PORT)
//
// CHANGEWIRE_URL is the receiver URL *as registered with the gateway* (what
// the signature covers), not the address this process listens on.
'use strict'

const express = require('express')
const { verifyRequest, parseEvent, WebhookVerificationError } = require('changewire')

function createApp({
  secret = process.env.CHANGEWIRE_SECRET || 's3cret',
  url = process.env.CHANGEWIRE_URL || 'https://hooks.example.com/ion-events',
} = {}) {
  const app = express()
  const seen = new Set() // use a table with a unique event_id in production

  // express.raw keeps the body as the bytes that were signed: never verify
  // the output of express.json(), which has re-ordered and re-typed it.
  app.post('/ion-events', express.raw({ type: () => true, limit: '2mb' }), (req, res) => {
    const body = req.body instanceof Buffer ? req.body : Buffer.alloc(0)
    try {
      verifyRequest(secret, url, body, req.headers)
    } catch (err) {
      if (err instanceof WebhookVerificationError) return res.status(401).type('text').send(err.message)
      throw err
    }
    const event = parseEvent(body)
    if (seen.has(event.event_id)) return res.type('text').send('duplicate') // ack: stop retries
    seen.add(event.event_id)
    console.log(event.action, event.resource, event.data.id, event.data.new)
    res.type('text').send('processed')
  })
  return app
}

if (require.main === module) {
  const port = Number(process.env.PORT || 3000)
  createApp().listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}/ion-events`))
}

module.exports = { createApp }
