import { PutObjectCommand } from '@aws-sdk/client-s3'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { awsEnv, runCli, storeFlags } from './helpers/cli.js'
import {
  expectedAggregates,
  historyKey,
  historyNow,
  openPage,
  pixelSpread,
  putHistory,
  syntheticHistory,
  type History,
} from './helpers/insights.js'
import { reasonNames } from '../src/insights/format.js'
import type { MissReasonCode } from '../src/records/record.js'
import type { RecordedRequest } from './helpers/proxy.js'
import { prefixWriterPolicy } from './helpers/policy.js'
import { root, testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { runJob } from './helpers/workflow-runner.js'

/**
 * `scipio-s3-cache insights` on a synthetic history of 10,000 run records over 90 days (scripts/insights-history.mjs):
 * the figures it prints are exactly the history's, its requests are bounded (the first report reads every record
 * once and rolls up the past days, the second reads the roll-ups and today's records), and its page opens in a
 * real browser with nothing to fetch.
 */

// The bucket and prefix of docs/workflows/insights.yml, so that the workflow runs here as written.
const bucket = 'my-bucket'
const store = useStore([bucket])
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'insights-'))
const asOf = historyNow.toISOString()
const big: History = syntheticHistory()

afterEach(() => {
  store.proxy.policies = undefined
})
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

const insights = (prefix: string, args: string[]) =>
  runCli(['insights', ...storeFlags(bucket, store.endpoint, prefix), ...args], { cwd: tmp, env: awsEnv })

const isListing = (r: RecordedRequest) => r.method === 'GET' && /[?&]list-type=2/.test(r.url)
const isRollup = (r: RecordedRequest) => r.url.includes('/rollups/')
const breakdown = (requests: RecordedRequest[]) => ({
  listings: requests.filter(isListing).length,
  recordGets: requests.filter((r) => r.method === 'GET' && !isListing(r) && !isRollup(r)).length,
  rollupGets: requests.filter((r) => r.method === 'GET' && isRollup(r)).length,
  rollupPuts: requests.filter((r) => r.method === 'PUT' && isRollup(r)).length,
  other: requests.filter((r) => r.method !== 'GET' && r.method !== 'PUT').length,
})

/** The JSON report without what depends on the run rather than the records. */
const figures = (json: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(json).filter(([key]) => key !== 'reads' && key !== 'cache'))

describe('insights on 90 days and 10,000 records', () => {
  const prefix = 'history'
  const page = path.join(tmp, 'page.html')
  let first: Record<string, unknown>
  let firstRequests: RecordedRequest[]

  beforeAll(async () => {
    await putHistory(store, bucket, prefix, big)
  }, 300_000)

  it('the first report reads every record once, rolls up the 89 past days: ≤ 10,100 requests, exactly the known figures', async () => {
    store.proxy.requests.length = 0
    const run = await insights(prefix, ['--since', '90d', '--until', asOf, '--json', '--html', page])
    expect(run.code, run.stderr).toBe(0)
    firstRequests = [...store.proxy.requests]
    first = JSON.parse(run.stdout) as Record<string, unknown>
    const days = [...new Set(big.records.map((r) => r.day))]
    expect(days).toHaveLength(90)
    expect(figures(first)).toEqual({
      ...expectedAggregates(big.records, days),
      prefix,
    })
    expect(first.reads).toEqual({ records: 10_000, rollups: 0, rollupsWritten: 89, unusable: 0, failed: 0 })
    // One listing of the roll-ups, ten pages of records, a GET per record, a PUT per past day.
    expect(breakdown(firstRequests)).toEqual({
      listings: 11,
      recordGets: 10_000,
      rollupGets: 0,
      rollupPuts: 89,
      other: 0,
    })
    expect(firstRequests.length).toBeLessThanOrEqual(10_100)
    expect(firstRequests.filter((r) => r.status !== 200)).toEqual([])
  }, 300_000)

  it('the second reads the 89 roll-ups and the last day’s records: ≤ 200 requests, the same figures', async () => {
    store.proxy.requests.length = 0
    const run = await insights(prefix, ['--since', '90d', '--until', asOf, '--json'])
    expect(run.code, run.stderr).toBe(0)
    const second = JSON.parse(run.stdout) as Record<string, unknown>
    expect(figures(second)).toEqual(figures(first))
    const today = big.records.filter((r) => r.day === asOf.slice(0, 10)).length
    expect(today).toBe(59)
    expect(second.reads).toEqual({ records: today, rollups: 89, rollupsWritten: 0, unusable: 0, failed: 0 })
    expect(breakdown(store.proxy.requests)).toEqual({
      listings: 2,
      recordGets: today,
      rollupGets: 89,
      rollupPuts: 0,
      other: 0,
    })
    expect(store.proxy.requests.length).toBeLessThanOrEqual(200)
  })

  it('--repository keeps that repository’s runs, from the same roll-ups', async () => {
    const run = await insights(prefix, ['--since', '90d', '--until', asOf, '--json', '--repository', 'acme/watch-app'])
    expect(run.code, run.stderr).toBe(0)
    const json = JSON.parse(run.stdout) as Record<string, unknown>
    const mine = big.records.filter((r) => r.record.repository === 'acme/watch-app')
    expect(figures(json)).toEqual({
      ...expectedAggregates(mine, [...new Set(big.records.map((r) => r.day))]),
      prefix,
      repository: 'acme/watch-app',
    })
  })

  it('--markdown prints the headline figures and small tables', async () => {
    const run = await insights(prefix, ['--since', '90d', '--until', asOf, '--markdown'])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^## Scipio S3 cache: 2026-09-02 to 2026-11-30\n/)
    const totals = first.totals as Record<string, number>
    expect(run.stdout).toContain(`| ${totals.runs} | ${(totals.hitRate! * 100).toFixed(1)}% |`)
    expect(run.stdout).toContain('### Why it missed')
    expect(run.stdout).toContain('### The frameworks that miss most')
  })

  it('the page in headless Chromium: no console error, no request, every chart, the JSON’s numbers, not blank', async () => {
    const opened = await openPage(page)
    try {
      expect(opened.errors).toEqual([])
      expect(opened.requests).toEqual([])
      const sections = await opened.page.$$eval('section.chart', (all) =>
        all.map((s) => ({
          id: s.getAttribute('data-chart'),
          title: s.querySelector('h2')?.textContent ?? '',
          svg: s.querySelector(`svg[aria-labelledby="${s.querySelector('h2')?.id}"]`) !== null,
          marks: s.querySelectorAll('svg rect, svg path, svg circle').length,
          rows: [...s.querySelectorAll('tbody tr')].map((tr) => ({
            name: tr.querySelector('th')?.textContent ?? '',
            values: [...tr.querySelectorAll('td[data-value]')].map((td) => td.getAttribute('data-value')),
          })),
        })),
      )
      const report = first as unknown as ReturnType<typeof expectedAggregates>
      const value = (v: number | null) => (v === null ? 'null' : String(v))
      const rate = (part: number, whole: number) => (whole === 0 ? null : part / whole)
      const versions = report.xcode.map((x) => x.version)
      const split = (s: (typeof report.splits)['branch']) =>
        s.rows.map((r) => ({
          name: r.name,
          values: [r.runs, r.fullHits, r.partialHits, r.noHits, r.savedMs].map(value),
        }))
      const expected: Record<string, { name: string; values: string[] }[]> = {
        'hit-rate': report.days.map((d) => ({
          name: d.day,
          values: [d.fullHits, d.partialHits, d.noHits, rate(d.fullHits, d.consumerRuns)].map(value),
        })),
        'build-time': report.weeks.map((w) => ({ name: w.week, values: [w.savedMs, w.buildMs].map(value) })),
        bytes: report.days.map((d) => ({ name: d.day, values: [d.bytesDown, d.bytesUp].map(value) })),
        frameworks: report.frameworks.map((f) => ({ name: f.name, values: [value(f.misses)] })),
        reasons: report.reasons.map((r) => ({
          name: reasonNames[r.reason as MissReasonCode],
          values: [value(r.misses)],
        })),
        'restore-time': report.days.map((d) => ({ name: d.day, values: [d.restoreP50Ms, d.restoreP95Ms].map(value) })),
        xcode: report.days.map((d) => ({
          name: d.day,
          values: [...versions.map((v) => d.xcode.find((x) => x.version === v)?.runs ?? 0), d.missed].map(value),
        })),
        branch: split(report.splits.branch),
        scope: split(report.splits.scope),
        workflow: split(report.splits.workflow),
      }
      expect(sections.map((s) => s.id)).toEqual(Object.keys(expected))
      for (const s of sections) {
        expect(s.title.length, s.id).toBeGreaterThan(10)
        expect(s.svg, s.id).toBe(true)
        expect(s.marks, s.id).toBeGreaterThan(3)
        expect(s.rows, s.id).toEqual(expected[s.id!])
      }
      const tiles = await opened.page.$$eval('.tiles .value', (all) => all.map((t) => t.getAttribute('data-value')))
      const t = report.totals
      expect(tiles).toEqual(
        [t.runs, t.hitRate, t.frameworkHitRate, t.restored, t.savedMs, t.buildMs, t.bytesDown, t.bytesUp].map(value),
      )
      const png = await opened.page.screenshot()
      const spread = await pixelSpread(opened.context, png)
      expect(spread.colours).toBeGreaterThan(50)
      expect(spread.variance).toBeGreaterThan(100)
    } finally {
      await opened.close()
    }
  })

  it('the browser check sees what a page fetches, and a blank screenshot (so the checks above can fail)', async () => {
    const fetching = path.join(tmp, 'fetching.html')
    fs.writeFileSync(fetching, '<!doctype html><img src="http://127.0.0.1:9/x.png">')
    const blank = path.join(tmp, 'blank.html')
    fs.writeFileSync(blank, '<!doctype html><body style="background:#fff"></body>')
    const opened = await openPage(fetching)
    try {
      expect(opened.requests).toEqual(['http://127.0.0.1:9/x.png'])
      expect(opened.errors.length).toBeGreaterThan(0)
      await opened.page.goto(`file://${blank}`)
      const spread = await pixelSpread(opened.context, await opened.page.screenshot())
      expect(spread.colours).toBe(1)
      expect(spread.variance).toBeLessThan(1)
    } finally {
      await opened.close()
    }
  })
})

/** A small history ending at `now`: `records` over `days` days. */
const small = (records: number, days: number, now: Date = historyNow) =>
  syntheticHistory({ records, days, now, seed: 7 })

describe('roll-ups: who may write them, two runs at once, records that come late', () => {
  it('a read-only insights run still reports (one debug line); a later one writes the roll-ups', async () => {
    const prefix = 'read-only'
    const h = small(300, 10)
    await putHistory(store, bucket, prefix, h)
    store.proxy.policies = { identities: { [testCredentials.accessKeyId]: prefixWriterPolicy(bucket, []) } }
    const args = ['--since', '10d', '--until', asOf, '--json', '--verbose']
    const refused = await insights(prefix, args)
    expect(refused.code, refused.stderr).toBe(0)
    const json = JSON.parse(refused.stdout) as Record<string, unknown>
    expect(json.reads).toMatchObject({ records: 300, rollupsWritten: 0 })
    expect(refused.stderr).not.toMatch(/^warning:/m)
    expect(refused.stderr.split('\n').filter((l) => /roll-ups not written/.test(l))).toEqual([
      expect.stringMatching(/^debug: Day roll-ups not written \(these credentials may not write /),
    ])
    store.proxy.policies = undefined
    const allowed = await insights(prefix, args)
    expect(JSON.parse(allowed.stdout).reads).toMatchObject({ rollupsWritten: 9 })
    expect(figures(JSON.parse(allowed.stdout) as Record<string, unknown>)).toEqual(figures(json))
  })

  it('two insights runs at once: each day rolled up once, the same bytes whoever wins, the same figures', async () => {
    const prefix = 'race'
    await putHistory(store, bucket, prefix, small(400, 14))
    const args = ['--since', '14d', '--until', asOf, '--json']
    store.proxy.requests.length = 0
    const [a, b] = await Promise.all([insights(prefix, args), insights(prefix, args)])
    expect([a.code, b.code]).toEqual([0, 0])
    const written = [a, b].map(
      (r) => (JSON.parse(r.stdout) as { reads: { rollupsWritten: number } }).reads.rollupsWritten,
    )
    expect(written[0]! + written[1]!).toBe(13)
    const puts = store.proxy.requests.filter((r) => r.method === 'PUT' && isRollup(r))
    expect(puts.filter((r) => r.status === 200)).toHaveLength(13)
    expect(puts.every((r) => r.headers['if-none-match'] === '*')).toBe(true)
    expect(figures(JSON.parse(a.stdout) as Record<string, unknown>)).toEqual(
      figures(JSON.parse(b.stdout) as Record<string, unknown>),
    )
  })

  it('a day is rolled up only an hour after it ended: a record that comes late for it still counts', async () => {
    const prefix = 'late'
    const h = small(200, 5)
    await putHistory(store, bucket, prefix, h)
    const yesterday = '2026-11-29'
    const early = await insights(prefix, ['--since', '5d', '--until', '2026-11-30T00:30:00Z', '--json'])
    expect(JSON.parse(early.stdout).reads).toMatchObject({ rollupsWritten: 3 }) // not 2026-11-29 yet
    const late = h.records.find((r) => r.day === yesterday)!
    await store.s3.client().send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: historyKey(prefix, yesterday, '9999999999-1-build-action-00000000'),
        Body: JSON.stringify({ ...late.record, time: `${yesterday}T23:59:59.000Z` }),
      }),
    )
    const after = await insights(prefix, ['--since', '5d', '--until', '2026-11-30T01:00:00Z', '--json'])
    const json = JSON.parse(after.stdout) as { reads: unknown; days: { day: string; runs: number }[] }
    expect(json.reads).toMatchObject({ rollups: 3, rollupsWritten: 1 })
    const runs = h.records.filter((r) => r.day === yesterday).length + 1
    expect(json.days.find((d) => d.day === yesterday)!.runs).toBe(runs)
  })

  it('records that are not ours are left out and counted; the page and the figures keep to the valid ones', async () => {
    const prefix = 'hostile'
    const h = small(50, 2)
    await putHistory(store, bucket, prefix, h)
    const day = h.records[0]!.day
    const client = store.s3.client()
    const hostile = { ...h.records[0]!.record, workflow: '<script>alert(1)</script>' }
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: historyKey(prefix, day, 'x-1-a-action-1'),
        Body: JSON.stringify(hostile),
      }),
    )
    await client.send(
      new PutObjectCommand({ Bucket: bucket, Key: historyKey(prefix, day, 'x-1-a-action-2'), Body: 'x'.repeat(5000) }),
    )
    const html = path.join(tmp, 'hostile.html')
    const run = await insights(prefix, ['--since', '2d', '--until', asOf, '--json', '--html', html])
    expect(run.code, run.stderr).toBe(0)
    const json = JSON.parse(run.stdout) as Record<string, unknown>
    expect(json.reads).toMatchObject({ records: 52, unusable: 2 })
    expect(figures(json)).toMatchObject({ totals: { runs: 50 } })
    expect(fs.readFileSync(html, 'utf8')).not.toContain('<script')
  })
})

describe('docs/workflows/insights.yml', () => {
  it('runs as written: the page in RUNNER_TEMP for the artifact, the Markdown in the job summary', async () => {
    // The workflow reads the last 28 days of prefix `scipio`: a history that ends now.
    await putHistory(store, bucket, 'scipio', small(120, 7, new Date()))
    const bin = fs.mkdtempSync(path.join(tmp, 'bin-'))
    // The command `npm install --global` puts on PATH, pointed at the test store (its only difference).
    fs.writeFileSync(
      path.join(bin, 'scipio-s3-cache'),
      `#!/bin/sh\nexec "${process.execPath}" "${path.join(root, 'dist/cli/index.js')}" "$@" --endpoint ${store.endpoint} --force-path-style\n`,
      { mode: 0o755 },
    )
    const runnerTemp = fs.mkdtempSync(path.join(tmp, 'runner-temp-'))
    const summary = path.join(runnerTemp, 'summary.md')
    fs.writeFileSync(summary, '')
    const job = await runJob({
      workflow: 'docs/workflows/insights.yml',
      job: 'insights',
      env: {
        PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`,
        HOME: tmp,
        RUNNER_TEMP: runnerTemp,
        GITHUB_STEP_SUMMARY: summary,
        AWS_EC2_METADATA_DISABLED: 'true',
        ...awsEnv,
      },
      skip: {
        uses: ['actions/setup-node', 'aws-actions/configure-aws-credentials', 'actions/upload-artifact'],
        run: ['npm install --global github:<owner>/scipio-s3-cache#v1'],
      },
    })
    expect(job.steps.map((s) => s.status)).toEqual(['skipped', 'skipped', 'skipped', 'success', 'skipped'])
    expect(fs.readFileSync(summary, 'utf8')).toMatch(
      /^## Scipio S3 cache: \d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2}\n[\s\S]*\| 120 \|/,
    )
    const page = fs.readFileSync(path.join(runnerTemp, 'insights.html'), 'utf8')
    expect(page).toMatch(/^<!doctype html>/)
    expect(page.match(/<svg /g)?.length).toBe(10)
  })
})
