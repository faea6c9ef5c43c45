import pLimit from 'p-limit'
import { Formats } from '../constants.js'
import { errorMessage, PreconditionFailedError, StorageError } from '../errors.js'
import type { Log } from '../log.js'
import { dayFolder, dayOfRecordKey, dayOfRollupKey, rollupKey, rollupsFolder, type Day } from '../records/layout.js'
import { parseRecord, recordLimits } from '../records/record.js'
import { indexReadsInFlight } from '../restore/in-flight.js'
import { getJson, type ListedObject, type Storage } from '../storage/index.js'
import type { KeyRange } from '../storage/s3-admin.js'
import { addRecord, emptyDay, type DayAggregate } from './aggregate.js'
import { parseRollup, rollupMaxBytes, serializeRollup, type Rollup } from './rollup.js'
import { isPast, type Window } from './window.js'

/**
 * The read plan of `insights`, built so that its requests are bounded:
 *
 * 1. one listing of the roll-ups of the window's past days (`<runs>/rollups/`, 1,000 days a page);
 * 2. one GET per roll-up found;
 * 3. for the days without one (today, and every past day no insights run has rolled up yet), one listing per run
 *    of consecutive such days (a page per 1,000 records), then one GET per record;
 * 4. for each past day whose records were all read, one PUT of its roll-up, created once (`If-None-Match: *`),
 *    unless the store refuses writes (a debug line, and no further tries).
 *
 * A first report over D days holding R records makes 1 + ⌈R / 1000⌉ + R + (past days) requests; the next one
 * 1 + (past days) + 1 + (today's records), plus a page per further 1,000 of them. Reads run in parallel, as many
 * at once as the restore reads package indexes (restore/in-flight.ts).
 */

/** Ranged listings, as S3Admin gives them. */
export interface Lister {
  list(prefix: string, range?: KeyRange): Promise<ListedObject[]>
}

export interface ReadContext {
  storage: Storage
  lister: Lister
  prefix: string
  window: Window
  concurrency: number
  log: Log
  /** Called as reads finish: how many are done, of how many planned so far. */
  onProgress?: (done: number, total: number) => void
}

export interface DaysRead {
  /** Each day of the window: its aggregates per repository ('' for records naming none). */
  days: Map<Day, Map<string, DayAggregate>>
  /** Records read one by one in this run. */
  recordsRead: number
  rollupsRead: number
  rollupsWritten: number
  /** Records that were not usable (left out), in the records read and in the roll-ups read. */
  unusable: number
  /** Records that could not be read at all (their day is then not rolled up). */
  failed: number
}

class Progress {
  private done = 0
  private total = 0
  constructor(private readonly report?: (done: number, total: number) => void) {}
  plan(n: number): void {
    this.total += n
  }
  step(): void {
    this.done += 1
    this.report?.(this.done, this.total)
  }
}

/** The longest common folder (ending in '/') of two keys. */
function commonFolder(a: string, b: string): string {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return a.slice(0, a.lastIndexOf('/', i - 1) + 1)
}

/** Consecutive days of `days` (ascending) in runs, a run never crossing a year (a year is a folder). */
function runsOf(days: readonly Day[], window: Window): Day[][] {
  const runs: Day[][] = []
  const wanted = new Set(days)
  let current: Day[] = []
  for (const day of window.days) {
    const continues = wanted.has(day) && current.length > 0 && current[0]!.slice(0, 4) === day.slice(0, 4)
    if (!continues && current.length > 0) runs.push(current)
    if (!continues) current = []
    if (wanted.has(day)) current.push(day)
  }
  if (current.length > 0) runs.push(current)
  return runs
}

/** The record keys of a run of days, from one ranged listing under their common folder. */
async function listRecords(ctx: ReadContext, run: Day[]): Promise<{ key: string; day: Day }[]> {
  const from = dayFolder(ctx.prefix, run[0]!)
  const last = dayFolder(ctx.prefix, run[run.length - 1]!)
  const listed = await ctx.lister.list(commonFolder(from, last), { from, through: `${last}\uffff` })
  const days = new Set(run)
  return listed.flatMap((o) => {
    const day = dayOfRecordKey(ctx.prefix, o.key)
    return day !== undefined && days.has(day) ? [{ key: o.key, day }] : []
  })
}

async function listRollups(ctx: ReadContext, past: readonly Day[]): Promise<Day[]> {
  if (past.length === 0) return []
  const range = { from: rollupKey(ctx.prefix, past[0]!), through: rollupKey(ctx.prefix, past[past.length - 1]!) }
  const wanted = new Set(past)
  return (await ctx.lister.list(rollupsFolder(ctx.prefix), range)).flatMap((o) => {
    const day = dayOfRollupKey(ctx.prefix, o.key)
    return day !== undefined && wanted.has(day) ? [day] : []
  })
}

type Read<T> = { state: 'read'; value: T } | { state: 'unusable' } | { state: 'absent' } | { state: 'failed' }

async function readJson<T>(
  ctx: ReadContext,
  key: string,
  maxBytes: number,
  parse: (raw: unknown) => T | undefined,
): Promise<Read<T>> {
  let raw: unknown
  try {
    raw = await getJson(ctx.storage, key, undefined, maxBytes)
  } catch (error) {
    if (error instanceof StorageError) {
      ctx.log.warning(`Could not read ${key}: ${errorMessage(error)}`)
      return { state: 'failed' }
    }
    ctx.log.debug(`Left out ${key}: ${errorMessage(error)}`)
    return { state: 'unusable' }
  }
  if (raw === undefined) return { state: 'absent' }
  const value = parse(raw)
  if (value === undefined) ctx.log.debug(`Left out ${key}: not a document of this format, or a field is not valid.`)
  return value === undefined ? { state: 'unusable' } : { state: 'read', value }
}

interface DayRecords {
  repositories: Map<string, DayAggregate>
  records: number
  unusable: number
  failed: number
}

function aggregateOf(days: Map<Day, DayRecords>, day: Day): DayRecords {
  let found = days.get(day)
  if (!found) days.set(day, (found = { repositories: new Map(), records: 0, unusable: 0, failed: 0 }))
  return found
}

/** Writes the roll-ups; returns how many it wrote. The first refusal stops the rest. */
async function writeRollups(ctx: ReadContext, rollups: Rollup[]): Promise<number> {
  if (rollups.length === 0) return 0
  if (!ctx.storage.writable) {
    ctx.log.debug(`Day roll-ups not written: ${ctx.storage.description} is read-only.`)
    return 0
  }
  const limit = pLimit(indexReadsInFlight(ctx.concurrency))
  let written = 0
  let refused: string | undefined
  await Promise.all(
    rollups.map((rollup) =>
      limit(async () => {
        if (refused) return
        const key = rollupKey(ctx.prefix, rollup.day)
        try {
          await ctx.storage.put(key, Buffer.from(serializeRollup(rollup)), {
            contentType: 'application/json',
            publicRead: false,
            ifNoneMatch: '*',
          })
          written += 1
        } catch (error) {
          if (error instanceof PreconditionFailedError)
            ctx.log.debug(`The roll-up of ${rollup.day} was written meanwhile by another insights run.`)
          else if (error instanceof StorageError && error.status === 403) {
            if (!refused)
              ctx.log.debug(
                `Day roll-ups not written (these credentials may not write ${rollupsFolder(ctx.prefix)}): ${errorMessage(error)}`,
              )
            refused = errorMessage(error)
          } else ctx.log.debug(`The roll-up of ${rollup.day} was not written: ${errorMessage(error)}`)
        }
      }),
    ),
  )
  return written
}

export async function readDays(ctx: ReadContext): Promise<DaysRead> {
  const limit = pLimit(indexReadsInFlight(ctx.concurrency))
  const progress = new Progress(ctx.onProgress)
  const past = ctx.window.days.filter((day) => isPast(day, ctx.window.asOf))
  const days = new Map<Day, DayRecords>()
  let rollupsRead = 0

  const rolled = await listRollups(ctx, past)
  progress.plan(rolled.length)
  const fromRollups = new Set<Day>()
  await Promise.all(
    rolled.map((day) =>
      limit(async () => {
        const read = await readJson(ctx, rollupKey(ctx.prefix, day), rollupMaxBytes, (raw) => parseRollup(raw, day))
        progress.step()
        // A roll-up that cannot be used leaves its day to be read record by record below.
        if (read.state !== 'read') {
          if (read.state === 'unusable')
            ctx.log.warning(`The roll-up of ${day} is not one this tool writes: the day's records are read instead.`)
          return
        }
        rollupsRead += 1
        fromRollups.add(day)
        days.set(day, {
          repositories: read.value.repositories,
          records: read.value.records,
          unusable: read.value.unusable,
          failed: 0,
        })
      }),
    ),
  )

  const unrolled = ctx.window.days.filter((day) => !fromRollups.has(day))
  const keys = (await Promise.all(runsOf(unrolled, ctx.window).map((run) => listRecords(ctx, run)))).flat()
  progress.plan(keys.length)
  let recordsRead = 0
  await Promise.all(
    keys.map(({ key, day }) =>
      limit(async () => {
        const read = await readJson(ctx, key, recordLimits.bytes, parseRecord)
        progress.step()
        const into = aggregateOf(days, day)
        if (read.state === 'absent') return // removed since the listing (a lifecycle rule): as if never written
        if (read.state === 'failed') return void (into.failed += 1)
        into.records += 1
        recordsRead += 1
        if (read.state === 'unusable') return void (into.unusable += 1)
        const repository = read.value.repository ?? ''
        let aggregate = into.repositories.get(repository)
        if (!aggregate) into.repositories.set(repository, (aggregate = emptyDay()))
        addRecord(aggregate, read.value)
      }),
    ),
  )

  const toWrite = unrolled
    .filter((day) => isPast(day, ctx.window.asOf) && (days.get(day)?.failed ?? 0) === 0)
    .map((day): Rollup => {
      const found = aggregateOf(days, day)
      return {
        schema: Formats.insightsDay,
        day,
        records: found.records,
        unusable: found.unusable,
        repositories: found.repositories,
      }
    })
  const rollupsWritten = await writeRollups(ctx, toWrite)

  const out = new Map<Day, Map<string, DayAggregate>>()
  let unusable = 0
  let failed = 0
  for (const day of ctx.window.days) {
    const found = days.get(day)
    out.set(day, found?.repositories ?? new Map())
    unusable += found?.unusable ?? 0
    failed += found?.failed ?? 0
  }
  return { days: out, recordsRead, rollupsRead, rollupsWritten, unusable, failed }
}
