// Writes an XCFramework folder shaped like Xcode's: Info.plist on top, one folder per slice, flat iOS
// frameworks, a versioned macOS framework full of relative symlinks, executable binaries, an empty folder.
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

/** Deterministic bytes that compress like a Mach-O binary: runs of structure mixed with high-entropy code. */
export function binaryBytes(seed, size) {
  const out = Buffer.alloc(size)
  let block = createHash('sha256').update(seed).digest()
  for (let offset = 0; offset < size; offset += 32) {
    block = createHash('sha256').update(block).digest()
    // Every other 32-byte block is zeroed except its first bytes: real code sits between padding and tables.
    const chunk = (offset / 32) % 2 === 0 ? block : Buffer.concat([block.subarray(0, 4), Buffer.alloc(28)])
    chunk.copy(out, offset, 0, Math.min(32, size - offset))
  }
  return out
}

function plist(entries) {
  const body = Object.entries(entries)
    .map(([k, v]) => `\t<key>${k}</key>\n\t<string>${v}</string>`)
    .join('\n')
  return `<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n<dict>\n${body}\n</dict>\n</plist>\n`
}

function flatFramework(dir, name, seed, size) {
  fs.mkdirSync(path.join(dir, 'Headers'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'Modules'), { recursive: true })
  fs.writeFileSync(path.join(dir, name), binaryBytes(seed, size), { mode: 0o755 })
  fs.writeFileSync(
    path.join(dir, 'Info.plist'),
    plist({ CFBundleExecutable: name, CFBundleIdentifier: `org.example.${name}` }),
  )
  fs.writeFileSync(path.join(dir, 'Headers', `${name}-Swift.h`), `// ${name}\n#import <Foundation/Foundation.h>\n`)
  fs.writeFileSync(
    path.join(dir, 'Modules', 'module.modulemap'),
    `framework module ${name} {\n  header "${name}-Swift.h"\n  requires objc\n}\n`,
  )
}

function versionedFramework(dir, name, seed, size) {
  const a = path.join(dir, 'Versions', 'A')
  fs.mkdirSync(path.join(a, 'Resources'), { recursive: true })
  fs.mkdirSync(path.join(a, 'Headers'), { recursive: true })
  fs.mkdirSync(path.join(a, 'Modules'), { recursive: true })
  fs.writeFileSync(path.join(a, name), binaryBytes(seed, size), { mode: 0o755 })
  fs.writeFileSync(path.join(a, 'Resources', 'Info.plist'), plist({ CFBundleExecutable: name }))
  fs.writeFileSync(path.join(a, 'Headers', `${name}-Swift.h`), `// ${name}\n`)
  fs.writeFileSync(path.join(a, 'Modules', 'module.modulemap'), `framework module ${name} {}\n`)
  fs.symlinkSync('A', path.join(dir, 'Versions', 'Current'))
  for (const item of [name, 'Resources', 'Headers', 'Modules'])
    fs.symlinkSync(`Versions/Current/${item}`, path.join(dir, item))
}

const slices = {
  iOS: 'ios-arm64',
  iOSSimulator: 'ios-arm64_x86_64-simulator',
  macOS: 'macos-arm64_x86_64',
  macCatalyst: 'ios-arm64_x86_64-maccatalyst',
  tvOS: 'tvos-arm64',
  tvOSSimulator: 'tvos-arm64_x86_64-simulator',
  watchOS: 'watchos-arm64_arm64_32',
  watchOSSimulator: 'watchos-arm64_x86_64-simulator',
  visionOS: 'xros-arm64',
  visionOSSimulator: 'xros-arm64-simulator',
}

export function writeFramework(folder, name, { sdks, seed, binarySize }) {
  fs.mkdirSync(folder, { recursive: true })
  fs.writeFileSync(path.join(folder, 'Info.plist'), plist({ XCFrameworkFormatVersion: '1.0' }))
  for (const sdk of sdks) {
    const slice = path.join(folder, slices[sdk] ?? sdk.toLowerCase(), `${name}.framework`)
    fs.mkdirSync(slice, { recursive: true })
    if (sdk === 'macOS' || sdk === 'macCatalyst') versionedFramework(slice, name, `${seed}/${sdk}`, binarySize)
    else flatFramework(slice, name, `${seed}/${sdk}`, binarySize)
  }
  fs.mkdirSync(path.join(folder, slices[sdks[0]] ?? 'ios-arm64', 'dSYMs'), { recursive: true }) // an empty folder, kept by archives
}
