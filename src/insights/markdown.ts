import { formatBytes, formatHours, formatRate, reasonNames } from './format.js'
import { headline } from './html.js'
import type { InsightsReport } from './report.js'

/** `insights --markdown`: the headline figures and small tables, for a job summary ($GITHUB_STEP_SUMMARY). */

/** Rows of the small tables. */
export const markdownRows = 5

const cell = (text: string) => text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[<>]/g, '')

function table(headers: string[], rows: string[][]): string[] {
  return [
    `| ${headers.map(cell).join(' | ')} |`,
    `| ${headers.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ]
}

export function renderMarkdown(r: InsightsReport): string {
  const scope = r.repository ? ` (${r.repository})` : ''
  const figures = headline(r)
  const lines = [
    `## Scipio S3 cache: ${r.window.since} to ${r.window.until}${scope}`,
    '',
    ...table(
      figures.map((f) => f.label),
      [figures.map((f) => f.cell.text)],
    ),
  ]
  const reasons = r.reasons.filter((x) => x.misses > 0).sort((a, b) => b.misses - a.misses)
  if (reasons.length > 0)
    lines.push(
      '',
      '### Why it missed',
      '',
      ...table(
        ['Reason', 'Misses'],
        reasons.map((x) => [reasonNames[x.reason], String(x.misses)]),
      ),
    )
  if (r.frameworks.length > 0)
    lines.push(
      '',
      '### The frameworks that miss most',
      '',
      ...table(
        ['Framework', 'Misses', 'Mostly'],
        r.frameworks.slice(0, markdownRows).map((f) => [f.name, String(f.misses), reasonNames[f.reason]]),
      ),
    )
  lines.push(
    '',
    '### The last weeks',
    '',
    ...table(
      ['Week of', 'Build time saved', 'Build time spent'],
      r.weeks.slice(-markdownRows).map((w) => [w.week, formatHours(w.savedMs), formatHours(w.buildMs)]),
    ),
  )
  const last = r.days.slice(-markdownRows)
  lines.push(
    '',
    '### The last days',
    '',
    ...table(
      ['Day', 'Consumer runs', 'Hit rate', 'Downloaded', 'Uploaded'],
      last.map((d) => [
        d.day,
        String(d.consumerRuns),
        formatRate(d.consumerRuns === 0 ? null : d.fullHits / d.consumerRuns),
        formatBytes(d.bytesDown),
        formatBytes(d.bytesUp),
      ]),
    ),
    '',
    `${r.reads.records} run records and ${r.reads.rollups} day roll-ups read; the page (\`--html\`) has every chart.`,
    '',
  )
  return lines.join('\n')
}
