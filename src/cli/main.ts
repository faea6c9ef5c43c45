import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { Inputs } from '../constants.js'
import { errorMessage, InputError, ProjectError } from '../errors.js'
import { readConfig, type S3Settings } from '../inputs/inputs.js'
import { planKeys } from '../keys/keys.js'
import type { Log } from '../log.js'
import { formatBytes } from '../report/report.js'
import { readResolvedFile } from '../keys/resolved.js'
import { redact, registerSecret } from '../secrets.js'
import { setUp } from '../setup/setup.js'
import { restoreStage, saveStage } from '../flow/stages.js'
import { cancellation, watchSignals } from '../flow/cancel.js'
import type { RestoredTarget } from '../restore/outcome.js'
import { S3Admin } from '../storage/s3-admin.js'
import { createStorage } from '../storage/index.js'
import { flagInputReader, helpText, parseCommandLine, UsageError, type Command, type FlagValues } from './args.js'
import { ProgressReporter } from './progress.js'
import {
  defaultOlderThanDays,
  describeFailures,
  describeSpared,
  executePrune,
  executeScopePrune,
  parseDays,
  planPrune,
  planScopePrune,
  pruneGuard,
  renderPrunePlan,
  renderScopePrunePlan,
  scopeNamesToKeep,
} from './prune.js'
import { executeRepack, planRepack, renderRepack } from './repack.js'
import { cacheStatus, explainStatus, onlyMissing, renderStatus } from './status.js'
import { Terminal, terminalLog } from './terminal.js'
import { recordRun } from '../records/write.js'
import { insights } from './insights.js'

export const ExitCode = { Ok: 0, Failure: 1, Usage: 2, Missing: 3 } as const

/** A cancelled restore or save exits as a shell reports a process ended by the signal: 128 + its number. */
export function cancelledExitCode(signal: string): number {
  return signal === 'SIGTERM' ? 143 : 130
}

/** The status for a command that returned `code`: a cancellation's, when the run was cancelled. */
function unlessCancelled(code: number): number {
  const cancelled = cancellation()
  return cancelled ? cancelledExitCode(cancelled.signalName) : code
}

/** Misses for one stop reason (a cancellation, a full disk, the time limit) as one line; the others one per target. */
function missLines(missed: RestoredTarget[]): string[] {
  const stopped = new Set(['cancelled', 'disk full', 'cache time limit reached'])
  const lines: string[] = []
  const byStop = new Map<string, string[]>()
  for (const t of missed) {
    const reason = t.reason ?? 'unknown reason'
    if (stopped.has(reason)) byStop.set(reason, [...(byStop.get(reason) ?? []), t.targetName])
    else lines.push(`Missed ${t.targetName} (${t.package}): ${reason}.`)
  }
  for (const [reason, targets] of byStop) lines.push(`Not restored (${reason}): ${targets.join(', ')}.`)
  return lines
}

export interface CliIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number }
  env: NodeJS.ProcessEnv
  cwd: string
}

interface Context {
  command: Command
  values: FlagValues
  io: CliIo
  terminal: Terminal
  log: Log
}

function print(io: CliIo, text: string): void {
  io.stdout.write(redact(text))
}

/** With a progress display, the stages report each archive they move to it through the log (an observer). */
export function withProgress(log: Log, terminal: Terminal, quiet: boolean): { log: Log; reporter?: ProgressReporter } {
  if (quiet) return { log }
  const reporter = new ProgressReporter(terminal)
  return { log: { ...log, transfer: reporter.transfer }, reporter }
}

async function restoreCommand(ctx: Context): Promise<number> {
  const setup = await setUp(flagInputReader('restore', ctx.values, ctx.io.cwd), ctx.log)
  const { log, reporter } = withProgress(ctx.log, ctx.terminal, ctx.values.quiet === true)
  const started = Date.now()
  const outcome = await restoreStage(setup, log).finally(() => reporter?.finish())
  const restoreMs = Date.now() - started
  const recorded = cancellation()
    ? undefined
    : recordRun(setup, { restore: outcome, built: [], buildSkipped: true, restoreMs }, 'cli', ctx.log)
  const count = (kind: string) => outcome.targets.filter((t) => t.result === kind)
  const restored = count('restored')
  const missed = count('missed')
  const bytes = restored.reduce((sum, t) => sum + t.bytes, 0)
  const lines = [
    `Restored ${restored.length} frameworks (${formatBytes(bytes)}), kept ${count('kept').length} already in place.`,
  ]
  if (outcome.packagesMissing.length) lines.push(`Not in the cache: ${outcome.packagesMissing.join(', ')}.`)
  lines.push(...missLines(missed))
  const cancelled = cancellation()
  if (cancelled) lines.push(`Cancelled (${cancelled.signalName}): nothing more was downloaded.`)
  if (outcome.complete) lines.push('Complete: a producer stored exactly this build, and all of it is in place.')
  print(ctx.io, `${lines.join('\n')}\n`)
  await recorded
  // The cache could not be read at all (restoreStage has warned why): a failure, whatever is missing.
  if (outcome.unavailable) return unlessCancelled(ExitCode.Failure)
  const somethingMissing = outcome.packagesMissing.length > 0 || missed.length > 0
  return unlessCancelled(somethingMissing && ctx.values['fail-on-missing'] === true ? ExitCode.Missing : ExitCode.Ok)
}

async function saveCommand(ctx: Context): Promise<number> {
  const setup = await setUp(flagInputReader('save', ctx.values, ctx.io.cwd), ctx.log)
  const { log, reporter } = withProgress(ctx.log, ctx.terminal, ctx.values.quiet === true)
  const buildSucceeded = ctx.values['build-succeeded'] === true
  const started = Date.now()
  const outcome = await saveStage(setup, log, buildSucceeded).finally(() => reporter?.finish())
  const saveMs = Date.now() - started
  const recorded = cancellation()
    ? undefined
    : recordRun(setup, { save: outcome, built: [], buildSkipped: true, saveMs }, 'cli', ctx.log)
  if (outcome.targets.length === 0 && outcome.problems.length > 0) {
    await recorded
    return unlessCancelled(ExitCode.Failure) // saveStage has already printed why
  }
  const of = (kind: string) => outcome.targets.filter((t) => t.result === kind)
  const uploaded = of('uploaded')
  const failed = of('failed')
  const bytes = uploaded.reduce((sum, t) => sum + t.bytes, 0)
  const lines = [
    `Uploaded ${uploaded.length} frameworks (${formatBytes(bytes)}); ${of('stored').length} were already stored; ${outcome.indexesWritten} indexes written.`,
  ]
  if (failed.length) lines.push(`Failed: ${failed.map((t) => t.targetName).join(', ')}.`)
  if (outcome.unmatched.length)
    lines.push(`Not uploaded (no pin in Package.resolved): ${outcome.unmatched.join(', ')}.`)
  const cancelled = cancellation()
  if (cancelled)
    lines.push(`Cancelled (${cancelled.signalName}): nothing more was uploaded, and no index lists what was not.`)
  else if (outcome.markedComplete) lines.push('Marked this build set complete.')
  else if (!buildSucceeded)
    lines.push('Not marked complete: pass --build-succeeded after a successful Scipio build to let consumers skip it.')
  print(ctx.io, `${lines.join('\n')}\n`)
  await recorded
  return unlessCancelled(failed.length > 0 ? ExitCode.Failure : ExitCode.Ok)
}

async function statusCommand(ctx: Context): Promise<number> {
  const setup = await setUp(flagInputReader('status', ctx.values, ctx.io.cwd), ctx.log)
  const found = await cacheStatus(setup)
  const full = ctx.values.explain === true ? await explainStatus(setup, found, ctx.log) : found
  const report = ctx.values.missing === true ? onlyMissing(full) : full
  print(ctx.io, ctx.values.json === true ? `${JSON.stringify(report, null, 2)}\n` : renderStatus(report, ctx.io.cwd))
  if (found.unavailable) {
    ctx.log.warning(`The cache is unavailable: ${found.unavailable}`)
    return ExitCode.Failure
  }
  return full.missing > 0 && ctx.values['fail-on-missing'] === true ? ExitCode.Missing : ExitCode.Ok
}

/**
 * The scopes `prune --scopes` keeps by name: those `--keep-scope` names; none with `--all`; undefined when neither
 * is given (only age decides). An empty `--keep-scope` without `--all` is refused: it is what
 * `--keep-scope "$(gh pr list …)"` gives when `gh` fails, and it would prune every open pull request's scope.
 */
function scopesToKeep(values: FlagValues): string[] | undefined {
  const given = values['keep-scope'] as string[] | undefined
  const names = given === undefined ? undefined : scopeNamesToKeep(given)
  if (values.all === true) return names ?? []
  if (names !== undefined && names.length === 0)
    throw new UsageError(
      '--keep-scope names no scope, so every scope would be pruned (an empty list is what a command substitution ' +
        'such as "$(gh pr list …)" gives when gh fails). Pass --all to prune every scope not named.',
    )
  return names
}

/** `prune --scopes`: whole scopes go; needs no Package.resolved, no Xcode, no Scipio (a scheduled job on Linux). */
async function pruneScopesCommand(ctx: Context): Promise<number> {
  const keep = scopesToKeep(ctx.values)
  const rawDays = ctx.values['older-than'] as string | undefined
  const olderThanDays = rawDays === undefined ? undefined : parseDays(rawDays, 0)
  if (olderThanDays === undefined && rawDays !== undefined)
    throw new UsageError(`--older-than: '${rawDays}' is not a number of days (for example 30, or 0).`)
  if (keep === undefined && olderThanDays === undefined)
    throw new UsageError(
      'prune --scopes needs --keep-scope (the scopes to keep, for example the open pull requests), --older-than DAYS, or --all.',
    )
  const config = readConfig(flagInputReader('prune', ctx.values, ctx.io.cwd), ctx.io.cwd)
  const settings = config.storage as S3Settings
  const admin = new S3Admin(settings)
  const plan = await planScopePrune({
    prefix: config.prefix,
    ...(keep ? { keep } : {}),
    ...(olderThanDays !== undefined ? { olderThanDays } : {}),
    now: new Date(),
    admin,
  })
  const remove = ctx.values.delete === true
  const result =
    remove && plan.candidates.length > 0
      ? await executeScopePrune(plan, admin, createStorage(config.storage))
      : { deleted: 0, failures: [], spared: [] }
  if (ctx.values.json === true) {
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { seen, order, ...shown } = plan
    const doc = {
      schema: 'scipio-s3-cache/prune-scopes/v1',
      bucket: settings.bucket,
      dryRun: !remove,
      ...shown,
      ...result,
    }
    print(ctx.io, `${JSON.stringify(doc, null, 2)}\n`)
  } else {
    let tail = ''
    if (plan.candidates.length > 0)
      tail = remove
        ? `Deleted ${result.deleted} of ${plan.candidates.length} objects.\n`
        : `Dry run: nothing was deleted. Run again with --delete to delete these scopes' ${plan.candidates.length} objects.\n`
    print(ctx.io, renderScopePrunePlan(plan, settings.bucket) + tail + describeSpared(result.spared))
  }
  if (result.failures.length > 0) {
    ctx.log.warning(`S3 refused to delete ${result.failures.length} objects:\n${describeFailures(result.failures)}`)
    return ExitCode.Failure
  }
  return ExitCode.Ok
}

async function pruneCommand(ctx: Context): Promise<number> {
  if (ctx.values.scopes === true) return pruneScopesCommand(ctx)
  if (ctx.values['keep-scope'] !== undefined) throw new UsageError('--keep-scope needs --scopes.')
  if (ctx.values.all === true) throw new UsageError('--all needs --scopes.')
  const olderThanDays = parseDays(ctx.values['older-than'] as string | undefined, defaultOlderThanDays)
  if (olderThanDays === undefined)
    throw new UsageError(
      `--older-than: '${String(ctx.values['older-than'])}' is not a number of days (for example 30, or 0).`,
    )
  const setup = await setUp(flagInputReader('prune', ctx.values, ctx.io.cwd), ctx.log)
  const { config, toolchain } = setup
  const settings = config.storage as S3Settings
  const manifest = await fs.readFile(path.join(config.packageDirectory, 'Package.swift'))
  const keepFiles = (ctx.values['keep-resolved'] as string[] | undefined) ?? []
  const plans = [setup.plan]
  for (const file of keepFiles) {
    const resolved = await readResolvedFile(path.resolve(ctx.io.cwd, file))
    plans.push(planKeys(config.prefix, resolved.pins, manifest, config.build, toolchain, config.keySalt))
  }
  const admin = new S3Admin(settings)
  const plan = await planPrune({
    prefix: config.prefix,
    plans,
    olderThanDays,
    now: new Date(),
    storage: setup.storage,
    admin,
  })
  const remove = ctx.values.delete === true
  const result =
    remove && plan.candidates.length > 0
      ? await executePrune(plan, admin, pruneGuard(plan, setup.storage, admin))
      : { deleted: 0, failures: [], spared: [] }
  if (ctx.values.json === true) {
    // eslint-disable-next-line @typescript-eslint/no-unused-vars
    const { seen, ...shown } = plan
    const doc = {
      schema: 'scipio-s3-cache/prune/v1',
      bucket: settings.bucket,
      dryRun: !remove,
      olderThanDays,
      keptResolvedFiles: plans.length,
      ...shown,
      ...result,
    }
    print(ctx.io, `${JSON.stringify(doc, null, 2)}\n`)
  } else {
    const bytes = plan.candidates.reduce((sum, c) => sum + c.size, 0)
    let tail = ''
    if (plan.candidates.length > 0) {
      tail = remove
        ? `Deleted ${result.deleted} of ${plan.candidates.length} objects.\n${describeSpared(result.spared)}`
        : `Dry run: nothing was deleted. Run again with --delete to delete these ${plan.candidates.length} objects (${formatBytes(bytes)}).\n`
    }
    print(ctx.io, renderPrunePlan(plan, settings.bucket, plans.length, olderThanDays) + tail)
  }
  if (result.failures.length > 0) {
    ctx.log.warning(`S3 refused to delete ${result.failures.length} objects:\n${describeFailures(result.failures)}`)
    return ExitCode.Failure
  }
  return ExitCode.Ok
}

/** `repack`: needs no Package.resolved, no Xcode, no Scipio (a scheduled job on Linux, like `prune --scopes`). */
async function repackCommand(ctx: Context): Promise<number> {
  const olderThanDays = parseDays(ctx.values['older-than'] as string | undefined, 7)
  if (olderThanDays === undefined)
    throw new UsageError(
      `--older-than: '${String(ctx.values['older-than'])}' is not a number of days (for example 7, or 0).`,
    )
  const config = readConfig(flagInputReader('repack', ctx.values, ctx.io.cwd), ctx.io.cwd)
  const settings = config.storage as S3Settings
  const input = {
    prefix: config.prefix,
    storage: createStorage(settings),
    olderThanDays,
    convertEarlier: ctx.values['convert-earlier-formats'] === true,
    now: new Date(),
    publicRead: config.shouldPublish,
    log: ctx.log,
  }
  const plan = await planRepack(input)
  const results = ctx.values['dry-run'] === true ? undefined : await executeRepack(plan, input)
  print(ctx.io, renderRepack(plan, results, settings.bucket, config.prefix))
  return results?.some((r) => r.failed) ? ExitCode.Failure : ExitCode.Ok
}

async function insightsCommand(ctx: Context): Promise<number> {
  const complete = await insights({
    values: ctx.values,
    cwd: ctx.io.cwd,
    terminal: ctx.terminal,
    log: ctx.log,
    print: (text) => print(ctx.io, text),
  })
  return complete ? ExitCode.Ok : ExitCode.Failure
}

const handlers: Record<Command, (ctx: Context) => Promise<number>> = {
  restore: restoreCommand,
  save: saveCommand,
  status: statusCommand,
  prune: pruneCommand,
  repack: repackCommand,
  insights: insightsCommand,
}

/** Uploading and housekeeping need the bucket itself; say so in the command line's terms. */
function checkBucket(command: Command, values: FlagValues): void {
  if ((command === 'save' || command === 'prune' || command === 'repack') && !values[Inputs.Bucket]) {
    throw new UsageError(
      `${command} needs --bucket (and AWS credentials from the environment or a profile); a public URL is read-only.`,
    )
  }
  if (command === 'insights' && !values[Inputs.Bucket]) {
    throw new UsageError(
      'insights needs --bucket (and AWS credentials that may list and read the run records); a public URL cannot list.',
    )
  }
}

function cliMessage(error: unknown): string {
  // Inputs are flags here: "Input 'bucket': ..." reads "--bucket: ...".
  let message =
    error instanceof InputError
      ? `--${error.input}: ${errorMessage(error).replace(/^Input '[^']+': /, '')}`
      : errorMessage(error)
  if (/no AWS credentials were found/.test(message)) {
    message +=
      ' On the command line: export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, set AWS_PROFILE (or --profile), or read anonymously with --public-url.'
  }
  return redact(message)
}

export async function main(argv: string[], io: CliIo): Promise<number> {
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
    registerSecret(io.env[name] ?? '')
  const terminal = new Terminal(io.stderr)
  let command: Command | undefined
  try {
    const parsed = parseCommandLine(argv)
    command = parsed.command
    if (parsed.help || !command) {
      print(io, helpText(command))
      return ExitCode.Ok
    }
    checkBucket(command, parsed.values)
    if (typeof parsed.values.profile === 'string' && parsed.values.profile) io.env.AWS_PROFILE = parsed.values.profile
    const log = terminalLog(terminal, { verbose: parsed.values.verbose === true, quiet: parsed.values.quiet === true })
    // Only the transfers stop cleanly on a signal; status and prune end at once, as any command does.
    const signals = command === 'restore' || command === 'save' ? watchSignals(cancelledExitCode) : undefined
    try {
      return await handlers[command]({ command, values: parsed.values, io, terminal, log })
    } finally {
      if (!cancellation()) signals?.stop()
    }
  } catch (error) {
    terminal.clearStatus()
    const usage = error instanceof UsageError
    terminal.line(`error: ${cliMessage(error)}`)
    if (usage) terminal.line(`Run 'scipio-s3-cache ${command ?? ''}${command ? ' ' : ''}--help' for usage.`)
    return unlessCancelled(
      usage || error instanceof InputError || error instanceof ProjectError ? ExitCode.Usage : ExitCode.Failure,
    )
  }
}
