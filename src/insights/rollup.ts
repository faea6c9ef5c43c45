import { Formats } from '../constants.js'
import { isSafeText } from '../bucket/pin-record.js'
import { isRecord } from '../json.js'
import { missReasons, recordLimits, type MissReasonCode } from '../records/record.js'
import type { Day } from '../records/layout.js'
import { emptyDay, emptyOutcomes, outcomeFields, type DayAggregate, type Outcomes } from './aggregate.js'

/**
 * A day's roll-up: the aggregates of every record of one past day, per repository, in one object
 * (`<runs>/rollups/<yyyy-mm-dd>.json`, records/layout.ts). The insights run that first reads a whole past day
 * writes it, created once (`If-None-Match: *`); a later report reads it instead of the day's records. Its bytes
 * are a function of the day's records alone (names sorted, no time of writing), so two insights runs racing
 * write the same document and either may win.
 *
 * It is as untrusted as the records it sums up (whoever may write records may write here): every field is checked
 * as a record's are, and a roll-up that fails is ignored and the day's records read instead.
 */

export interface Rollup {
  schema: typeof Formats.insightsDay
  day: Day
  /** Records the day held. */
  records: number
  /** Of those, records that were not usable (not JSON, too large, a field of the wrong kind): left out. */
  unusable: number
  /** Per repository ('' for records that name none). */
  repositories: Map<string, DayAggregate>
}

/** A roll-up larger than this is refused unread. */
export const rollupMaxBytes = 8 * 1024 * 1024
/** Longest name in a roll-up: a record's text, or a package's name with " (package)". */
const maxName = recordLimits.text + 10
const maxEntries = 100_000

type Json = Record<string, unknown>

const sortedEntries = <V>(map: Map<string, V>) => [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
const reasonsJson = (map: Map<MissReasonCode, number>) =>
  Object.fromEntries(missReasons.filter((r) => map.has(r)).map((r) => [r, map.get(r)!]))
const outcomesJson = (o: Outcomes) => outcomeFields.map((f) => o[f])

function dayJson(day: DayAggregate): Json {
  return {
    outcomes: outcomesJson(day),
    producerRuns: day.producerRuns,
    kept: day.kept,
    built: day.built,
    uploaded: day.uploaded,
    bytesDown: day.bytesDown,
    bytesUp: day.bytesUp,
    restoreMs: day.restoreMs,
    reasons: reasonsJson(day.reasons),
    frameworks: sortedEntries(day.frameworks).map(([name, byReason]) => [name, reasonsJson(byReason)]),
    missesUnlisted: day.missesUnlisted,
    xcode: sortedEntries(day.xcode).map(([version, t]) => [version, t.runs, t.missed]),
    branch: sortedEntries(day.branch).map(([name, o]) => [name, outcomesJson(o)]),
    scope: sortedEntries(day.scope).map(([name, o]) => [name, outcomesJson(o)]),
    workflow: sortedEntries(day.workflow).map(([name, o]) => [name, outcomesJson(o)]),
  }
}

export function serializeRollup(rollup: Rollup): string {
  return JSON.stringify({
    schema: rollup.schema,
    day: rollup.day,
    records: rollup.records,
    unusable: rollup.unusable,
    repositories: sortedEntries(rollup.repositories).map(([name, day]) => [name, dayJson(day)]),
  })
}

class Invalid extends Error {}

function count(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new Invalid('a count')
  return value
}

function name(value: unknown, allowEmpty = false): string {
  if (!isSafeText(value, maxName) || (!allowEmpty && value === '')) throw new Invalid('a name')
  return value
}

function list(value: unknown): unknown[] {
  if (!Array.isArray(value) || value.length > maxEntries) throw new Invalid('a list')
  return value
}

function outcomes(value: unknown): Outcomes {
  const values = list(value)
  if (values.length !== outcomeFields.length) throw new Invalid('outcomes')
  const out = emptyOutcomes()
  outcomeFields.forEach((f, i) => (out[f] = count(values[i])))
  return out
}

function reasons(value: unknown): Map<MissReasonCode, number> {
  if (!isRecord(value)) throw new Invalid('reasons')
  const out = new Map<MissReasonCode, number>()
  for (const [reason, n] of Object.entries(value)) {
    if (!(missReasons as readonly string[]).includes(reason)) throw new Invalid('a reason')
    out.set(reason as MissReasonCode, count(n))
  }
  return out
}

function named<V>(value: unknown, parse: (entry: unknown[]) => V): Map<string, V> {
  const out = new Map<string, V>()
  for (const entry of list(value)) {
    const parts = list(entry)
    const key = name(parts[0])
    if (out.has(key)) throw new Invalid('a repeated name')
    out.set(key, parse(parts))
  }
  return out
}

function parseDay(value: unknown): DayAggregate {
  if (!isRecord(value)) throw new Invalid('a day')
  const day = { ...emptyDay(), ...outcomes(value.outcomes) }
  for (const f of ['producerRuns', 'kept', 'built', 'uploaded', 'bytesDown', 'bytesUp', 'missesUnlisted'] as const)
    day[f] = count(value[f])
  day.restoreMs = list(value.restoreMs).map(count)
  if (day.restoreMs.some((ms, i) => i > 0 && ms < day.restoreMs[i - 1]!)) throw new Invalid('restore times')
  day.reasons = reasons(value.reasons)
  day.frameworks = named(value.frameworks, (parts) => reasons(parts[1]))
  day.xcode = named(value.xcode, (parts) => ({ runs: count(parts[1]), missed: count(parts[2]) }))
  for (const split of ['branch', 'scope', 'workflow'] as const) day[split] = named(value[split], (p) => outcomes(p[1]))
  return day
}

/** A roll-up read from the store for `day`; undefined when it is not one this project writes. */
export function parseRollup(value: unknown, day: Day): Rollup | undefined {
  try {
    if (!isRecord(value) || value.schema !== Formats.insightsDay || value.day !== day) return undefined
    const repositories = new Map<string, DayAggregate>()
    for (const entry of list(value.repositories)) {
      const [repository, aggregate] = list(entry)
      const key = name(repository, true)
      if (repositories.has(key)) return undefined
      repositories.set(key, parseDay(aggregate))
    }
    return {
      schema: Formats.insightsDay,
      day,
      records: count(value.records),
      unusable: count(value.unusable),
      repositories,
    }
  } catch (error) {
    if (error instanceof Invalid) return undefined
    throw error
  }
}
