// ES module entry of `changewire` (WebAssembly build); see wasm.js.
import api from './wasm.js'

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
