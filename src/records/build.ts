import { randomBytes } from 'node:crypto'
import { Formats } from '../constants.js'
import { safeText } from '../bucket/pin-record.js'
import type { Toolchain } from '../keys/toolchain.js'
import { restoredTargets, totals, uploadedTargets, type RunReport } from '../report/report.js'
import { avoidedBuild } from '../report/time-saved.js'
import { cacheMisses } from '../restore/outcome.js'
import { redact } from '../secrets.js'
import { classifyMisses, countReasons } from './reasons.js'
import { recordLimits, type RecordMode, type RecordVia, type RunRecord } from './record.js'

/** What a record is made of: the run's report, and what the run knows about where it ran. */
export interface RunFacts {
  via: RecordVia
  report: RunReport
  toolchain: Pick<Toolchain, 'xcodeVersion' | 'xcodeBuildVersion' | 'scipioSha256'>
  /** The release `scipio-version` installed, when it did. */
  scipioVersion?: string
  /** The run's scope, when it had one. */
  scope?: string
  /** When the run ended: the record's time and day. */
  time: Date
  /** The only variables read: GITHUB_REPOSITORY, _WORKFLOW, _EVENT_NAME, _HEAD_REF, _REF_NAME, RUNNER_OS, _ARCH. */
  env: NodeJS.ProcessEnv
}

/** What the run did: restored (a restore ran), uploaded (a save ran), or both. */
export function modeOf(report: RunReport): RecordMode {
  if (report.restore && report.save) return 'consumer,producer'
  return report.save ? 'producer' : 'consumer'
}

const osNames: Record<string, string> = { darwin: 'macOS', linux: 'Linux', win32: 'Windows' }
const archNames: Record<string, string> = { arm64: 'ARM64', x64: 'X64', ia32: 'X86', arm: 'ARM' }

/** RUNNER_OS and RUNNER_ARCH on a runner; elsewhere the same names for this machine. */
function runnerOf(env: NodeJS.ProcessEnv): RunRecord['runner'] {
  const os = env.RUNNER_OS || osNames[process.platform] || process.platform
  const arch = env.RUNNER_ARCH || archNames[process.arch] || process.arch
  return { os: safeText(os, recordLimits.shortText), arch: safeText(arch, recordLimits.shortText) }
}

/** A text for the record: redacted, only safe characters, bounded; undefined when empty. */
function field(value: string | undefined, max: number = recordLimits.text): string | undefined {
  const clean = value ? safeText(redact(value), max) : ''
  return clean === '' ? undefined : clean
}

function defined<T extends object>(fields: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>
  }
}

export function buildRecord(facts: RunFacts): RunRecord {
  const { report, env, toolchain } = facts
  const misses = report.restore ? classifyMisses(report.restore, report.explanation) : []
  const sums = totals(report)
  const saved = avoidedBuild(report.restore)
  const texts = defined({
    repository: field(env.GITHUB_REPOSITORY),
    workflow: field(env.GITHUB_WORKFLOW),
    event: field(env.GITHUB_EVENT_NAME, recordLimits.shortText),
    ref: field(env.GITHUB_HEAD_REF || env.GITHUB_REF_NAME),
    scope: field(facts.scope, recordLimits.shortText),
    xcode: field(
      toolchain.xcodeVersion ? `${toolchain.xcodeVersion} (${toolchain.xcodeBuildVersion})` : undefined,
      recordLimits.shortText,
    ),
    scipio: field(
      facts.scipioVersion ?? (toolchain.scipioSha256 ? `sha256:${toolchain.scipioSha256.slice(0, 12)}` : undefined),
      recordLimits.shortText,
    ),
  })
  const misnamed = misses.map((m) =>
    'target' in m
      ? { target: safeText(m.target, recordLimits.text), reason: m.reason }
      : { package: safeText(m.package, recordLimits.text), reason: m.reason },
  )
  return {
    schema: Formats.runRecord,
    time: facts.time.toISOString(),
    via: facts.via,
    mode: modeOf(report),
    ...texts,
    runner: runnerOf(env),
    counts: {
      restored: restoredTargets(report).length,
      kept: (report.restore?.targets ?? []).filter((t) => t.result === 'kept').length,
      built: report.built.length,
      missed: report.restore ? cacheMisses(report.restore).length : 0,
      uploaded: uploadedTargets(report).length,
    },
    reasons: countReasons(misses),
    misses: misnamed,
    bytes: { down: sums.bytesDownloaded, up: sums.bytesUploaded },
    ms: defined({ restore: report.restoreMs, build: report.buildMs, save: report.saveMs }),
    ...(saved.measured > 0 ? { savedMs: saved.avoidedMs } : {}),
  }
}

/** Letters, digits, '_' and '-' only, at most `max`: a part of a key. */
function keyPart(value: string | undefined, fallback: string, max = 40): string {
  const clean = (value ?? '').replace(/[^A-Za-z0-9_-]/g, '_').slice(0, max)
  return clean || fallback
}

/**
 * The record's name: `<run id>-<attempt>-<job>-<via>-<random>`. The run id and attempt keep a re-run from
 * colliding with its first attempt; the random part keeps apart the jobs of one matrix (one job id) and two
 * steps of one job.
 */
export function recordName(via: RecordVia, env: NodeJS.ProcessEnv, random: string = randomBytes(4).toString('hex')) {
  return [
    keyPart(env.GITHUB_RUN_ID, 'local'),
    keyPart(env.GITHUB_RUN_ATTEMPT, '0'),
    keyPart(env.GITHUB_JOB, 'none'),
    via,
    random,
  ].join('-')
}
