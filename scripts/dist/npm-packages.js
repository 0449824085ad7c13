#!/usr/bin/env node
// Stages the npm packages of sdk-node the way napi-rs projects publish them,
// and packs them with `npm pack`:
//
//   changewire-<version>.tgz                  the main package: JavaScript API,
//       loader (index.js → binding.js), types and the WebAssembly build
//       (wasm/pkg); `optionalDependencies` names the platform package. No
//       install script and no other dependency: installing it never builds.
//   changewire-<platform>-<version>.tgz       the prebuilt addon alone
//       (changewire.<platform>.node) with `os`/`cpu`/`libc`, e.g.
//       changewire-linux-x64-gnu, the name binding.js requires.
//
//   node scripts/dist/npm-packages.js ADDON.node STAGE_DIR OUT_DIR
//
// The repository's own sdk-node/package.json keeps its `install` script (the
// from-source path, `npm install ./sdk-node`); the published package.json is
// written here from it.
'use strict'

const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..', '..')
const sdk = path.join(root, 'sdk-node')

/** napi-rs's platform triple of this machine, and its package.json fields. */
function platform() {
  const { platform: os, arch } = process
  if (os !== 'linux') throw new Error(`dist builds Linux packages only (this is ${os})`)
  const glibc = process.report.getReport().header.glibcVersionRuntime
  if (!glibc) throw new Error('dist builds the glibc (gnu) package; this Node runs on musl')
  return { suffix: `linux-${arch}-gnu`, fields: { os: ['linux'], cpu: [arch], libc: ['glibc'] } }
}

function copy(from, to) {
  fs.mkdirSync(path.dirname(to), { recursive: true })
  fs.cpSync(from, to, { recursive: true })
}

function pack(dir, out) {
  const result = spawnSync('npm', ['pack', '--json', '--pack-destination', out], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (result.status !== 0) throw new Error(`npm pack in ${dir} failed (${result.status})`)
  const [info] = JSON.parse(result.stdout)
  return info
}

function main([addon, stage, out]) {
  if (!addon || !stage || !out) throw new Error('usage: npm-packages.js ADDON.node STAGE_DIR OUT_DIR')
  const source = JSON.parse(fs.readFileSync(path.join(sdk, 'package.json'), 'utf8'))
  const { suffix, fields } = platform()
  const platformName = `${source.name}-${suffix}`
  const binaryFile = `${source.napi.binaryName}.${suffix}.node`
  const common = {
    version: source.version,
    license: source.license,
    repository: source.repository,
    engines: source.engines,
  }

  for (const required of ['wasm/pkg/node/changewire_wasm.js', 'wasm/pkg/web/index.mjs']) {
    if (!fs.existsSync(path.join(sdk, required))) throw new Error(`sdk-node/${required} is missing: build the wasm first`)
  }
  fs.rmSync(stage, { recursive: true, force: true })

  // The platform package: the .node file and its package.json, nothing else.
  const platformDir = path.join(stage, platformName)
  copy(addon, path.join(platformDir, binaryFile))
  const platformPkg = {
    name: platformName,
    ...common,
    description: `The ${suffix} native addon of ${source.name} (installed by ${source.name} as an optional dependency).`,
    main: binaryFile,
    files: [binaryFile],
    ...fields,
  }
  fs.writeFileSync(path.join(platformDir, 'package.json'), `${JSON.stringify(platformPkg, null, 2)}\n`)
  fs.writeFileSync(
    path.join(platformDir, 'README.md'),
    `# ${platformName}\n\nThe prebuilt native addon of [\`${source.name}\`](https://www.npmjs.com/package/${source.name}) for ${suffix}.\nInstall \`${source.name}\`, not this package.\n`,
  )

  // The main package: what the `files` of sdk-node lists, minus the sources
  // and build scripts (nothing compiles on install) and any local .node file.
  const mainDir = path.join(stage, source.name)
  const shipped = [
    'index.js',
    'index.mjs',
    'index.d.ts',
    'binding.js',
    'binding.d.ts',
    'lib',
    'wasm.js',
    'wasm.mjs',
    'wasm.d.ts',
    'wasm-web.d.ts',
    'wasm/pkg',
    'README.md',
  ]
  for (const f of shipped) copy(path.join(sdk, f), path.join(mainDir, f))
  const mainPkg = {
    name: source.name,
    ...common,
    description: source.description,
    main: source.main,
    types: source.types,
    exports: source.exports,
    files: shipped.filter((f) => f !== 'README.md').map((f) => (fs.statSync(path.join(sdk, f)).isDirectory() ? `${f}/` : f)),
    napi: source.napi,
    optionalDependencies: { [platformName]: source.version },
  }
  for (const key of ['scripts', 'dependencies', 'devDependencies', 'peerDependencies']) {
    if (key in mainPkg) throw new Error(`the published package.json must not have ${key}`)
  }
  fs.writeFileSync(path.join(mainDir, 'package.json'), `${JSON.stringify(mainPkg, null, 2)}\n`)

  fs.mkdirSync(out, { recursive: true })
  for (const dir of [mainDir, platformDir]) {
    const info = pack(dir, out)
    const names = info.files.map((f) => f.path)
    if (names.some((n) => /\.(rs|toml)$/.test(n) || n.startsWith('scripts/'))) {
      throw new Error(`${info.filename} ships sources: ${names.join(', ')}`)
    }
    if (dir === mainDir && names.some((n) => n.endsWith('.node'))) throw new Error(`${info.filename} ships a .node file`)
    console.log(
      `npm: ${info.filename}  ${info.size} bytes packed, ${info.unpackedSize} unpacked, ${info.entryCount} files`,
    )
  }
}

try {
  main(process.argv.slice(2))
} catch (err) {
  console.error(`npm-packages: ${err.message}`)
  process.exitCode = 1
}
