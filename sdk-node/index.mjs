// ES module entry of `changewire` (the native addon); see index.js.
import api from './index.js'

export const {
  verifySignature,
  verifyRequest,
  signBody,
  signStandard,
  explain,
  diagnose,
  parseEvent,
  WebhookVerificationError,
  InvalidEventError,
  UNICODE_VERSION,
  DEFAULT_TOLERANCE,
  version,
  backend,
} = api
export default api
