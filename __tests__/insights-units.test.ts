import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { countProgressFrom } from '../src/cli/progress.js'
import { Formats, RunsFolder } from '../src/constants.js'
import {
  addRecord,
  consumerOutcome,
  emptyDay,
  mergeDay,
  percentile,
  type DayAggregate,
} from '../src/insights/aggregate.js'
import { chartSections, renderHtml } from '../src/insights/html.js'
import { renderMarkdown } from '../src/insights/markdown.js'
import type { DaysRead } from '../src/insights/read.js'
import { buildReport, topRows } from '../src/insights/report.js'
import { parseRollup, serializeRollup, type Rollup } from '../src/insights/rollup.js'
import { isPast, parseWindow, rollupGraceMs, weekOf, WindowError } from '../src/insights/window.js'
import { missReasons, recordLimits, type RunRecord } from '../src/records/record.js'
import { recordWriteTimeoutMs } from '../src/records/write.js'
import { indexReadsPerSlot, maxIndexReads } from '../src/restore/in-flight.js'
import { jsonBlocks } from './helpers/docs.js'
import { root } from './helpers/s3-server.js'

function record(change: Partial<RunRecord> = {}): RunRecord {
  return {
    schema: Formats.runRecord,
    time: '2026-11-30T09:00:00.000Z',
    via: 'action',
    mode: 'consumer',
    repository: 'acme/app',
    workflow: 'CI',
    ref: 'main',
    runner: { os: 'macOS', arch: 'ARM64' },
    xcode: '16.2 (16C5032a)',
    counts: { restored: 5, kept: 0, built: 0, missed: 0, uploaded: 0 },
    reasons: {},
    misses: [],
    bytes: { down: 1000, up: 0 },
    ms: { restore: 4000 },
    savedMs: 60_000,
    ...change,
  }
}

describe('the window (insights/window.ts)', () => {
  const now = new Date('2026-11-30T10:00:00Z')

  it('28 days up to today by default; a number of days, a date or a moment', () => {
    expect(parseWindow(undefined, undefined, now)).toMatchObject({
      since: '2026-11-03',
      until: '2026-11-30',
      asOf: now,
    })
    expect(parseWindow(undefined, undefined, now).days).toHaveLength(28)
    expect(parseWindow('90d', undefined, now)).toMatchObject({ since: '2026-09-02', until: '2026-11-30' })
    expect(parseWindow('2026-11-01', '2d', now)).toMatchObject({ since: '2026-11-01', until: '2026-11-29' })
    const moment = new Date('2026-11-20T06:00:00Z')
    expect(parseWindow('7d', '2026-11-20T06:00:00Z', now)).toMatchObject({
      since: '2026-11-14',
      until: '2026-11-20',
      asOf: moment,
    })
    // A moment to come is as of now: nothing not yet past is rolled up.
    expect(parseWindow('7d', '2027-01-01T00:00:00Z', now).asOf).toEqual(now)
  })

  it.each([
    ['0d', undefined],
    ['3661d', undefined],
    ['last week', undefined],
    ['2026-02-30', undefined],
    ['2026-12-01', '2026-11-30'],
  ])('refuses --since %s --until %s with a message naming the flag', (since, until) => {
    expect(() => parseWindow(since, until, now)).toThrow(WindowError)
    expect(() => parseWindow(since, until, now)).toThrow(/--(since|until)/)
  })

  it('a day is past an hour after it ended (the grace for late records)', () => {
    expect(rollupGraceMs).toBe(3_600_000)
    expect(isPast('2026-11-29', new Date('2026-11-30T00:59:59Z'))).toBe(false)
    expect(isPast('2026-11-29', new Date('2026-11-30T01:00:00Z'))).toBe(true)
    expect(isPast('2026-11-30', now)).toBe(false)
  })

  it('weeks start on Monday', () => {
    expect(weekOf('2026-11-30')).toBe('2026-11-30')
    expect(weekOf('2026-12-06')).toBe('2026-11-30')
    expect(weekOf('2026-12-07')).toBe('2026-12-07')
  })
})

describe('aggregates (insights/aggregate.ts)', () => {
  it('a consumer run is a full hit, a partial hit or no hit; a producer-only run is none of them', () => {
    expect(consumerOutcome(record())).toBe('full')
    expect(consumerOutcome(record({ counts: { restored: 4, kept: 0, built: 1, missed: 1, uploaded: 0 } }))).toBe(
      'partial',
    )
    expect(consumerOutcome(record({ counts: { restored: 0, kept: 0, built: 5, missed: 5, uploaded: 0 } }))).toBe('none')
    expect(consumerOutcome(record({ mode: 'producer' }))).toBeUndefined()
  })

  it('adds and merges exactly, names such as __proto__ included', () => {
    const a = emptyDay()
    addRecord(a, record({ ref: '__proto__', ms: { restore: 3000 } }))
    addRecord(
      a,
      record({
        ref: 'constructor',
        counts: { restored: 1, kept: 0, built: 2, missed: 2, uploaded: 0 },
        reasons: { expired: 1, 'xcode-changed': 1 },
        misses: [
          { target: 'Kingfisher', reason: 'expired' },
          { package: 'swift-log', reason: 'xcode-changed' },
        ],
        ms: { restore: 9000, build: 120_000 },
      }),
    )
    const b = emptyDay()
    addRecord(b, record({ mode: 'producer', ms: { restore: 1000 }, missesOmitted: 4 }))
    mergeDay(a, b)
    expect(Object.prototype.hasOwnProperty.call({}, 'polluted')).toBe(false)
    expect(a).toMatchObject({ runs: 3, consumerRuns: 2, fullHits: 1, partialHits: 1, noHits: 0, producerRuns: 1 })
    expect(a.restoreMs).toEqual([1000, 3000, 9000])
    expect([...a.branch.keys()].sort()).toEqual(['__proto__', 'constructor', 'main'])
    expect(a.branch.get('__proto__')!.runs).toBe(1)
    expect([...a.frameworks]).toEqual([
      ['Kingfisher', new Map([['expired', 1]])],
      ['swift-log (package)', new Map([['xcode-changed', 1]])],
    ])
    expect(a.missesUnlisted).toBe(4)
    expect(a.buildMs).toBe(120_000)
  })

  it('percentiles by nearest rank', () => {
    expect(percentile([], 0.5)).toBeUndefined()
    expect(percentile([7], 0.95)).toBe(7)
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1)
    expect(percentile(hundred, 0.5)).toBe(50)
    expect(percentile(hundred, 0.95)).toBe(95)
  })
})

describe("a day's roll-up (insights/rollup.ts)", () => {
  function day(): DayAggregate {
    const a = emptyDay()
    addRecord(a, record({ misses: [{ target: 'A', reason: 'expired' }], reasons: { expired: 1 } }))
    addRecord(a, record({ scope: 'pr-1', ref: '__proto__', xcode: '16.4 (16F6)' }))
    return a
  }
  const rollup: Rollup = {
    schema: Formats.insightsDay,
    day: '2026-11-29',
    records: 3,
    unusable: 1,
    repositories: new Map([
      ['acme/app', day()],
      ['', day()],
    ]),
  }

  it('reads back what it wrote, and its bytes depend only on the records (names sorted)', () => {
    const text = serializeRollup(rollup)
    expect(parseRollup(JSON.parse(text), '2026-11-29')).toEqual(rollup)
    const reversed = { ...rollup, repositories: new Map([...rollup.repositories].reverse()) }
    expect(serializeRollup(reversed)).toBe(text)
  })

  it.each([
    ['another day', (d: Record<string, unknown>) => ({ ...d, day: '2026-11-28' })],
    ['another schema', (d: Record<string, unknown>) => ({ ...d, schema: 'x' })],
    ['a negative count', (d: Record<string, unknown>) => ({ ...d, records: -1 })],
    ['markup in a name', (d: Record<string, unknown>) => ({ ...d, repositories: [['<b>', {}]] })],
    [
      'unsorted restore times',
      (d: Record<string, unknown>) => {
        const [name, aggregate] = (d.repositories as [string, Record<string, unknown>][])[0]!
        return { ...d, repositories: [[name, { ...aggregate, restoreMs: [5, 1] }]] }
      },
    ],
  ])('refuses %s', (_what, change) => {
    const doc = JSON.parse(serializeRollup(rollup)) as Record<string, unknown>
    expect(parseRollup(doc, '2026-11-29')).toBeDefined()
    expect(parseRollup(change(doc), '2026-11-29')).toBeUndefined()
  })
})

describe('the report, the page and the Markdown', () => {
  const window = parseWindow('3d', '2026-11-30T10:00:00Z', new Date('2026-12-01T00:00:00Z'))
  const days = new Map(window.days.map((d) => [d, new Map<string, DayAggregate>()]))
  const a = emptyDay()
  addRecord(a, record({ workflow: 'CI </script><script>alert(1)</script>' }))
  addRecord(a, record({ repository: 'acme/other', ref: 'x&y' }))
  days.get('2026-11-29')!.set('acme/app', a)
  const read: DaysRead = { days, recordsRead: 2, rollupsRead: 0, rollupsWritten: 0, unusable: 0, failed: 0 }

  it('filters by repository', () => {
    expect(buildReport({ read, window, cache: 's3://b', prefix: 'p' }).totals.runs).toBe(2)
    expect(buildReport({ read, window, cache: 's3://b', prefix: 'p', repository: 'acme/app' }).totals.runs).toBe(2)
    expect(buildReport({ read, window, cache: 's3://b', prefix: 'p', repository: 'acme/none' }).totals.runs).toBe(0)
  })

  it('the page fetches nothing and escapes every name', () => {
    const html = renderHtml(buildReport({ read, window, cache: 's3://b', prefix: 'p' }))
    expect(html).not.toMatch(/<script|src=|href=|url\(|@import|<link|<img/i)
    expect(html).toContain('CI &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(html).toContain('x&amp;y')
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`)
  })

  it('every chart has a title, an SVG labelled by it and a table', () => {
    const report = buildReport({ read, window, cache: 's3://b', prefix: 'p' })
    const html = renderHtml(report)
    const sections = chartSections(report)
    expect(sections.map((s) => s.id)).toEqual([
      'hit-rate',
      'build-time',
      'bytes',
      'frameworks',
      'reasons',
      'restore-time',
      'xcode',
      'branch',
      'scope',
      'workflow',
    ])
    for (const s of sections) {
      expect(html).toContain(`<h2 id="${s.id}-title">`)
      expect(s.svg).toMatch(new RegExp(`^<svg [^>]*aria-labelledby="${s.id}-title"`))
      expect(s.table.headers.length).toBeGreaterThan(1)
      expect(html).toContain(`<section class="chart" id="chart-${s.id}" data-chart="${s.id}">`)
    }
  })

  it('the Markdown cannot break out of its tables', () => {
    const md = renderMarkdown(buildReport({ read, window, cache: 's3://b', prefix: 'p' }))
    expect(md).toMatch(/^## Scipio S3 cache: 2026-11-28 to 2026-11-30\n/)
    expect(md).not.toMatch(/<script/)
    const cells = (line: string) => line.split(/(?<!\\)\|/).length
    let header: number | undefined
    for (const line of md.split('\n')) {
      if (!line.startsWith('|')) header = undefined
      else if (header === undefined) header = cells(line)
      else expect(cells(line), line).toBe(header)
    }
  })
})

describe('docs/insights.md and docs/storage.md say what the code does', () => {
  const text = (file: string) => fs.readFileSync(path.join(root, file), 'utf8').replace(/\s*\n\s*/g, ' ')
  const insightsPage = text('docs/insights.md')

  it('the numbers of docs/insights.md are the code’s', () => {
    expect(insightsPage).toContain(`At most ${recordLimits.bytes} bytes of JSON`)
    expect(insightsPage).toContain(`refuses, unread, a record over ${recordLimits.bytes} bytes`)
    expect(insightsPage).toContain(`it is given at most ${recordWriteTimeoutMs / 1000} s`)
    expect(insightsPage).toContain(
      `Every text is cut to ${recordLimits.text} characters (${recordLimits.shortText} for the short ones)`,
    )
    expect(rollupGraceMs).toBe(3_600_000)
    expect(insightsPage).toContain('A day is **past** once it ended more than an hour ago.')
    expect(insightsPage).toContain(`Past ${countProgressFrom} reads it shows a progress bar`)
    expect(insightsPage).toContain(`reads in flight: ${indexReadsPerSlot} × N, at most ${maxIndexReads}`)
    expect(insightsPage).toContain(
      `Reads run ${indexReadsPerSlot} × \`--concurrency\` at a time (at most ${maxIndexReads})`,
    )
    expect(insightsPage).toContain(`the ${topRows} frameworks that miss most`)
    expect(insightsPage).toContain(`(the ${topRows} with the most runs each)`)
    expect(insightsPage).toContain(`(\`"schema": "${Formats.runRecord}"\`)`)
    expect(insightsPage).toContain(`(\`"schema": "${Formats.insights}"\`)`)
    expect(insightsPage).toContain(
      `<prefix>/${RunsFolder}/<yyyy>/<mm>/<dd>/<run id>-<attempt>-<job>-<entry>-<random>.json`,
    )
    for (const reason of missReasons) expect(insightsPage).toContain(`| \`${reason}\` |`)
  })

  it('docs/storage.md gives a consumer s3:PutObject on the records alone, and a lifecycle rule for them', () => {
    const storage = fs.readFileSync(path.join(root, 'docs/storage.md'), 'utf8')
    const blocks = [...storage.matchAll(/```json\n([\s\S]*?)```/g)].map(
      (m) => JSON.parse(m[1]!) as Record<string, unknown>,
    )
    const consumer = jsonBlocks(storage).find((b) => b.marker?.kind === 'iam-policy' && b.marker.name === 'consumer')
    expect(JSON.parse(consumer!.text)).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::my-bucket/scipio/*' },
        { Effect: 'Allow', Action: 's3:PutObject', Resource: `arn:aws:s3:::my-bucket/scipio/${RunsFolder}/*` },
      ],
    })
    const rule = blocks
      .flatMap((b) => (b.Rules as { ID: string; Filter: { Prefix: string } }[] | undefined) ?? [])
      .find((r) => r.ID === 'scipio-s3-cache-runs-expiry')
    expect(rule?.Filter.Prefix).toBe(`scipio/${RunsFolder}/`)
  })
})
