import { dayOf, type Day } from '../records/layout.js'

/**
 * The days a report covers: whole UTC days, from `--since` to `--until` (both included, `--until` by default
 * today). `--since 28d` (the default) is the last day and the 27 before it; `--until 2d` is yesterday; a date
 * (`2026-10-01`) names a day itself. `--until` may also be a moment (`2026-11-30T10:00:00Z`): the report as it
 * stood then, its day the last, and only the days past at that moment rolled up.
 *
 * A day is *past* once it ended more than `rollupGraceMs` ago. A record is written the moment its run ends and
 * filed under that moment's day, so only a record held up longer than that (a runner's clock that is wrong by more,
 * an upload retried for that long) arrives for a day already past; a roll-up written before it came does not
 * count it.
 */

export const defaultSince = '28d'
/** How long after midnight (UTC) a day is past and may be rolled up. */
export const rollupGraceMs = 60 * 60 * 1000
/** The longest window: ten years of days. */
export const maxDays = 3660

const dayMs = 24 * 60 * 60 * 1000

export interface Window {
  since: Day
  until: Day
  /** Every day from `since` to `until`, in order. */
  days: Day[]
  /** The moment the report is made as of: now, or an earlier `--until` moment. Days past then may be rolled up. */
  asOf: Date
}

export class WindowError extends Error {
  override name = 'WindowError'
}

export function addDays(day: Day, n: number): Day {
  return dayOf(new Date(Date.parse(`${day}T00:00:00Z`) + n * dayMs))
}

/** `28d` (that many days back, the last one included: `daysBack`) or a date `yyyy-mm-dd`. */
function parseDay(flag: string, raw: string, daysBack: (n: number) => Day): Day {
  const text = raw.trim()
  const span = /^(\d+)d$/.exec(text)
  if (span) {
    const n = Number(span[1])
    if (n < 1 || n > maxDays) throw new WindowError(`${flag}: '${raw}' must be from 1d to ${maxDays}d.`)
    return daysBack(n)
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(text) && dayOf(new Date(`${text}T00:00:00Z`)) === text) return text
  throw new WindowError(`${flag}: '${raw}' is neither a number of days (28d) nor a date (2026-10-01).`)
}

/** `--until` as a moment: `yyyy-mm-ddThh:mm[:ss[.sss]]Z`. */
function parseMoment(raw: string | undefined): Date | undefined {
  if (raw === undefined || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z$/.test(raw.trim())) return undefined
  const moment = new Date(raw.trim())
  if (Number.isNaN(moment.getTime())) throw new WindowError(`--until: '${raw}' is not a valid time.`)
  return moment
}

export function parseWindow(since: string | undefined, until: string | undefined, now: Date): Window {
  const moment = parseMoment(until)
  // A moment to come is now: nothing is rolled up before it is past.
  const asOf = moment && moment < now ? moment : now
  const today = dayOf(now)
  const last = moment
    ? dayOf(moment)
    : until === undefined
      ? today
      : parseDay('--until', until, (n) => addDays(today, -(n - 1)))
  const first = parseDay('--since', since ?? defaultSince, (n) => addDays(last, -(n - 1)))
  if (first > last) throw new WindowError(`--since ${since} comes after --until ${until ?? today}.`)
  const days: Day[] = []
  for (let day = first; day <= last; day = addDays(day, 1)) {
    days.push(day)
    if (days.length > maxDays) throw new WindowError(`the window from ${first} to ${last} is over ${maxDays} days.`)
  }
  return { since: first, until: last, days, asOf }
}

/** Whether `day` ended more than the grace period before `now`: a day that may be rolled up. */
export function isPast(day: Day, now: Date): boolean {
  return now.getTime() >= Date.parse(`${day}T00:00:00Z`) + dayMs + rollupGraceMs
}

/** The Monday of `day`'s week (weeks run Monday to Sunday, as ISO 8601's). */
export function weekOf(day: Day): Day {
  const weekday = new Date(`${day}T00:00:00Z`).getUTCDay()
  return addDays(day, -((weekday + 6) % 7))
}
