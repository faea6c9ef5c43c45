import { createHash } from 'node:crypto'
import { Formats, MetaFolder } from '../constants.js'
import type { BuildOptions } from '../inputs/inputs.js'
import type { Pin } from './resolved.js'
import type { Toolchain } from './toolchain.js'

/** `code.tar.zst`: a tar.zst whose Mach-O machine code is stored converted (archive/machine-code/). */
export type ArchiveFormat = 'tar.zst' | 'tar.gz' | 'code.tar.zst'

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** JSON with object keys sorted at every level and no whitespace: one text per value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

function describeBuild(build: BuildOptions) {
  return {
    configuration: build.configuration,
    frameworkType: build.frameworkType,
    supportSimulators: build.supportSimulators,
    embedDebugSymbols: build.embedDebugSymbols,
    libraryEvolution: build.libraryEvolution,
    extraArgs: build.extraArgs,
  }
}

function describeToolchain(toolchain: Toolchain) {
  return {
    xcodeVersion: toolchain.xcodeVersion,
    xcodeBuildVersion: toolchain.xcodeBuildVersion,
    clangVersion: toolchain.clangVersion,
    scipioSha256: toolchain.scipioSha256,
  }
}

function describePin(pin: Pin) {
  return {
    identity: pin.identity,
    kind: pin.kind,
    location: pin.location,
    revision: pin.revision ?? null,
    version: pin.version ?? null,
    branch: pin.branch ?? null,
  }
}

/** The text hashed into a package's lookup key; documented in docs/how-it-works.md ("Keys and bucket layout"). */
export function packageKeyDescription(pin: Pin, build: BuildOptions, toolchain: Toolchain, salt: string): string {
  return canonicalJson({
    format: Formats.packageKey,
    pin: describePin(pin),
    build: describeBuild(build),
    toolchain: describeToolchain(toolchain),
    salt,
  })
}

export function packageKey(pin: Pin, build: BuildOptions, toolchain: Toolchain, salt: string): string {
  return sha256Hex(packageKeyDescription(pin, build, toolchain, salt))
}

/** Names the whole build (manifest, every pin, options, toolchain): a producer marks it complete once all is stored. */
export function setKey(
  manifest: Uint8Array,
  pins: Pin[],
  build: BuildOptions,
  toolchain: Toolchain,
  salt: string,
): string {
  const sortedPins = [...pins].sort((a, b) => (a.identity < b.identity ? -1 : a.identity > b.identity ? 1 : 0))
  return sha256Hex(
    canonicalJson({
      format: Formats.setKey,
      manifestSha256: sha256Hex(manifest),
      pins: sortedPins.map(describePin),
      build: describeBuild(build),
      toolchain: describeToolchain(toolchain),
      salt,
    }),
  )
}

/** Scipio's own cache key for a target: the SHA-256 of its VersionFile's bytes. */
export function scipioKey(versionFileBytes: Uint8Array): string {
  return sha256Hex(versionFileBytes)
}

function withPrefix(prefix: string, key: string): string {
  return prefix ? `${prefix}/${key}` : key
}

export function indexObjectKey(prefix: string, packageKeyHex: string): string {
  return withPrefix(prefix, `${MetaFolder}/packages/${packageKeyHex}.json`)
}

export function completeObjectKey(prefix: string, setKeyHex: string): string {
  return withPrefix(prefix, `${MetaFolder}/complete/${setKeyHex}.json`)
}

export interface PackagePlan {
  pin: Pin
  packageKey: string
  indexKey: string
}

/** Every key one run needs, computed once before any network call. */
export interface KeyPlan {
  packages: PackagePlan[]
  setKey: string
  completeKey: string
}

export function planKeys(
  prefix: string,
  pins: Pin[],
  manifest: Uint8Array,
  build: BuildOptions,
  toolchain: Toolchain,
  salt: string,
): KeyPlan {
  const packages = pins.map((pin) => {
    const key = packageKey(pin, build, toolchain, salt)
    return { pin, packageKey: key, indexKey: indexObjectKey(prefix, key) }
  })
  const set = setKey(manifest, pins, build, toolchain, salt)
  return { packages, setKey: set, completeKey: completeObjectKey(prefix, set) }
}
