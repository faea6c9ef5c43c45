import * as core from '@actions/core'
import { errorMessage } from './errors.js'
import { actionInputReader, type InputReader } from './inputs.js'
import { actionLog, type Log } from './log.js'
import { cacheHit, setOutputs, writeSummary, type RunReport } from './report.js'
import { redact } from './secrets.js'
import { protectSecrets, setUp } from './setup.js'
import { buildStage, restoreStage, saveStage } from './stages.js'

/** The whole flow: inputs → keys → restore → build → save → report. */
export async function run(read: InputReader = actionInputReader, log: Log = actionLog): Promise<void> {
  protectSecrets(read)
  const report: RunReport = { built: [], buildSkipped: false }
  try {
    const setup = await setUp(read, log)
    const { config } = setup

    if (config.consume) report.restore = await restoreStage(setup, log)

    if (report.restore?.complete) {
      report.buildSkipped = true
      log.info('Every framework of this exact build was restored and a producer marked it complete: skipping the Scipio build.')
    } else {
      const build = await buildStage(setup, log)
      report.buildExitCode = build.exitCode
      report.built = build.built
    }
    const buildSucceeded = report.buildSkipped || report.buildExitCode === 0

    if (config.produce) {
      const saved = await saveStage(setup, log, buildSucceeded, report.restore)
      if (saved) report.save = saved
    }

    setOutputs(report)
    await writeSummary(report).catch((error: unknown) => log.warning(`Could not write the job summary: ${errorMessage(error)}`))
    if (!buildSucceeded) {
      core.setFailed(`Scipio failed with exit code ${report.buildExitCode}.${config.produce ? ' The frameworks it did build were uploaded.' : ''}`)
    } else {
      log.info(`Done. Cache hit: ${cacheHit(report)}.`)
    }
  } catch (error) {
    setOutputs(report)
    core.setFailed(redact(errorMessage(error)))
  }
}
