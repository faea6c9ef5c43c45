import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { readConfig, type S3Settings } from '../inputs/inputs.js'
import type { Log } from '../log.js'
import { renderHtml } from '../insights/html.js'
import { renderMarkdown } from '../insights/markdown.js'
import { readDays } from '../insights/read.js'
import { buildReport, type InsightsReport } from '../insights/report.js'
import { parseWindow, WindowError } from '../insights/window.js'
import { formatBytes, formatHours, formatRate } from '../insights/format.js'
import { createStorage } from '../storage/index.js'
import { S3Admin } from '../storage/s3-admin.js'
import { flagInputReader, UsageError, type FlagValues } from './args.js'
import { CountProgress } from './progress.js'
import type { Terminal } from './terminal.js'

/** `scipio-s3-cache insights`: what the cache saved over a window of days, from the run records (insights/). */

export interface InsightsIo {
  values: FlagValues
  cwd: string
  terminal: Terminal
  log: Log
  print: (text: string) => void
  now?: Date
}

function flag(values: FlagValues, name: string): string | undefined {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

/** The text summary, when neither --json nor --markdown is asked for. */
export function renderText(r: InsightsReport): string {
  const t = r.totals
  return [
    `${r.window.since} to ${r.window.until} (${r.window.days} days)${r.repository ? `, ${r.repository}` : ''}: ${t.runs} runs, ${t.consumerRuns} of them restoring.`,
    `Full hits: ${t.fullHits} (${formatRate(t.hitRate)}); partial: ${t.partialHits}; nothing from the cache: ${t.noHits}.`,
    `Frameworks restored: ${t.restored}, built: ${t.built}, missed: ${t.missed} (${formatRate(t.frameworkHitRate)} from the cache).`,
    `Scipio build time saved: ${formatHours(t.savedMs)}; spent: ${formatHours(t.buildMs)}. Downloaded ${formatBytes(t.bytesDown)}, uploaded ${formatBytes(t.bytesUp)}.`,
    '',
  ].join('\n')
}

/** Runs the command; returns whether every record could be read. */
export async function insights(io: InsightsIo): Promise<boolean> {
  const { values } = io
  if (values.json === true && values.markdown === true)
    throw new UsageError('--json and --markdown both print on standard output: choose one.')
  const now = io.now ?? new Date()
  let window
  try {
    window = parseWindow(flag(values, 'since'), flag(values, 'until'), now)
  } catch (error) {
    if (error instanceof WindowError) throw new UsageError(error.message)
    throw error
  }
  const config = readConfig(flagInputReader('insights', values, io.cwd), io.cwd)
  const settings = config.storage as S3Settings
  const storage = createStorage(settings, config.stallTimeoutMs)
  const progress = values.quiet === true ? undefined : new CountProgress(io.terminal, 'records and roll-ups')
  const read = await readDays({
    storage,
    lister: new S3Admin(settings),
    prefix: config.prefix,
    window,
    concurrency: config.concurrency,
    log: io.log,
    ...(progress ? { onProgress: progress.update } : {}),
  }).finally(() => progress?.finish())
  const repository = flag(values, 'repository')
  const report = buildReport({
    read,
    window,
    cache: storage.description,
    prefix: config.prefix,
    ...(repository ? { repository } : {}),
  })
  io.log.info(
    `Read ${read.rollupsRead} day roll-ups and ${read.recordsRead} run records; wrote ${read.rollupsWritten} roll-ups.`,
  )
  const html = flag(values, 'html')
  if (html) {
    const file = path.resolve(io.cwd, html)
    await fs.writeFile(file, renderHtml(report))
    io.log.info(`Wrote ${file}.`)
  }
  if (values.json === true) io.print(`${JSON.stringify(report, null, 2)}\n`)
  else if (values.markdown === true) io.print(renderMarkdown(report))
  else io.print(renderText(report))
  if (read.failed > 0) io.log.warning(`${read.failed} run records could not be read: the figures leave them out.`)
  return read.failed === 0
}
