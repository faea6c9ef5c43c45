import { missReasons, type MissReasonCode } from '../records/record.js'
import { formatBytes, formatHours, formatMs, formatRate, reasonNames } from './format.js'
import type { InsightsReport, Split } from './report.js'
import { barsChart, columnsChart, escapeXml, linesChart, type Series } from './svg.js'

/**
 * The insights page: one HTML file that opens offline and as a workflow artifact. Styles are inline, charts are
 * inline SVG, there is no script, font or image, and a Content-Security-Policy of `default-src 'none'` keeps the
 * page from fetching anything. Every chart has a title and, beside it, the table of its numbers; each number's
 * cell carries the exact figure of the JSON report in `data-value`.
 */

interface Cell {
  text: string
  /** The exact figure (as `--json` has it); absent for names. */
  value?: number | null
}

interface Table {
  headers: string[]
  rows: Cell[][]
}

export interface ChartSection {
  id: string
  title: string
  svg: string
  table: Table
  note?: string
}

const colors = {
  full: '#2e7d32',
  partial: '#f2a900',
  none: '#c62828',
  down: '#1565c0',
  up: '#7b1fa2',
  saved: '#2e7d32',
  spent: '#ef6c00',
  p50: '#1565c0',
  p95: '#c62828',
}
const palette = ['#1565c0', '#ef6c00', '#2e7d32', '#7b1fa2', '#00838f', '#c62828', '#6d4c41', '#546e7a', '#f2a900']
const reasonColors: Record<MissReasonCode, string> = {
  'pin-moved': '#1565c0',
  'xcode-changed': '#c62828',
  'dependency-moved': '#7b1fa2',
  expired: '#6d4c41',
  'not-produced-yet': '#f2a900',
  'inputs-changed': '#00838f',
  unreadable: '#546e7a',
}

const shortDay = (day: string) => day.slice(5)
const hourMs = 3_600_000

/** Bytes in the unit that suits the largest of them, for an axis with round marks. */
function byteUnit(max: number): { divisor: number; name: string } {
  const units = [
    { divisor: 1024 ** 3, name: 'GiB' },
    { divisor: 1024 ** 2, name: 'MiB' },
    { divisor: 1024, name: 'KiB' },
  ]
  return units.find((u) => max >= u.divisor) ?? { divisor: 1, name: 'B' }
}
const inUnit = (divisor: number) => (values: (number | null)[]) => values.map((v) => (v === null ? null : v / divisor))
const trimmed = (n: number) => String(Number(n.toFixed(2)))
const text = (t: string): Cell => ({ text: t })
const count = (n: number): Cell => ({ text: String(n), value: n })
const bytes = (n: number): Cell => ({ text: formatBytes(n), value: n })
const hours = (ms: number): Cell => ({ text: formatHours(ms), value: ms })
const duration = (ms: number | null): Cell => ({ text: formatMs(ms), value: ms })
const rate = (r: number | null): Cell => ({ text: formatRate(r), value: r })

function hitRateChart(r: InsightsReport): ChartSection {
  const id = 'hit-rate'
  const series: Series[] = [
    { name: 'full hits', color: colors.full, values: r.days.map((d) => d.fullHits) },
    { name: 'partial hits', color: colors.partial, values: r.days.map((d) => d.partialHits) },
    { name: 'no hits', color: colors.none, values: r.days.map((d) => d.noHits) },
  ]
  return {
    id,
    title: 'Consumer runs per day: full hits, partial hits and runs that got nothing',
    svg: columnsChart({
      labelledBy: `${id}-title`,
      categories: r.days.map((d) => d.day),
      series,
      stacked: true,
      format: String,
      label: shortDay,
    }),
    table: {
      headers: ['Day', 'Full hits', 'Partial hits', 'No hits', 'Hit rate'],
      rows: r.days.map((d) => [
        text(d.day),
        count(d.fullHits),
        count(d.partialHits),
        count(d.noHits),
        rate(d.consumerRuns === 0 ? null : d.fullHits / d.consumerRuns),
      ]),
    },
  }
}

function timeChart(r: InsightsReport): ChartSection {
  const id = 'build-time'
  return {
    id,
    title: 'Scipio build time saved against build time spent, per week',
    note: 'Saved: the build time of the frameworks restored, as their producers measured it. Spent: the Scipio builds that ran. Weeks start on Monday.',
    svg: columnsChart({
      labelledBy: `${id}-title`,
      categories: r.weeks.map((w) => w.week),
      series: [
        { name: 'saved', color: colors.saved, values: inUnit(hourMs)(r.weeks.map((w) => w.savedMs)) },
        { name: 'spent', color: colors.spent, values: inUnit(hourMs)(r.weeks.map((w) => w.buildMs)) },
      ],
      stacked: false,
      format: (h) => `${trimmed(h)} h`,
      label: shortDay,
    }),
    table: {
      headers: ['Week of', 'Saved', 'Spent'],
      rows: r.weeks.map((w) => [text(w.week), hours(w.savedMs), hours(w.buildMs)]),
    },
  }
}

function bytesChart(r: InsightsReport): ChartSection {
  const id = 'bytes'
  const unit = byteUnit(Math.max(0, ...r.days.map((d) => d.bytesDown + d.bytesUp)))
  return {
    id,
    title: 'Bytes moved per day',
    svg: columnsChart({
      labelledBy: `${id}-title`,
      categories: r.days.map((d) => d.day),
      series: [
        { name: 'downloaded', color: colors.down, values: inUnit(unit.divisor)(r.days.map((d) => d.bytesDown)) },
        { name: 'uploaded', color: colors.up, values: inUnit(unit.divisor)(r.days.map((d) => d.bytesUp)) },
      ],
      stacked: true,
      format: (n) => `${trimmed(n)} ${unit.name}`,
      label: shortDay,
    }),
    table: {
      headers: ['Day', 'Downloaded', 'Uploaded'],
      rows: r.days.map((d) => [text(d.day), bytes(d.bytesDown), bytes(d.bytesUp)]),
    },
  }
}

function frameworksChart(r: InsightsReport): ChartSection {
  const id = 'frameworks'
  const used = missReasons.filter((reason) => r.frameworks.some((f) => f.reasons[reason]))
  return {
    id,
    title: 'The frameworks that miss most, and why',
    ...(r.missesUnlisted > 0
      ? { note: `${r.missesUnlisted} misses are counted by reason only: their runs missed too many to list each.` }
      : {}),
    svg: barsChart({
      labelledBy: `${id}-title`,
      categories: r.frameworks.map((f) => f.name),
      series: used.map((reason) => ({
        name: reasonNames[reason],
        color: reasonColors[reason],
        values: r.frameworks.map((f) => f.reasons[reason] ?? 0),
      })),
      format: String,
    }),
    table: {
      headers: ['Framework', 'Misses', 'Mostly'],
      rows: r.frameworks.map((f) => [text(f.name), count(f.misses), text(reasonNames[f.reason])]),
    },
  }
}

function reasonsChart(r: InsightsReport): ChartSection {
  const id = 'reasons'
  return {
    id,
    title: 'Why frameworks missed',
    svg: barsChart({
      labelledBy: `${id}-title`,
      categories: r.reasons.map((x) => reasonNames[x.reason]),
      series: [{ name: 'misses', color: colors.none, values: r.reasons.map((x) => x.misses) }],
      format: String,
    }),
    table: {
      headers: ['Reason', 'Misses'],
      rows: r.reasons.map((x) => [text(reasonNames[x.reason]), count(x.misses)]),
    },
  }
}

function restoreChart(r: InsightsReport): ChartSection {
  const id = 'restore-time'
  return {
    id,
    title: 'Restore duration per day: median (p50) and p95',
    svg: linesChart({
      labelledBy: `${id}-title`,
      categories: r.days.map((d) => d.day),
      series: [
        { name: 'p50', color: colors.p50, values: inUnit(1000)(r.days.map((d) => d.restoreP50Ms)) },
        { name: 'p95', color: colors.p95, values: inUnit(1000)(r.days.map((d) => d.restoreP95Ms)) },
      ],
      format: (seconds) => `${trimmed(seconds)} s`,
      label: shortDay,
    }),
    table: {
      headers: ['Day', 'p50', 'p95'],
      rows: r.days.map((d) => [text(d.day), duration(d.restoreP50Ms), duration(d.restoreP95Ms)]),
    },
  }
}

function xcodeChart(r: InsightsReport): ChartSection {
  const id = 'xcode'
  const versions = r.xcode.map((x) => x.version)
  const runsOf = (day: InsightsReport['days'][number], version: string) =>
    day.xcode.find((x) => x.version === version)?.runs ?? 0
  return {
    id,
    title: 'Xcode versions over time: runs per day by Xcode, and the misses of each day',
    note: 'A new runner image shows as a new colour, and the misses it causes in the last column.',
    svg: columnsChart({
      labelledBy: `${id}-title`,
      categories: r.days.map((d) => d.day),
      series: versions.map((version, i) => ({
        name: `Xcode ${version}`,
        color: palette[i % palette.length]!,
        values: r.days.map((d) => runsOf(d, version)),
      })),
      stacked: true,
      format: String,
      label: shortDay,
    }),
    table: {
      headers: ['Day', ...versions.map((v) => `Xcode ${v}`), 'Misses'],
      rows: r.days.map((d) => [text(d.day), ...versions.map((v) => count(runsOf(d, v))), count(d.missed)]),
    },
  }
}

function splitChart(id: string, title: string, split: Split): ChartSection {
  return {
    id,
    title,
    ...(split.more > 0 ? { note: `${split.more} more with fewer runs are not shown.` } : {}),
    svg: barsChart({
      labelledBy: `${id}-title`,
      categories: split.rows.map((s) => s.name),
      series: [
        { name: 'full hits', color: colors.full, values: split.rows.map((s) => s.fullHits) },
        { name: 'partial hits', color: colors.partial, values: split.rows.map((s) => s.partialHits) },
        { name: 'no hits', color: colors.none, values: split.rows.map((s) => s.noHits) },
        {
          name: 'producer-only runs',
          color: '#90a4ae',
          values: split.rows.map((s) => s.runs - s.consumerRuns),
        },
      ],
      format: String,
    }),
    table: {
      headers: ['Name', 'Runs', 'Full hits', 'Partial hits', 'No hits', 'Build time saved'],
      rows: split.rows.map((s) => [
        text(s.name),
        count(s.runs),
        count(s.fullHits),
        count(s.partialHits),
        count(s.noHits),
        hours(s.savedMs),
      ]),
    },
  }
}

/** Every chart of the page, in order. */
export function chartSections(r: InsightsReport): ChartSection[] {
  return [
    hitRateChart(r),
    timeChart(r),
    bytesChart(r),
    frameworksChart(r),
    reasonsChart(r),
    restoreChart(r),
    xcodeChart(r),
    splitChart('branch', 'Runs by branch', r.splits.branch),
    splitChart('scope', 'Runs by scope', r.splits.scope),
    splitChart('workflow', 'Runs by workflow', r.splits.workflow),
  ]
}

function cellHtml(cell: Cell, tag: 'td' | 'th'): string {
  const value = cell.value === undefined ? '' : ` data-value="${cell.value === null ? 'null' : String(cell.value)}"`
  return `<${tag}${value}>${escapeXml(cell.text)}</${tag}>`
}

function tableHtml(section: ChartSection): string {
  const head = section.table.headers.map((h) => `<th scope="col">${escapeXml(h)}</th>`).join('')
  const body = section.table.rows
    .map((row) => `<tr>${row.map((cell, i) => cellHtml(cell, i === 0 ? 'th' : 'td')).join('')}</tr>`)
    .join('\n')
  return `<table><caption>The numbers of the chart</caption><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`
}

function sectionHtml(section: ChartSection): string {
  return [
    `<section class="chart" id="chart-${section.id}" data-chart="${section.id}">`,
    `<h2 id="${section.id}-title">${escapeXml(section.title)}</h2>`,
    section.note ? `<p class="note">${escapeXml(section.note)}</p>` : '',
    `<div class="pair"><div class="figure">${section.svg}</div><div class="numbers">${tableHtml(section)}</div></div>`,
    '</section>',
  ].join('\n')
}

/** The headline figures: what the cache was worth in the window. */
export function headline(r: InsightsReport): { label: string; cell: Cell }[] {
  const t = r.totals
  return [
    { label: 'Runs', cell: count(t.runs) },
    { label: 'Consumer runs that were full hits', cell: rate(t.hitRate) },
    { label: 'Frameworks from the cache', cell: rate(t.frameworkHitRate) },
    { label: 'Frameworks restored (builds avoided)', cell: count(t.restored) },
    { label: 'Scipio build time saved', cell: hours(t.savedMs) },
    { label: 'Scipio build time spent', cell: hours(t.buildMs) },
    { label: 'Downloaded', cell: bytes(t.bytesDown) },
    { label: 'Uploaded', cell: bytes(t.bytesUp) },
  ]
}

const style = `
:root { color-scheme: light; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; background: #fff; margin: 0 auto; max-width: 1400px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 0 0 6px; }
.meta, .note { color: #57606a; margin: 0 0 12px; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0 24px; padding: 0; list-style: none; }
.tiles li { border: 1px solid #d0d7de; border-radius: 6px; padding: 10px 14px; min-width: 140px; }
.tiles .value { display: block; font-size: 22px; font-weight: 600; }
.tiles .label { color: #57606a; }
.chart { border-top: 1px solid #d0d7de; padding: 16px 0; }
.pair { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.figure svg { max-width: 100%; height: auto; }
.numbers { max-height: 300px; overflow: auto; border: 1px solid #d0d7de; border-radius: 6px; }
table { border-collapse: collapse; font-size: 12px; font-variant-numeric: tabular-nums; }
caption { position: absolute; left: -9999px; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eaeef2; text-align: right; white-space: nowrap; }
th[scope="col"] { position: sticky; top: 0; background: #f6f8fa; }
tbody th { text-align: left; font-weight: normal; }
svg text { font: 11px -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; fill: #57606a; }
svg .legend { fill: #1f2328; }
svg .grid { stroke: #eaeef2; }
`

export function renderHtml(r: InsightsReport): string {
  const window = `${r.window.since} to ${r.window.until} (${r.window.days} days)`
  const scope = r.repository ? `, repository ${r.repository}` : ''
  const tiles = headline(r)
    .map(
      (h) =>
        `<li><span class="value"${h.cell.value === undefined ? '' : ` data-value="${h.cell.value === null ? 'null' : String(h.cell.value)}"`}>${escapeXml(h.cell.text)}</span><span class="label">${escapeXml(h.label)}</span></li>`,
    )
    .join('')
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeXml(`Scipio S3 cache insights: ${window}`)}</title>`,
    `<style>${style}</style>`,
    '</head>',
    '<body>',
    '<header>',
    '<h1>What the Scipio S3 cache saved</h1>',
    `<p class="meta">${escapeXml(`${window}${scope}; ${r.totals.runs} runs recorded in ${r.cache}${r.prefix ? `, prefix ${r.prefix}` : ''}`)}</p>`,
    `<ul class="tiles">${tiles}</ul>`,
    '</header>',
    '<main>',
    ...chartSections(r).map(sectionHtml),
    '</main>',
    `<footer class="meta">${escapeXml(`Made by scipio-s3-cache insights from ${r.reads.records} run records and ${r.reads.rollups} day roll-ups${r.reads.unusable ? `; ${r.reads.unusable} unusable records left out` : ''}.`)}</footer>`,
    '</body>',
    '</html>',
    '',
  ].join('\n')
}
