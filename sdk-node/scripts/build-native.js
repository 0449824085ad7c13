#!/usr/bin/env node
// Builds the native addon from this checkout: `cargo build --release -p
// changewire-node`, then copies the cdylib to `changewire.<platform>.node`
// beside package.json, where `binding.js` loads it.
//
// npm runs this as the package's `install` script, also when the folder is
// installed from elsewhere (`npm install ./sdk-node`), and then without
// devDependencies: so it uses nothing but Node itself and cargo.
//
// Environment: CARGO (default `cargo`), CARGO_TARGET_DIR (respected: the
// artifact path comes from cargo's JSON messages), CHANGEWIRE_NATIVE_PROFILE
// (`release`, the default, or `debug`), CHANGEWIRE_SKIP_NATIVE_BUILD=1 to skip.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')

function isMusl() {
  try {
    return !process.report.getReport().header.glibcVersionRuntime
  } catch {
    return false
  }
}

/** napi-rs's platform suffix: linux-x64-gnu, darwin-arm64, win32-x64-msvc, … */
function platformSuffix() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function main() {
  if (process.env.CHANGEWIRE_SKIP_NATIVE_BUILD) {
    console.log('changewire: CHANGEWIRE_SKIP_NATIVE_BUILD is set, not building the native addon')
    return 0
  }
  const debug = process.env.CHANGEWIRE_NATIVE_PROFILE === 'debug'
  const cargo = process.env.CARGO || 'cargo'
  const args = ['build', '-p', 'changewire-node', '--message-format=json-render-diagnostics']
  if (!debug) args.splice(1, 0, '--release')
  const started = Date.now()
  console.log(`changewire: ${cargo} ${args.join(' ')}`)
  const result = spawnSync(cargo, args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 256 * 1024 * 1024,
    encoding: 'utf8',
  })
  if (result.error) {
    console.error(
      `changewire: cannot run ${cargo} (${result.error.message}); building from source needs a Rust toolchain: https://rustup.rs`,
    )
    return 1
  }
  if (result.status !== 0) {
    console.error(`changewire: cargo build failed with status ${result.status}`)
    return result.status || 1
  }
  let artifact
  for (const line of result.stdout.split('\n')) {
    if (!line.startsWith('{')) continue
    let message
    try {
      message = JSON.parse(line)
    } catch {
      continue
    }
    if (
      message.reason === 'compiler-artifact' &&
      message.target &&
      message.target.name === 'changewire_node' &&
      message.target.kind.includes('cdylib')
    ) {
      artifact = message.filenames.find((f) => /\.(so|dylib|dll)$/.test(f))
    }
  }
  if (!artifact) {
    console.error('changewire: cargo built no changewire_node cdylib')
    return 1
  }
  const dest = path.join(root, `changewire.${platformSuffix()}.node`)
  const tmp = `${dest}.${process.pid}.tmp`
  fs.copyFileSync(artifact, tmp)
  fs.renameSync(tmp, dest)
  console.log(`changewire: built ${path.relative(root, dest)} in ${((Date.now() - started) / 1000).toFixed(1)}s`)
  return 0
}

process.exitCode = main()
