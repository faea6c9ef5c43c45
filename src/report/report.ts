import * as core from '@actions/core'
import { avoidedBuildText } from './time-saved.js'
import { Outputs } from '../constants.js'
import {
  cascade,
  cascadeLines,
  missReasonsOutput,
  rebuiltAfterRestore,
  reasonLines,
  type Explanation,
  type MissReason,
} from '../explain/explain.js'
import type { ScipioInstall } from '../scipio/install.js'
import type { KeyPlan } from '../keys/keys.js'
import { cacheMisses, type RestoreOutcome } from '../restore/outcome.js'
import type { SaveOutcome } from '../save/save.js'
import { redact } from '../secrets.js'
import type { SwiftpmCacheResult } from '../scipio/swiftpm-cache.js'

export interface RunReport {
  restore?: RestoreOutcome
  /** Targets Scipio built this run (new or changed VersionFile). */
  built: string[]
  buildSkipped: boolean
  buildExitCode?: number
  save?: SaveOutcome
  /** Wall time of the restore stage, of the Scipio build and of the save stage, when they ran. */
  restoreMs?: number
  buildMs?: number
  saveMs?: number
  scipioInstall?: ScipioInstall
  swiftpmCache?: SwiftpmCacheResult
  /** The keys of this run, for the package-keys and set-key outputs. */
  plan?: KeyPlan
  /** Why what was not restored was not (explain.ts). */
  explanation?: Explanation
  /** The run was cancelled (SIGINT or SIGTERM): what it says, and why the rest was not done. */
  cancelled?: string
  /** The scope the run read first (and wrote into), when it had one. */
  scope?: string
}

/** Every reason something was built or not restored: the explained misses, then restored targets Scipio rebuilt. */
export function missReasons(report: RunReport): MissReason[] {
  const reasons = [...(report.explanation?.reasons ?? []), ...rebuiltAfterRestore(report.restore, report.built)]
  const { scope } = report
  if (!scope) return reasons
  return reasons.map((r) => ({ ...r, text: `${r.text} (looked in scope ${scope}, then the shared cache)` }))
}

/** Where a restored framework came from, in a scoped run: its scope or the shared cache. */
function origin(report: RunReport, target: { result: string; scope?: string }): string {
  if (!report.scope || (target.result !== 'restored' && target.result !== 'available')) return ''
  return target.scope ? ` from scope ${target.scope}` : ' from the shared cache'
}

/** `N from scope pr-12, M from the shared cache`, for a scoped run's summary. */
function scopeText(report: RunReport): string | undefined {
  if (!report.scope) return undefined
  const restored = (report.restore?.targets ?? []).filter((t) => t.result === 'restored')
  const own = restored.filter((t) => t.scope !== undefined).length
  return (
    `Scope ${report.scope}: ${own} frameworks restored from this scope, ${restored.length - own} from the shared cache, ` +
    `${report.built.length} built${report.save ? `; uploads go to this scope only` : ''}.`
  )
}

/** miss-reasons, package-keys and set-key; empty values when the run stopped before its keys were known. */
export function setKeyOutputs(report: RunReport): void {
  core.setOutput(Outputs.MissReasons, redact(JSON.stringify(missReasonsOutput(missReasons(report)))))
  core.setOutput(
    Outputs.PackageKeys,
    JSON.stringify(Object.fromEntries((report.plan?.packages ?? []).map((p) => [p.pin.identity, p.packageKey]))),
  )
  core.setOutput(Outputs.SetKey, report.plan?.setKey ?? '')
}

/** What a cancelled run says it did before it stopped: the step's error and the summary's first line. */
export function cancelledText(cancelled: Error, report: RunReport): string {
  const why = `${cancelled.message[0]!.toUpperCase()}${cancelled.message.slice(1)}`
  return `${why}: it restored ${restoredTargets(report).length} frameworks, built ${report.built.length} and uploaded ${uploadedTargets(report).length} before it stopped.`
}

/** Restored and kept by Scipio: a framework Scipio rebuilt after its restore (another key) counts as built. */
function keptRestores(report: RunReport): NonNullable<RunReport['restore']>['targets'] {
  const built = new Set(report.built)
  return (report.restore?.targets ?? []).filter((t) => t.result === 'restored' && !built.has(t.targetName))
}

export function restoredTargets(report: RunReport): string[] {
  return keptRestores(report)
    .map((t) => t.targetName)
    .sort()
}

export function uploadedTargets(report: RunReport): string[] {
  return (report.save?.targets ?? [])
    .filter((t) => t.result === 'uploaded')
    .map((t) => t.targetName)
    .sort()
}

/** 'true' only when nothing had to be built; never empty. */
export function cacheHit(report: RunReport): boolean {
  // A build skipped because of misses (fail-on-cache-miss) is no hit.
  if (report.buildSkipped && report.restore && cacheMisses(report.restore).length > 0) return false
  const buildOk = report.buildSkipped || report.buildExitCode === 0
  return buildOk && report.built.length === 0
}

/** Why a step fails under `strict`: every cache error, redacted. */
export function strictFailure(problems: string[]): string {
  return redact(`strict: the cache had ${problems.length} errors: ${problems.join('; ')}`)
}

/** Why a step fails under `fail-on-cache-miss`. */
export function missFailure(misses: string[]): string {
  return `fail-on-cache-miss: ${misses.length} not in the cache: ${misses.join(', ')}.`
}

export function setOutputs(report: RunReport): void {
  const restored = restoredTargets(report)
  const uploaded = uploadedTargets(report)
  core.setOutput(Outputs.CacheHit, cacheHit(report) ? 'true' : 'false')
  core.setOutput(Outputs.Restored, JSON.stringify(restored))
  core.setOutput(Outputs.Built, JSON.stringify(report.built))
  core.setOutput(Outputs.Uploaded, JSON.stringify(uploaded))
  core.setOutput(Outputs.RestoredCount, String(restored.length))
  core.setOutput(Outputs.BuiltCount, String(report.built.length))
  core.setOutput(Outputs.UploadedCount, String(uploaded.length))
  setKeyOutputs(report)
}

export interface Totals {
  restored: number
  built: number
  uploaded: number
  bytesDownloaded: number
  bytesUploaded: number
  /** Absent when this run built nothing, so there is no build time per target to measure. */
  timeSavedMs?: number
  buildMsPerTarget?: number
}

/**
 * Counts and bytes of this run, and an estimate of the time the cache saved: the restored targets times the
 * average Scipio build time per target measured in this same run (the build stage's wall time over the
 * targets it built), minus the restore stage's wall time. Targets differ a lot in build time, so it is a
 * rough figure, and there is none when nothing was built here.
 */
export function totals(report: RunReport): Totals {
  const restoredRows = keptRestores(report)
  const uploadedRows = (report.save?.targets ?? []).filter((t) => t.result === 'uploaded')
  const sum = (rows: { bytes: number }[]) => rows.reduce((n, t) => n + t.bytes, 0)
  const result: Totals = {
    restored: restoredRows.length,
    built: report.built.length,
    uploaded: uploadedRows.length,
    // Bytes of every download, those Scipio then rebuilt included.
    bytesDownloaded: sum((report.restore?.targets ?? []).filter((t) => t.result === 'restored')),
    bytesUploaded: sum(uploadedRows),
  }
  if (report.buildMs !== undefined && report.built.length > 0) {
    result.buildMsPerTarget = Math.round(report.buildMs / report.built.length)
    result.timeSavedMs = Math.max(0, result.buildMsPerTarget * restoredRows.length - (report.restoreMs ?? 0))
  }
  return result
}

export function totalsText(report: RunReport): string {
  const t = totals(report)
  const avoided = avoidedBuildText(report.restore, report.restoreMs)
  const saved =
    t.restored === 0 && !avoided
      ? 'Nothing was restored, so no build time was saved.'
      : t.timeSavedMs === undefined
        ? (avoided ?? 'Time saved: not estimated (nothing was built in this run to measure a build time per target).')
        : `Estimated time saved: ${formatMs(t.timeSavedMs)} (${t.restored} restored × ${formatMs(t.buildMsPerTarget ?? 0)}, ` +
          `this run's average Scipio build time per target, minus the restore time).${avoided ? ` ${avoided}` : ''}`
  return `Downloaded ${formatBytes(t.bytesDownloaded)}, uploaded ${formatBytes(t.bytesUploaded)}. ${saved}`
}

function toolsText(report: RunReport): string | undefined {
  const parts: string[] = []
  if (report.scipioInstall)
    parts.push(`Scipio ${report.scipioInstall.version} from the ${report.scipioInstall.source}.`)
  if (report.swiftpmCache && report.swiftpmCache !== 'off')
    parts.push(`SwiftPM resolution cache: ${report.swiftpmCache}.`)
  return parts.length ? parts.join(' ') : undefined
}

/** The summary is HTML: target names and error texts must not become markup. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}

interface Row {
  target: string
  pkg: string
  result: string
  bytes: number
  ms: number
}

export function summaryRows(report: RunReport): Row[] {
  const rows = new Map<string, Row>()
  for (const t of report.restore?.targets ?? []) {
    rows.set(t.targetName, {
      target: t.targetName,
      pkg: t.package,
      result: t.result === 'missed' ? `missed (${t.reason ?? 'not stored'})` : `${t.result}${origin(report, t)}`,
      bytes: t.bytes,
      ms: t.ms,
    })
  }
  for (const name of report.built) {
    const row = rows.get(name)
    rows.set(name, { target: name, pkg: row?.pkg ?? '', result: 'built', bytes: 0, ms: 0 })
  }
  for (const t of report.save?.targets ?? []) {
    const row = rows.get(t.targetName)
    if (t.result === 'stored' && row) continue
    const result =
      t.result === 'failed'
        ? `upload failed (${t.reason ?? ''})`
        : t.result === 'uploaded' && row?.result === 'built'
          ? 'built, uploaded'
          : t.result
    rows.set(t.targetName, {
      target: t.targetName,
      pkg: t.package,
      result,
      bytes: t.bytes || row?.bytes || 0,
      ms: (row?.ms ?? 0) + t.ms,
    })
  }
  return [...rows.values()].sort((a, b) => (a.target < b.target ? -1 : 1))
}

export async function writeSummary(report: RunReport): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const rows = summaryRows(report)
  const restored = restoredTargets(report)
  const uploaded = uploadedTargets(report)
  const summary = core.summary.addHeading('Scipio S3 cache', 2)
  if (report.cancelled) summary.addRaw(`Cancelled: ${escapeHtml(report.cancelled)}`, true).addEOL()
  const skipped = report.cancelled ? '' : report.buildSkipped ? ' (build skipped: everything restored)' : ''
  summary.addRaw(
    `Restored ${restored.length}, built ${report.built.length}${skipped}, ` +
      `uploaded ${uploaded.length}. Cache hit: ${cacheHit(report)}.`,
    true,
  )
  summary.addEOL().addRaw(totalsText(report), true)
  const tools = toolsText(report)
  if (tools) summary.addEOL().addRaw(tools, true)
  const scoped = scopeText(report)
  if (scoped) summary.addEOL().addRaw(escapeHtml(scoped), true)
  const why = missReasons(report)
  if (why.length > 0) {
    summary.addHeading('Why frameworks were built', 3)
    summary.addList(reasonLines(why, report.plan?.packages.length ?? 0).map((line) => escapeHtml(redact(line))))
  }
  const dependents = cascadeLines(cascade(report.restore))
  if (dependents.length > 0) {
    summary.addHeading('Dependency cascade', 3)
    summary.addList(dependents.map((line) => escapeHtml(redact(line))))
  }
  if (rows.length > 0) {
    summary.addTable([
      [
        { data: 'Target', header: true },
        { data: 'Package', header: true },
        { data: 'Result', header: true },
        { data: 'Size', header: true },
        { data: 'Time', header: true },
      ],
      ...rows.map((r) => [
        escapeHtml(r.target),
        escapeHtml(r.pkg),
        escapeHtml(redact(r.result)),
        r.bytes ? formatBytes(r.bytes) : '',
        r.ms ? formatMs(r.ms) : '',
      ]),
    ])
  }
  await summary.write()
}
