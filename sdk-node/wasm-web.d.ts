// Types of `changewire/wasm/web`: the API of `changewire`, available after
// `await init()` (which fetches and compiles the .wasm; pass a URL, Response,
// BufferSource or WebAssembly.Module to load it from elsewhere).
export * from './index'
export type InitInput = RequestInfo | URL | Response | BufferSource | WebAssembly.Module
/** Loads the WebAssembly module; call (and await) once before anything else. */
export default function init(input?: InitInput | Promise<InitInput>): Promise<void>
/** Synchronous `init` from bytes or a compiled module. */
export function initSync(module: BufferSource | WebAssembly.Module): void
