import { Formats } from '../constants.js'
import { isRecord } from '../json.js'
import { isSafeText } from '../bucket/pin-record.js'
import { maxBuildMs } from '../bucket/build-time.js'

/**
 * A run record: one small JSON document per run of the action, a sub-action or the command line's restore and
 * save, for `scipio-s3-cache insights`. It holds what the run did and the names the workflow gives it, never a
 * credential, a URL, a key salt or any other value of the environment than those named below.
 *
 * Anyone who may write records may write any bytes there, so a reader treats every record as untrusted: a body
 * over `recordLimits.bytes` is refused unread, and a record with a field of the wrong type, an unknown value or a
 * character outside the safe set (bucket/pin-record.ts) is left out as a whole.
 */

/** Why a framework (or a whole package) did not come from the cache, in the words the insights page uses. */
export const missReasons = [
  /** Its package moved to a version no producer stored (the run can tell: a dependent was stored for the old one). */
  'pin-moved',
  /** Stored for this pin with another Xcode (or its clang). */
  'xcode-changed',
  /** Its own entry is there, but built against dependencies that changed. */
  'dependency-moved',
  /** Stored once, now gone: a lifecycle rule or prune removed its archive or index. */
  'expired',
  /** No producer has stored this pin (with these inputs) yet. */
  'not-produced-yet',
  /** Stored for this pin with another Scipio, build option, extra-args, key-salt or package URL. */
  'inputs-changed',
  /** The cache could not be read: damaged bytes, a fault, the time limit, a format this runner lacks. */
  'unreadable',
] as const
export type MissReasonCode = (typeof missReasons)[number]

export const recordVias = ['action', 'restore', 'save', 'cli'] as const
/** What wrote the record: the action, the restore or save sub-action, or the command line. */
export type RecordVia = (typeof recordVias)[number]

export const recordModes = ['consumer', 'producer', 'consumer,producer'] as const
/** What the run did: restored (consumer), uploaded (producer), or both. */
export type RecordMode = (typeof recordModes)[number]

/** One miss: a framework (`target`) or a whole package with no usable index (`package`). */
export type RecordedMiss = { target: string; reason: MissReasonCode } | { package: string; reason: MissReasonCode }

export interface RecordCounts {
  /** Frameworks downloaded and kept by Scipio. */
  restored: number
  /** Frameworks already in place. */
  kept: number
  /** Frameworks Scipio built. */
  built: number
  /** Frameworks and whole packages the cache did not provide. */
  missed: number
  /** Frameworks uploaded. */
  uploaded: number
}

export interface RunRecord {
  schema: typeof Formats.runRecord
  /** When the run ended and wrote this record (ISO 8601, UTC); the record's folder is this day's. */
  time: string
  via: RecordVia
  mode: RecordMode
  repository?: string
  workflow?: string
  event?: string
  /** The branch (a pull request's head branch) or tag the run built. */
  ref?: string
  scope?: string
  runner: { os: string; arch: string }
  /** "16.2 (16C5032a)" */
  xcode?: string
  /** The installed release ("0.33.0"), or "sha256:<12 hex>" of the executable. */
  scipio?: string
  counts: RecordCounts
  /** Every miss counted by reason (all of them, even when `misses` lists only some). */
  reasons: Partial<Record<MissReasonCode, number>>
  /** The misses one by one, as many as fit in the record. */
  misses: RecordedMiss[]
  /** Misses left out of `misses` to keep the record within its size. */
  missesOmitted?: number
  bytes: { down: number; up: number }
  /** Wall times of the stages that ran. */
  ms: { restore?: number; build?: number; save?: number }
  /** The Scipio build time the restored frameworks spared, as their producers measured it (bucket/build-time.ts). */
  savedMs?: number
}

export const recordLimits = {
  /** A record is at most this many bytes (UTF-8 JSON); a reader refuses a larger body unread. */
  bytes: 2048,
  /** Longest text: repository, workflow, branch, names of targets and packages. */
  text: 100,
  /** Longest short text: event, scope, runner OS and architecture, Xcode, Scipio. */
  shortText: 64,
  /** Most misses a reader takes from one record. */
  misses: 200,
  /** Largest count a reader accepts. */
  count: 1_000_000,
  /** Largest byte count a reader accepts (1 PiB). */
  bytesMoved: 2 ** 50,
} as const

/**
 * The record as stored: compact JSON of at most `recordLimits.bytes`. When the misses do not all fit (a run that
 * missed dozens of frameworks), the list keeps as many as fit and says how many it left out; `reasons` still
 * counts every one.
 */
export function serializeRecord(record: RunRecord): string {
  const all = record.misses
  const text = (listed: number) => {
    const omitted = all.length - listed
    return JSON.stringify({
      ...record,
      misses: all.slice(0, listed),
      missesOmitted: omitted > 0 ? omitted : undefined, // JSON leaves an undefined field out
    })
  }
  // The largest number of misses that fits, found by halving (each try serialises the record once).
  let low = 0
  let high = all.length
  while (low < high) {
    const mid = Math.ceil((low + high) / 2)
    if (Buffer.byteLength(text(mid)) <= recordLimits.bytes) low = mid
    else high = mid - 1
  }
  const out = text(low)
  if (Buffer.byteLength(out) > recordLimits.bytes)
    throw new Error(`a run record without misses is ${Buffer.byteLength(out)} bytes, over ${recordLimits.bytes}`)
  return out
}

const isCount = (value: unknown, max: number = recordLimits.count): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max

const optional = <T>(value: unknown, check: (v: unknown) => v is T): T | undefined | false =>
  value === undefined ? undefined : check(value) ? value : false

const text = (value: unknown): value is string => isSafeText(value, recordLimits.text) && value !== ''
const shortText = (value: unknown): value is string => isSafeText(value, recordLimits.shortText) && value !== ''
const isReason = (value: unknown): value is MissReasonCode => (missReasons as readonly unknown[]).includes(value)

function parseMiss(value: unknown): RecordedMiss | undefined {
  if (!isRecord(value) || !isReason(value.reason)) return undefined
  if (text(value.target) && value.package === undefined) return { target: value.target, reason: value.reason }
  if (text(value.package) && value.target === undefined) return { package: value.package, reason: value.reason }
  return undefined
}

function parseCounts(value: unknown): RecordCounts | undefined {
  if (!isRecord(value)) return undefined
  const names = ['restored', 'kept', 'built', 'missed', 'uploaded'] as const
  if (!names.every((n) => isCount(value[n]))) return undefined
  const [restored, kept, built, missed, uploaded] = names.map((n) => value[n] as number) as [
    number,
    number,
    number,
    number,
    number,
  ]
  return { restored, kept, built, missed, uploaded }
}

function parseReasons(value: unknown): RunRecord['reasons'] | undefined {
  if (!isRecord(value)) return undefined
  const out: RunRecord['reasons'] = {}
  for (const [reason, count] of Object.entries(value)) {
    if (!isReason(reason) || !isCount(count)) return undefined
    out[reason] = count
  }
  return out
}

function parseMs(value: unknown): RunRecord['ms'] | undefined {
  if (!isRecord(value)) return undefined
  const out: RunRecord['ms'] = {}
  for (const stage of ['restore', 'build', 'save'] as const) {
    const ms = optional(value[stage], (v): v is number => isCount(v, maxBuildMs))
    if (ms === false) return undefined
    if (ms !== undefined) out[stage] = ms
  }
  return out
}

/** A record read from the store, validated field by field; undefined when any field is not as a writer makes it. */
export function parseRecord(value: unknown): RunRecord | undefined {
  if (!isRecord(value) || value.schema !== Formats.runRecord) return undefined
  if (typeof value.time !== 'string' || !/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/.test(value.time)) return undefined
  if (Number.isNaN(Date.parse(value.time))) return undefined
  if (!(recordVias as readonly unknown[]).includes(value.via)) return undefined
  if (!(recordModes as readonly unknown[]).includes(value.mode)) return undefined
  const runner = isRecord(value.runner) ? value.runner : undefined
  if (!runner || !shortText(runner.os) || !shortText(runner.arch)) return undefined
  const texts = {
    repository: optional(value.repository, text),
    workflow: optional(value.workflow, text),
    event: optional(value.event, shortText),
    ref: optional(value.ref, text),
    scope: optional(value.scope, shortText),
    xcode: optional(value.xcode, shortText),
    scipio: optional(value.scipio, shortText),
  }
  if (Object.values(texts).some((t) => t === false)) return undefined
  const counts = parseCounts(value.counts)
  const reasons = parseReasons(value.reasons)
  const ms = parseMs(value.ms)
  const bytes = isRecord(value.bytes) ? value.bytes : undefined
  if (!counts || !reasons || !ms || !bytes) return undefined
  if (!isCount(bytes.down, recordLimits.bytesMoved) || !isCount(bytes.up, recordLimits.bytesMoved)) return undefined
  if (!Array.isArray(value.misses) || value.misses.length > recordLimits.misses) return undefined
  const misses = value.misses.map(parseMiss)
  if (misses.some((m) => m === undefined)) return undefined
  const omitted = optional(value.missesOmitted, (v): v is number => isCount(v))
  const savedMs = optional(value.savedMs, (v): v is number => isCount(v, Number.MAX_SAFE_INTEGER))
  if (omitted === false || savedMs === false) return undefined
  const defined = Object.fromEntries(Object.entries(texts).filter(([, v]) => v !== undefined)) as Partial<
    Pick<RunRecord, keyof typeof texts>
  >
  return {
    schema: Formats.runRecord,
    time: value.time,
    via: value.via as RecordVia,
    mode: value.mode as RecordMode,
    ...defined,
    runner: { os: runner.os, arch: runner.arch },
    counts,
    reasons,
    misses: misses as RecordedMiss[],
    ...(omitted !== undefined ? { missesOmitted: omitted } : {}),
    bytes: { down: bytes.down, up: bytes.up },
    ms,
    ...(savedMs !== undefined ? { savedMs } : {}),
  }
}
