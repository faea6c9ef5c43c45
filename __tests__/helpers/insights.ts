import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
// @ts-expect-error: the history generator is plain JavaScript, shared with scripts/ and bench/
import * as history from '../../scripts/insights-history.mjs'
import { missReasons } from '../../src/records/record.js'
import type { Store } from './store.js'

/**
 * The insights tests' shared parts: the synthetic history (scripts/insights-history.mjs), the aggregates it is known
 * to have (worked out here in one plain pass over its records, apart from src/insights/), and a headless Chromium.
 */

export interface HistoryRecord {
  day: string
  name: string
  record: {
    time: string
    via: string
    mode: string
    repository?: string
    workflow?: string
    ref?: string
    scope?: string
    xcode?: string
    counts: { restored: number; kept: number; built: number; missed: number; uploaded: number }
    reasons: Record<string, number>
    misses: ({ target: string; reason: string } | { package: string; reason: string })[]
    missesOmitted?: number
    bytes: { down: number; up: number }
    ms: { restore?: number; build?: number; save?: number }
    savedMs?: number
  }
}

export interface History {
  now: Date
  records: HistoryRecord[]
}

export const historyNow: Date = history.historyNow as Date

export function syntheticHistory(
  options: { records?: number; days?: number; now?: Date; seed?: number } = {},
): History {
  return (history.syntheticHistory as (o: typeof options) => History)(options)
}

export function historyKey(prefix: string, day: string, name: string): string {
  return (history.historyKey as (p: string, d: string, n: string) => string)(prefix, day, name)
}

/** Puts a history into the test store (through s3rver itself, not the proxy). */
export async function putHistory(store: Store, bucket: string, prefix: string, h: History): Promise<void> {
  await (history.putHistory as (c: unknown, b: string, p: string, h: History) => Promise<void>)(
    store.s3.client(),
    bucket,
    prefix,
    h,
  )
}

const vocabulary: readonly string[] = missReasons

interface Tally {
  runs: number
  consumerRuns: number
  fullHits: number
  partialHits: number
  noHits: number
  restored: number
  missed: number
  savedMs: number
  buildMs: number
}

const tally = (): Tally => ({
  runs: 0,
  consumerRuns: 0,
  fullHits: 0,
  partialHits: 0,
  noHits: 0,
  restored: 0,
  missed: 0,
  savedMs: 0,
  buildMs: 0,
})

function count(t: Tally, r: HistoryRecord['record']): void {
  t.runs += 1
  t.restored += r.counts.restored
  t.missed += r.counts.missed
  t.savedMs += r.savedMs ?? 0
  t.buildMs += r.ms.build ?? 0
  if (!r.mode.includes('consumer')) return
  t.consumerRuns += 1
  if (r.counts.missed === 0 && r.counts.built === 0) t.fullHits += 1
  else if (r.counts.restored + r.counts.kept === 0) t.noHits += 1
  else t.partialHits += 1
}

const rank = (sorted: number[], q: number) =>
  sorted.length === 0 ? null : sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)]!
const ascending = (list: number[]) => [...list].sort((a, b) => a - b)
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

function monday(day: string): string {
  const date = new Date(`${day}T00:00:00Z`)
  date.setUTCDate(date.getUTCDate() - ((date.getUTCDay() + 6) % 7))
  return date.toISOString().slice(0, 10)
}

function splitOf(records: HistoryRecord[], key: (r: HistoryRecord['record']) => string) {
  const by = new Map<string, Tally>()
  for (const { record } of records) {
    const name = key(record)
    if (!by.has(name)) by.set(name, tally())
    count(by.get(name)!, record)
  }
  const rows = [...by].map(([name, t]) => ({ name, ...t })).sort((a, b) => b.runs - a.runs || byName(a.name, b.name))
  return { rows: rows.slice(0, 15), more: Math.max(0, rows.length - 15) }
}

/** What `insights --json` must say of `days` (ascending) for `records` (the window's, of the repository asked for). */
export function expectedAggregates(records: HistoryRecord[], days: string[]) {
  const all = tally()
  const sums = { producerRuns: 0, kept: 0, built: 0, uploaded: 0, bytesDown: 0, bytesUp: 0 }
  const restoreMs: number[] = []
  const reasons = new Map<string, number>()
  const frameworks = new Map<string, Map<string, number>>()
  let missesUnlisted = 0
  const xcode = new Map<string, { version: string; runs: number; missed: number; firstDay: string; lastDay: string }>()
  for (const { day, record: r } of records) {
    count(all, r)
    if (r.mode.includes('producer')) sums.producerRuns += 1
    sums.kept += r.counts.kept
    sums.built += r.counts.built
    sums.uploaded += r.counts.uploaded
    sums.bytesDown += r.bytes.down
    sums.bytesUp += r.bytes.up
    if (r.ms.restore !== undefined) restoreMs.push(r.ms.restore)
    for (const [reason, n] of Object.entries(r.reasons)) reasons.set(reason, (reasons.get(reason) ?? 0) + n)
    for (const miss of r.misses) {
      const name = 'target' in miss ? miss.target : `${miss.package} (package)`
      const own = frameworks.get(name) ?? new Map<string, number>()
      own.set(miss.reason, (own.get(miss.reason) ?? 0) + 1)
      frameworks.set(name, own)
    }
    missesUnlisted += r.missesOmitted ?? 0
    const version = r.xcode ?? '(none)'
    const x = xcode.get(version) ?? { version, runs: 0, missed: 0, firstDay: day, lastDay: day }
    x.runs += 1
    x.missed += r.counts.missed
    if (day < x.firstDay) x.firstDay = day
    if (day > x.lastDay) x.lastDay = day
    xcode.set(version, x)
  }
  const sorted = ascending(restoreMs)

  const dayRows = days.map((day) => {
    const own = records.filter((h) => h.day === day)
    const t = tally()
    for (const { record } of own) count(t, record)
    const ms = ascending(own.flatMap(({ record }) => (record.ms.restore === undefined ? [] : [record.ms.restore])))
    const versions = new Map<string, { version: string; runs: number; missed: number }>()
    for (const { record } of own) {
      const version = record.xcode ?? '(none)'
      const v = versions.get(version) ?? { version, runs: 0, missed: 0 }
      v.runs += 1
      v.missed += record.counts.missed
      versions.set(version, v)
    }
    return {
      day,
      runs: t.runs,
      consumerRuns: t.consumerRuns,
      fullHits: t.fullHits,
      partialHits: t.partialHits,
      noHits: t.noHits,
      restored: t.restored,
      missed: t.missed,
      built: own.reduce((n, { record }) => n + record.counts.built, 0),
      bytesDown: own.reduce((n, { record }) => n + record.bytes.down, 0),
      bytesUp: own.reduce((n, { record }) => n + record.bytes.up, 0),
      restoreP50Ms: rank(ms, 0.5),
      restoreP95Ms: rank(ms, 0.95),
      xcode: [...versions.values()].sort((a, b) => byName(a.version, b.version)),
    }
  })

  const weeks = new Map<string, { week: string; days: number; savedMs: number; buildMs: number }>()
  for (const day of days) {
    const week = monday(day)
    const w = weeks.get(week) ?? { week, days: 0, savedMs: 0, buildMs: 0 }
    w.days += 1
    for (const { record } of records.filter((h) => h.day === day)) {
      w.savedMs += record.savedMs ?? 0
      w.buildMs += record.ms.build ?? 0
    }
    weeks.set(week, w)
  }

  const frameworkRows = [...frameworks]
    .map(([name, by]) => {
      let reason = vocabulary[0]!
      for (const r of vocabulary) if ((by.get(r) ?? 0) > (by.get(reason) ?? 0)) reason = r
      return {
        name,
        misses: [...by.values()].reduce((n, c) => n + c, 0),
        reason,
        reasons: Object.fromEntries(vocabulary.filter((r) => by.has(r)).map((r) => [r, by.get(r)!])),
      }
    })
    .sort((a, b) => b.misses - a.misses || byName(a.name, b.name))
    .slice(0, 15)

  return {
    schema: 'scipio-s3-cache/insights/v1',
    window: { since: days[0], until: days[days.length - 1], days: days.length },
    totals: {
      ...all,
      ...sums,
      hitRate: all.consumerRuns === 0 ? null : all.fullHits / all.consumerRuns,
      frameworkHitRate:
        all.restored + sums.kept + all.missed === 0
          ? null
          : (all.restored + sums.kept) / (all.restored + sums.kept + all.missed),
      restoreP50Ms: rank(sorted, 0.5),
      restoreP95Ms: rank(sorted, 0.95),
    },
    days: dayRows,
    weeks: [...weeks.values()],
    reasons: vocabulary.map((reason) => ({ reason, misses: reasons.get(reason) ?? 0 })),
    frameworks: frameworkRows,
    missesUnlisted,
    xcode: [...xcode.values()].sort((a, b) => byName(a.firstDay, b.firstDay) || byName(a.version, b.version)),
    splits: {
      branch: splitOf(records, (r) => r.ref ?? '(none)'),
      scope: splitOf(records, (r) => r.scope ?? '(none)'),
      workflow: splitOf(records, (r) => r.workflow ?? '(none)'),
    },
  }
}

/** The flags the lead gave for Chromium in CI: headless, no sandbox (root in a container), nothing phoning home. */
export const chromiumFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Debian's chromium package (.ci/run installs it). */
export const chromiumPath = '/usr/bin/chromium'

export interface OpenedPage {
  page: Page
  context: BrowserContext
  /** Console errors and uncaught exceptions. */
  errors: string[]
  /** Every request but the page's own: each one a failure (and none is let through). */
  requests: string[]
  close(): Promise<void>
}

/** Opens `file` in headless Chromium with a fresh profile, every request but the page's own refused and noted. */
export async function openPage(file: string, viewport = { width: 1400, height: 900 }): Promise<OpenedPage> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumFlags,
    viewport,
  })
  const url = `file://${file}`
  const errors: string[] = []
  const requests: string[] = []
  // Every request is seen; any that reaches the network is refused too.
  context.on('request', (request) => {
    if (request.url() !== url) requests.push(request.url())
  })
  await context.route(/^(?!file:)/, (route) => route.abort())
  const page = await context.newPage()
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text())
  })
  page.on('pageerror', (error) => errors.push(error.message))
  await page.goto(url, { waitUntil: 'load' })
  return {
    page,
    context,
    errors,
    requests,
    close: async () => {
      await context.close()
      fs.rmSync(profile, { recursive: true, force: true })
    },
  }
}

/** How much a PNG's pixels vary, measured in the same browser (a blank page of canvas): variance of luminance and distinct colours. */
export async function pixelSpread(
  context: BrowserContext,
  png: Buffer,
): Promise<{ variance: number; colours: number }> {
  const page = await context.newPage()
  try {
    await page.setContent('<canvas></canvas>')
    // A string, run in the page: this project's TypeScript has no DOM types.
    const measure = `(async (data) => {
      const image = new Image()
      image.src = 'data:image/png;base64,' + data
      await image.decode()
      const canvas = document.querySelector('canvas')
      canvas.width = image.width
      canvas.height = image.height
      const g = canvas.getContext('2d')
      g.drawImage(image, 0, 0)
      const pixels = g.getImageData(0, 0, image.width, image.height).data
      let sum = 0
      let squares = 0
      const colours = new Set()
      for (let i = 0; i < pixels.length; i += 4) {
        const y = 0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2]
        sum += y
        squares += y * y
        colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2])
      }
      const n = pixels.length / 4
      return { variance: squares / n - (sum / n) ** 2, colours: colours.size }
    })(${JSON.stringify(png.toString('base64'))})`
    return await page.evaluate<{ variance: number; colours: number }>(measure)
  } finally {
    await page.close()
  }
}
