import * as core from '@actions/core'
import { failStep } from '../annotations.js'
import { Inputs, Outputs } from '../constants.js'
import { errorMessage } from '../errors.js'
import { actionInputReader, readChoice, withMode, type InputReader } from '../inputs/inputs.js'
import { actionLog, type Log } from '../log.js'
import { cancelledText, strictFailure, uploadedTargets, writeSummary, type RunReport } from '../report/report.js'
import { protectSecrets, setUp } from '../setup/setup.js'
import { saveStage } from '../flow/stages.js'
import { cancellation, runCancellable } from '../flow/cancel.js'
import { uploadRefusal } from './trust.js'
import { recordRun } from '../records/write.js'

function setSaveOutputs(uploaded: string[]): void {
  core.setOutput(Outputs.Uploaded, JSON.stringify(uploaded))
  core.setOutput(Outputs.UploadedCount, String(uploaded.length))
}

/**
 * save/action.yml: upload every framework in the output folder that the cache lacks. `build-outcome` (by default
 * the job's status) says whether the build before it succeeded: only then does it record the packages that yield
 * no framework and mark the set complete, as the main action does after a successful build.
 */
export async function runSave(read: InputReader = actionInputReader, log: Log = actionLog): Promise<void> {
  await runCancellable(() => saveFlow(read, log))
}

/** `build-outcome`: a job's status or a step's outcome; anything but success (or nothing) is no success. */
function buildSucceeded(read: InputReader): boolean {
  const outcomes = ['success', 'failure', 'cancelled', 'skipped'] as const
  return readChoice(read, Inputs.BuildOutcome, outcomes, 'failure') === 'success'
}

async function saveFlow(read: InputReader, log: Log): Promise<void> {
  protectSecrets(read)
  try {
    const setup = await setUp(withMode(read, 'producer'), log)
    const refusal = uploadRefusal(setup.config)
    if (refusal) {
      if (refusal.expected) log.info(refusal.message)
      else log.warning(refusal.message)
      setSaveOutputs([])
      return
    }
    const started = Date.now()
    const saved = await saveStage(setup, log, buildSucceeded(read))
    const report: RunReport = { built: [], buildSkipped: true, save: saved, saveMs: Date.now() - started }
    const cancelled = cancellation()
    if (cancelled) report.cancelled = cancelledText(cancelled, report)
    const recorded = cancelled ? undefined : recordRun(setup, report, 'save', log)
    setSaveOutputs(uploadedTargets(report))
    await writeSummary(report).catch((error: unknown) =>
      log.warning(`Could not write the job summary: ${errorMessage(error)}`),
    )
    if (report.cancelled) core.setFailed(report.cancelled)
    else if (setup.config.strict && saved.problems.length > 0) {
      core.setFailed(strictFailure(saved.problems))
    }
    await recorded
  } catch (error) {
    setSaveOutputs([])
    failStep(error)
  }
}
