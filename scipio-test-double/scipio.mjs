// SCIPIO TEST DOUBLE: stands in for `scipio prepare` where Scipio cannot run (it needs macOS and Xcode).
// It reproduces what this action can observe of Scipio 0.33: one `<Name>.xcframework` per target of every
// pinned package in the output folder, a `.<Target>.version` file beside it with Scipio's exact bytes, and
// with `--framework-cache-policy project` it keeps a framework whose VersionFile matches the key it computes
// now, deleting and rebuilding any other. The targets of each package, and each target's direct target
// dependencies, come from `scipio-test-double.json` in the package folder (the real Scipio reads them from the
// package graph). Keys are computed as 0.33.0 does, leaves first: `dependencyCacheKeyChecksums` holds each
// dependency's key (the SHA-256 of its VersionFile bytes), sorted by target name then checksum, omitted when empty.
//
// Test hooks (environment): SCIPIO_TEST_DOUBLE_LOG (append one JSON line per target: built or skipped),
// SCIPIO_TEST_DOUBLE_FAIL (comma-separated targets that fail to build; the others are still written, then
// exit 1, as Scipio does), SCIPIO_TEST_DOUBLE_BUILD_MS (how long building one target takes, default 0: a real
// build takes minutes), SCIPIO_TEST_DOUBLE_NONDETERMINISM (any text, mixed into every binary: builds that are
// not reproducible, as real Xcode builds on different runners are; the VersionFiles, hence the keys, stay). Xcode and clang versions come from `xcrun` (see bin/xcrun for its variables). Like
// Scipio (through SwiftPM), it leaves the resolution in `<package>/.build`.
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { encodeVersionFile, versionFileDocument } from './version-file.mjs'
import { writeFramework } from './framework-tree.mjs'

export const SCIPIO_VERSION = '5b6a6c1f3d2e4a0b9c8d7e6f5a4b3c2d1e0f9a8b'

function fail(message) {
  console.error(`error: ${message}`)
  process.exit(64)
}

function parseArgs(argv) {
  const [command, ...rest] = argv
  if (command !== 'prepare') fail(`the test double implements only 'prepare' (got '${command ?? ''}')`)
  const opts = {
    configuration: 'release',
    frameworkType: 'dynamic',
    supportSimulators: false,
    embedDebugSymbols: false,
    libraryEvolution: false,
    cachePolicy: 'project',
    output: undefined,
    dir: undefined,
    overwrite: false,
  }
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]
    const value = () => rest[++i] ?? fail(`${a} needs a value`)
    if (a === '-o' || a === '--output') opts.output = value()
    else if (a === '-c' || a === '--configuration') opts.configuration = value()
    else if (a === '--framework-type') opts.frameworkType = value()
    else if (a === '--framework-cache-policy') opts.cachePolicy = value()
    else if (a === '--support-simulators') opts.supportSimulators = true
    else if (a === '--embed-debug-symbols') opts.embedDebugSymbols = true
    else if (a === '--enable-library-evolution') opts.libraryEvolution = true
    else if (a === '--disable-library-evolution') opts.libraryEvolution = false
    else if (a === '-f' || a === '--overwrite') opts.overwrite = true
    else if (a === '-v' || a === '--verbose') continue
    else if (a.startsWith('-')) fail(`unknown option '${a}'`)
    else if (opts.dir === undefined) opts.dir = a
    else fail(`unexpected argument '${a}'`)
  }
  opts.dir = path.resolve(opts.dir ?? '.')
  opts.output = path.resolve(opts.output ?? path.join(opts.dir, 'XCFrameworks'))
  if (!['debug', 'release'].includes(opts.configuration)) fail(`bad configuration ${opts.configuration}`)
  if (!['dynamic', 'static', 'mergeable'].includes(opts.frameworkType)) fail(`bad framework type ${opts.frameworkType}`)
  return opts
}

function sdksFromManifest(manifest, supportSimulators) {
  const platforms = {
    iOS: 'iOS',
    macOS: 'macOS',
    tvOS: 'tvOS',
    watchOS: 'watchOS',
    visionOS: 'visionOS',
    macCatalyst: 'macCatalyst',
  }
  const sdks = []
  for (const [platform, sdk] of Object.entries(platforms)) {
    if (new RegExp(`\\.${platform}\\(`).test(manifest)) {
      sdks.push(sdk)
      if (supportSimulators && !['macOS', 'macCatalyst'].includes(sdk)) sdks.push(`${sdk}Simulator`)
    }
  }
  return sdks.length ? sdks : ['iOS']
}

function toolchain() {
  const xcrun = (args) => execFileSync('xcrun', args, { encoding: 'utf8' })
  const xcode = xcrun(['xcodebuild', '-version'])
  const clang = xcrun(['clang', '--version'])
  return {
    xcodeVersion: /^Xcode\s+(\S+)/m.exec(xcode)[1],
    xcodeBuildVersion: /^Build version\s+(\S+)/m.exec(xcode)[1],
    clangVersion: /\(([^)]+)\)/.exec(clang)[1],
  }
}

function readPins(dir) {
  const doc = JSON.parse(fs.readFileSync(path.join(dir, 'Package.resolved'), 'utf8'))
  if (doc.version === 1) {
    return doc.object.pins.map((p) => ({
      identity: p.repositoryURL
        .replace(/\/+$/, '')
        .split('/')
        .pop()
        .replace(/\.git$/, '')
        .toLowerCase(),
      kind: 'remoteSourceControl',
      location: p.repositoryURL,
      state: p.state,
    }))
  }
  return doc.pins.map((p) => ({
    identity: p.identity.toLowerCase(),
    kind: p.kind,
    location: p.location,
    state: p.state,
  }))
}

// What SwiftPM leaves when Scipio resolves the package: `.build/workspace-state.json` and one folder per
// dependency (`checkouts/<repository name>` or `registry/downloads/<scope>/<name>/<version>`) holding its
// manifest, which declares the package's targets.
// Pins the package graph does not need are not checked out.
function writeResolution(dir, pins, graph) {
  const build = path.join(dir, '.build')
  const dependencies = pins
    .filter((pin) => graph.packages[pin.identity])
    .map((pin) => {
      const registry = pin.kind === 'registry'
      const [scope, ...name] = pin.identity.split('.')
      const subpath = registry
        ? `${scope}/${name.join('.')}/${pin.state.version}`
        : pin.location
            .replace(/\/+$/, '')
            .split(/[/:]/)
            .pop()
            .replace(/\.git$/, '')
      const folder = path.join(build, registry ? 'registry/downloads' : 'checkouts', subpath)
      const targets = (graph.packages[pin.identity]?.targets ?? []).map((t) => `        .target(name: "${t.name}"),`)
      fs.mkdirSync(folder, { recursive: true })
      fs.writeFileSync(
        path.join(folder, 'Package.swift'),
        `// swift-tools-version:5.9\nimport PackageDescription\n\nlet package = Package(\n    name: "${subpath}",\n    targets: [\n${targets.join('\n')}\n    ]\n)\n`,
      )
      const state = registry
        ? { name: 'registryDownload', version: pin.state.version }
        : { name: 'sourceControlCheckout', checkoutState: pin.state }
      const location = registry ? pin.identity : pin.location
      return {
        basedOn: null,
        packageRef: { identity: pin.identity, kind: pin.kind, location, name: subpath },
        state,
        subpath,
      }
    })
  fs.writeFileSync(
    path.join(build, 'workspace-state.json'),
    JSON.stringify({ object: { artifacts: [], dependencies }, version: 6 }, null, 2),
  )
}

function frameworkName(target) {
  const name = target.replace(/[^0-9A-Za-z]/g, '_')
  return /^[0-9]/.test(name) ? `_${name}` : name
}

function main() {
  const opts = parseArgs(process.argv.slice(2))
  const manifest = fs.readFileSync(path.join(opts.dir, 'Package.swift'), 'utf8')
  const graph = JSON.parse(fs.readFileSync(path.join(opts.dir, 'scipio-test-double.json'), 'utf8'))
  const tools = toolchain()
  const sdks = sdksFromManifest(manifest, opts.supportSimulators)
  const failing = new Set((process.env.SCIPIO_TEST_DOUBLE_FAIL ?? '').split(',').filter(Boolean))
  const logFile = process.env.SCIPIO_TEST_DOUBLE_LOG
  const buildMs = Number(process.env.SCIPIO_TEST_DOUBLE_BUILD_MS ?? 0) || 0
  const nondeterminism = process.env.SCIPIO_TEST_DOUBLE_NONDETERMINISM ?? ''
  const log = (event, target) => logFile && fs.appendFileSync(logFile, JSON.stringify({ event, target }) + '\n')

  const pins = readPins(opts.dir)
  writeResolution(opts.dir, pins, graph)
  // Targets in dependency order, each with its package's pin.
  const targets = new Map()
  for (const pin of pins) {
    for (const t of graph.packages[pin.identity]?.targets ?? [])
      targets.set(t.name, { ...t, pin: pin.state, identity: pin.identity })
  }
  const keys = new Map()
  const order = []
  const visit = (name, stack = []) => {
    if (order.includes(name)) return
    if (stack.includes(name)) fail(`dependency cycle at ${name}`)
    const t = targets.get(name)
    if (!t) return
    for (const dep of t.dependencies ?? []) visit(dep, [...stack, name])
    order.push(name)
  }
  for (const name of [...targets.keys()].sort()) visit(name)

  fs.mkdirSync(opts.output, { recursive: true })
  let failed = 0
  for (const name of order) {
    const t = targets.get(name)
    // Each checksum is the dependency's key: the SHA-256 of its VersionFile bytes. A target with a dependency
    // that has no key (not pinned, or itself keyless) gets no key either: always built, no VersionFile.
    const keyless = (t.dependencies ?? []).some((d) => !keys.has(d))
    const dependencyChecksums = keyless
      ? []
      : (t.dependencies ?? []).map((d) => ({ checksum: keys.get(d), targetName: d }))
    const bytes = encodeVersionFile(
      versionFileDocument({
        targetName: name,
        pin: t.pin,
        buildOptions: { ...opts, sdks },
        ...tools,
        scipioVersion: SCIPIO_VERSION,
        dependencyChecksums,
      }),
    )
    const key = keyless ? undefined : createHash('sha256').update(bytes).digest('hex')
    if (key) keys.set(name, key)
    const folder = path.join(opts.output, `${frameworkName(name)}.xcframework`)
    const versionFile = path.join(opts.output, `.${name}.version`)
    const existing = fs.existsSync(versionFile)
      ? createHash('sha256').update(fs.readFileSync(versionFile)).digest('hex')
      : undefined
    if (key && !opts.overwrite && opts.cachePolicy !== 'disabled' && fs.existsSync(folder) && existing === key) {
      console.log(`✅ Valid ${name}.xcframework exists. Skip building.`)
      log('skipped', name)
      continue
    }
    fs.rmSync(folder, { recursive: true, force: true })
    if (failing.has(name)) {
      console.error(`❌ Failed to build ${name}`)
      log('failed', name)
      failed += 1
      continue
    }
    console.log(`📦 Building ${name} for ${sdks.join(', ')}`)
    if (buildMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, buildMs)
    writeFramework(folder, frameworkName(name), {
      sdks,
      seed: `${name}@${t.pin.revision ?? t.pin.version}${nondeterminism ? `#${nondeterminism}` : ''}`,
      binarySize: t.binarySize ?? 48 * 1024,
    })
    if (key) fs.writeFileSync(versionFile, bytes)
    else fs.rmSync(versionFile, { force: true })
    log('built', name)
  }
  if (failed > 0) {
    console.error(`error: ${failed} targets failed to build`)
    process.exit(1)
  }
}

main()
