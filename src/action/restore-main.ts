import * as core from '@actions/core'
import { failStep } from '../annotations.js'
import { Inputs, Outputs } from '../constants.js'
import { errorMessage } from '../errors.js'
import { explainStage, nothingHitWarning } from '../explain/explain.js'
import { actionInputReader, readBoolean, withMode, type InputReader } from '../inputs/inputs.js'
import { actionLog, type Log } from '../log.js'
import {
  cancelledText,
  missFailure,
  restoredTargets,
  setKeyOutputs,
  strictFailure,
  writeSummary,
  type RunReport,
} from '../report/report.js'
import { protectSecrets, setUp } from '../setup/setup.js'
import { cacheMisses } from '../restore/outcome.js'
import { restoreStage } from '../flow/stages.js'
import { cancellation, runCancellable } from '../flow/cancel.js'
import { recordRun } from '../records/write.js'

function setRestoreOutputs(misses: string[], restored: string[], hit: boolean): void {
  core.setOutput(Outputs.CacheHit, hit ? 'true' : 'false')
  core.setOutput(Outputs.Restored, JSON.stringify(restored))
  core.setOutput(Outputs.RestoredCount, String(restored.length))
  core.setOutput(Outputs.Missing, JSON.stringify(misses))
}

/** restore/action.yml: restore (or only look up) what the cache holds; no build, no upload. */
export async function runRestore(read: InputReader = actionInputReader, log: Log = actionLog): Promise<void> {
  await runCancellable(() => restoreFlow(read, log))
}

async function restoreFlow(read: InputReader, log: Log): Promise<void> {
  protectSecrets(read)
  try {
    const reader = withMode(read, 'consumer')
    const lookupOnly = readBoolean(reader, Inputs.LookupOnly, false)
    const setup = await setUp(reader, log)
    const started = Date.now()
    const outcome = await restoreStage(setup, log, lookupOnly)
    const report: RunReport = {
      restore: outcome,
      built: [],
      buildSkipped: true,
      plan: setup.plan,
      restoreMs: Date.now() - started,
      ...(setup.config.scope !== undefined ? { scope: setup.config.scope } : {}),
    }
    const misses = cacheMisses(outcome)
    const cancelled = cancellation()
    if (cancelled) {
      report.cancelled = cancelledText(cancelled, report)
      setRestoreOutputs(misses, restoredTargets(report), false)
      setKeyOutputs(report)
      await writeSummary(report).catch((error: unknown) =>
        log.warning(`Could not write the job summary: ${errorMessage(error)}`),
      )
      return core.setFailed(report.cancelled)
    }
    report.explanation = await explainStage(setup, outcome, log)
    const nothingHit = nothingHitWarning(
      outcome,
      report.explanation,
      setup.plan.packages.length,
      { count: misses.length, what: 'packages or targets missing' },
      false,
    )
    if (nothingHit) log.warning(nothingHit)
    // A lookup moves nothing: no record.
    const recorded = lookupOnly ? undefined : recordRun(setup, report, 'restore', log)
    setRestoreOutputs(misses, restoredTargets(report), misses.length === 0)
    setKeyOutputs(report)
    await writeSummary(report).catch((error: unknown) =>
      log.warning(`Could not write the job summary: ${errorMessage(error)}`),
    )
    if (misses.length > 0 && setup.config.failOnCacheMiss) {
      core.setFailed(missFailure(misses))
    } else if (setup.config.strict && outcome.problems.length > 0) {
      core.setFailed(strictFailure(outcome.problems))
    }
    await recorded
  } catch (error) {
    setRestoreOutputs([], [], false)
    setKeyOutputs({ built: [], buildSkipped: true })
    failStep(error)
  }
}
