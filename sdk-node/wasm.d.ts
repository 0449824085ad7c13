// Types of `changewire/wasm`: the same API as the native build.
export * from './index'
export { default } from './index'
