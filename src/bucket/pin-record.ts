import { Formats, MetaFolder } from '../constants.js'
import { errorMessage, StorageError } from '../errors.js'
import type { BuildOptions } from '../inputs/inputs.js'
import { isRecord } from '../json.js'
import { canonicalJson, sha256Hex } from '../keys/keys.js'
import type { Pin } from '../keys/resolved.js'
import { getJson, type Storage } from '../storage/index.js'
import { isRefused } from '../storage/refusals.js'
import type { Toolchain } from '../keys/toolchain.js'
import { updateShared, type SharedWriteContext } from './shared-document.js'

/**
 * The per-pin record: what producers stored for one pin (identity + revision/version), whatever the toolchain,
 * options or salt. A consumer whose package key finds no index reads it to say which input made the keys
 * differ. It holds descriptions of package keys, never the salt (only its SHA-256), never the extra arguments
 * (only their SHA-256), never credentials from a package URL.
 *
 * Several producers update one record (a matrix of Xcode versions): each adds its entry with a conditional
 * read-modify-write (bucket/shared-document.ts), so none is lost where the store honours conditional writes.
 * Elsewhere a producer running at the very same moment may still replace an entry; that costs an explanation,
 * never a restore.
 */

/** What went into one package key, in a form safe to store in a public bucket and to print. */
export interface KeyDescription {
  format: string
  xcodeVersion: string
  xcodeBuildVersion: string
  clangVersion: string
  scipioSha256: string
  configuration: string
  frameworkType: string
  supportSimulators: boolean
  embedDebugSymbols: boolean
  libraryEvolution: boolean
  extraArgsSha256: string
  saltSha256: string
  kind: string
  /** The package URL without user info, query or fragment (where credentials hide). */
  location: string
}

export interface PinRecordEntry {
  packageKey: string
  /** When a producer first stored this package key's index (ISO 8601). */
  storedAt: string
  description: KeyDescription
}

export interface PinRecord {
  schema: typeof Formats.pinRecord
  pin: { identity: string; revision?: string; version?: string; branch?: string }
  /** Most recent first; at most `pinRecordLimits.entries`. */
  entries: PinRecordEntry[]
}

export const pinRecordLimits = {
  /** Entries kept by a writer and read by a reader; the rest are ignored. */
  entries: 8,
  /** A larger body is refused before it is parsed. */
  bytes: 64 * 1024,
  /** Longest text field accepted. */
  text: 200,
} as const

const hex64 = /^[0-9a-f]{64}$/

function withPrefix(prefix: string, key: string): string {
  return prefix ? `${prefix}/${key}` : key
}

/** `<prefix>/.scipio-s3-cache/pins/<SHA-256 of the pin>.json`: one object per pin, shared by every toolchain and salt. */
export function pinRecordObjectKey(prefix: string, pin: Pin): string {
  const id = sha256Hex(
    canonicalJson({
      identity: pin.identity,
      revision: pin.revision ?? null,
      version: pin.version ?? null,
      branch: pin.branch ?? null,
    }),
  )
  return withPrefix(prefix, `${MetaFolder}/pins/${id}.json`)
}

/**
 * What a record's text may hold: letters, digits and the punctuation of versions and URLs, bounded. What it
 * holds ends up in logs, annotations, the summary and outputs that workflows may paste into shell scripts,
 * so no control characters, quotes, `$`, backticks, `;`, `&`, `|`, `<`, `>`, `%` or backslashes.
 */
const allowedText = /^[A-Za-z0-9 ._:/@+()~,=?#-]*$/

/** `text` with every character outside the allowed set replaced by '?', cut to `max` characters. */
export function safeText(text: string, max: number = pinRecordLimits.text): string {
  return text.replace(/[^A-Za-z0-9 ._:/@+()~,=?#-]/g, '?').slice(0, max)
}

/** Whether an untrusted value is a text a record may hold: only allowed characters, at most `max` of them. */
export function isSafeText(value: unknown, max: number = pinRecordLimits.text): value is string {
  return typeof value === 'string' && value.length <= max && allowedText.test(value)
}

/** Drops user info, query and fragment: `https://token@host/x.git?a=b` becomes `https://host/x.git`. */
export function publicLocation(location: string): string {
  return safeText(location.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1').replace(/[?#].*$/, ''))
}

export function describeKeyInputs(pin: Pin, build: BuildOptions, toolchain: Toolchain, salt: string): KeyDescription {
  return {
    format: Formats.packageKey,
    xcodeVersion: safeText(toolchain.xcodeVersion),
    xcodeBuildVersion: safeText(toolchain.xcodeBuildVersion),
    clangVersion: safeText(toolchain.clangVersion),
    scipioSha256: toolchain.scipioSha256,
    configuration: build.configuration,
    frameworkType: build.frameworkType,
    supportSimulators: build.supportSimulators,
    embedDebugSymbols: build.embedDebugSymbols,
    libraryEvolution: build.libraryEvolution,
    extraArgsSha256: sha256Hex(canonicalJson(build.extraArgs)),
    saltSha256: sha256Hex(salt),
    kind: safeText(pin.kind),
    location: publicLocation(pin.location),
  }
}

const textFields = [
  'format',
  'xcodeVersion',
  'xcodeBuildVersion',
  'clangVersion',
  'configuration',
  'frameworkType',
  'kind',
  'location',
] as const
const hashFields = ['scipioSha256', 'extraArgsSha256', 'saltSha256'] as const
const flagFields = ['supportSimulators', 'embedDebugSymbols', 'libraryEvolution'] as const

function parseDescription(value: unknown): KeyDescription | undefined {
  if (!isRecord(value)) return undefined
  for (const f of textFields) if (!isSafeText(value[f])) return undefined
  for (const f of hashFields) if (typeof value[f] !== 'string' || !hex64.test(value[f])) return undefined
  for (const f of flagFields) if (typeof value[f] !== 'boolean') return undefined
  const pick = <K extends keyof KeyDescription>(k: K) => value[k] as KeyDescription[K]
  return {
    format: pick('format'),
    xcodeVersion: pick('xcodeVersion'),
    xcodeBuildVersion: pick('xcodeBuildVersion'),
    clangVersion: pick('clangVersion'),
    scipioSha256: pick('scipioSha256'),
    configuration: pick('configuration'),
    frameworkType: pick('frameworkType'),
    supportSimulators: pick('supportSimulators'),
    embedDebugSymbols: pick('embedDebugSymbols'),
    libraryEvolution: pick('libraryEvolution'),
    extraArgsSha256: pick('extraArgsSha256'),
    saltSha256: pick('saltSha256'),
    kind: pick('kind'),
    location: pick('location'),
  }
}

function pinOf(pin: Pin): PinRecord['pin'] {
  return {
    identity: pin.identity,
    ...(pin.revision ? { revision: pin.revision } : {}),
    ...(pin.version ? { version: pin.version } : {}),
    ...(pin.branch ? { branch: pin.branch } : {}),
  }
}

/**
 * Validates a record read from storage (untrusted). A record for another pin or of another format is refused
 * as a whole; entries with a wrong field are skipped; at most `pinRecordLimits.entries` are read.
 */
export function parsePinRecord(value: unknown, pin: Pin): PinRecord {
  if (!isRecord(value) || value.schema !== Formats.pinRecord) throw new Error('not a pin record of this format')
  const p = isRecord(value.pin) ? value.pin : {}
  const expected = pinOf(pin)
  if (
    p.identity !== expected.identity ||
    p.revision !== expected.revision ||
    p.version !== expected.version ||
    p.branch !== expected.branch
  ) {
    throw new Error('the record names another pin')
  }
  if (!Array.isArray(value.entries)) throw new Error("'entries' is not a list")
  const entries: PinRecordEntry[] = []
  for (const raw of value.entries.slice(0, pinRecordLimits.entries)) {
    if (!isRecord(raw) || typeof raw.packageKey !== 'string' || !hex64.test(raw.packageKey)) continue
    if (!isSafeText(raw.storedAt) || Number.isNaN(Date.parse(raw.storedAt))) continue
    const description = parseDescription(raw.description)
    if (description) entries.push({ packageKey: raw.packageKey, storedAt: raw.storedAt, description })
  }
  if (value.entries.length > 0 && entries.length === 0) throw new Error('none of its entries is usable')
  return { schema: Formats.pinRecord, pin: expected, entries }
}

export type PinRecordRead =
  | { state: 'absent' }
  | { state: 'found'; record: PinRecord }
  /** Stored, but not a record this action would write (too large, not JSON, wrong types): ignored. */
  | { state: 'unusable'; problem: string }
  /** The cache did not answer (permissions, network); `fatal` when every further request would fail too. */
  | { state: 'unreadable'; problem: string; fatal: boolean }

/** Never throws: a record is only ever an explanation. */
export async function readPinRecord(
  storage: Storage,
  prefix: string,
  pin: Pin,
  signal?: AbortSignal,
): Promise<PinRecordRead> {
  const key = pinRecordObjectKey(prefix, pin)
  let raw: unknown
  try {
    raw = await getJson(storage, key, signal, pinRecordLimits.bytes)
  } catch (error) {
    if (error instanceof StorageError) {
      // Where missing keys are hidden (no s3:ListBucket, a public URL) a record not yet written answers 403.
      if (isRefused(error)) return { state: 'absent' }
      return { state: 'unreadable', problem: errorMessage(error), fatal: error.fatal }
    }
    return { state: 'unusable', problem: errorMessage(error) }
  }
  if (raw === undefined) return { state: 'absent' }
  try {
    return { state: 'found', record: parsePinRecord(raw, pin) }
  } catch (error) {
    return { state: 'unusable', problem: errorMessage(error) }
  }
}

function sameDescription(a: KeyDescription, b: KeyDescription): boolean {
  return canonicalJson(a) === canonicalJson(b)
}

/**
 * The record with this package key's entry first. Returns undefined when the record already holds exactly
 * this entry (nothing to write: an unchanged producer run writes nothing).
 */
export function withEntry(
  previous: PinRecord | undefined,
  pin: Pin,
  packageKey: string,
  description: KeyDescription,
  now: Date,
): PinRecord | undefined {
  const existing = previous?.entries.find((e) => e.packageKey === packageKey)
  if (existing && sameDescription(existing.description, description)) return undefined
  const others = (previous?.entries ?? []).filter((e) => e.packageKey !== packageKey)
  others.sort((a, b) => Date.parse(b.storedAt) - Date.parse(a.storedAt))
  const entry: PinRecordEntry = { packageKey, storedAt: existing?.storedAt ?? now.toISOString(), description }
  return { schema: Formats.pinRecord, pin: pinOf(pin), entries: [entry, ...others].slice(0, pinRecordLimits.entries) }
}

export type RecordContext = SharedWriteContext & { now?: () => Date }

/**
 * Adds (or confirms) one package key in its pin's record. Returns whether it wrote. A record that is not
 * ours (unusable) is replaced; a storage fault is thrown to the caller, which only warns.
 */
export async function recordPackageKey(
  ctx: RecordContext,
  pin: Pin,
  packageKey: string,
  description: KeyDescription,
): Promise<boolean> {
  const now = (ctx.now ?? (() => new Date()))()
  return updateShared(
    ctx,
    {
      key: pinRecordObjectKey(ctx.prefix, pin),
      parse: (raw) => parsePinRecord(raw, pin),
      merge: (stored) => withEntry(stored, pin, packageKey, description, now),
    },
    { maxBytes: pinRecordLimits.bytes },
  )
}
