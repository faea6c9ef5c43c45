import * as core from '@actions/core'
import { failStep } from '../annotations.js'
import { perTargetBuildMs } from '../bucket/build-time.js'
import { avoidedBuildText } from '../report/time-saved.js'
import { errorMessage } from '../errors.js'
import { explainStage, nothingHitWarning } from '../explain/explain.js'
import { actionInputReader, type InputReader } from '../inputs/inputs.js'
import { actionLog, type Log } from '../log.js'
import { cacheHit, missFailure, setOutputs, strictFailure, writeSummary, type RunReport } from '../report/report.js'
import { protectSecrets, setUp } from '../setup/setup.js'
import { cacheMisses } from '../restore/outcome.js'
import { buildStage, restoreStage, saveStage } from '../flow/stages.js'
import { restoreSwiftpmCache, saveSwiftpmCache, swiftpmCacheResult } from '../scipio/swiftpm-cache.js'
import { uploadRefusal } from './trust.js'
import { cancellation, runCancellable, untilCancelled } from '../flow/cancel.js'
import { cancelledText } from '../report/report.js'
import { recordRun } from '../records/write.js'

/**
 * The whole flow: inputs → keys → restore → build → save → report. Cancelled (SIGINT, SIGTERM), it stops where it
 * is, writes the outputs and summary of what it did, fails the step and exits (flow/cancel.ts).
 */
export async function run(read: InputReader = actionInputReader, log: Log = actionLog): Promise<void> {
  await runCancellable(() => runFlow(read, log))
}

/** Outputs, summary and a failed step for a cancelled run: what it did before it stopped. */
async function stopCancelled(report: RunReport, log: Log): Promise<void> {
  report.cancelled = cancelledText(cancellation()!, report)
  setOutputs(report)
  await writeSummary(report).catch((error: unknown) =>
    log.warning(`Could not write the job summary: ${errorMessage(error)}`),
  )
  core.setFailed(report.cancelled)
}

async function runFlow(read: InputReader, log: Log): Promise<void> {
  protectSecrets(read)
  const report: RunReport = { built: [], buildSkipped: false }
  try {
    const setup = await setUp(read, log)
    const { config } = setup
    if (setup.scipioInstall) report.scipioInstall = setup.scipioInstall
    report.plan = setup.plan
    if (config.scope !== undefined) report.scope = config.scope
    const refusal = config.produce ? uploadRefusal(config) : undefined
    const produce = config.produce && !refusal
    if (refusal?.expected) log.info(refusal.message)
    else if (refusal) log.warning(refusal.message)

    const restoreStarted = Date.now()
    if (config.consume || (config.produce && !produce)) report.restore = await restoreStage(setup, log)
    report.restoreMs = Date.now() - restoreStarted
    if (cancellation()) return await stopCancelled(report, log)
    if (report.restore) report.explanation = await explainStage(setup, report.restore, log)

    if (report.restore && config.failOnCacheMiss) {
      const misses = cacheMisses(report.restore)
      if (misses.length > 0) {
        report.buildSkipped = true
        const recorded = recordRun(setup, report, 'action', log)
        setOutputs(report)
        await writeSummary(report).catch(() => undefined)
        core.setFailed(`${missFailure(misses)} Nothing was built.`)
        await recorded
        return
      }
    }

    if (report.restore?.complete) {
      report.buildSkipped = true
      log.info(
        'Every framework of this exact build was restored and a producer marked it complete: skipping the Scipio build.',
      )
    } else {
      const swiftpm = setup.cacheSwiftpm
        ? await restoreSwiftpmCache(config.packageDirectory, setup.resolved.path, setup.cache, log)
        : undefined
      const buildStarted = Date.now()
      // Scipio gets the signal as well (it is in the step's process group); the step does not wait for it.
      const build = await untilCancelled(buildStage(setup, log))
      if (!build) return await stopCancelled(report, log)
      report.buildMs = Date.now() - buildStarted
      report.buildExitCode = build.exitCode
      report.built = build.built
      report.swiftpmCache = swiftpmCacheResult(swiftpm)
      if (swiftpm) await saveSwiftpmCache(swiftpm, build.exitCode === 0, setup.cache, log)
    }
    if (cancellation()) return await stopCancelled(report, log)
    const buildSucceeded = report.buildSkipped || report.buildExitCode === 0
    const nothingHit = nothingHitWarning(
      report.restore,
      report.explanation,
      setup.plan.packages.length,
      { count: report.built.length, what: 'frameworks built' },
      produce,
    )
    if (nothingHit) log.warning(nothingHit)

    if (produce) {
      const saveStarted = Date.now()
      report.save = await saveStage(
        setup,
        log,
        buildSucceeded,
        report.restore,
        perTargetBuildMs(report.built, report.buildMs),
      )
      report.saveMs = Date.now() - saveStarted
    }

    if (cancellation()) return await stopCancelled(report, log)
    const recorded = recordRun(setup, report, 'action', log)
    setOutputs(report)
    await writeSummary(report).catch((error: unknown) =>
      log.warning(`Could not write the job summary: ${errorMessage(error)}`),
    )
    const problems = [...(report.restore?.problems ?? []), ...(report.save?.problems ?? [])]
    if (!buildSucceeded) {
      core.setFailed(
        `Scipio failed with exit code ${report.buildExitCode}.${produce ? ' The frameworks it did build were uploaded.' : ''}`,
      )
    } else if (config.strict && problems.length > 0) {
      core.setFailed(strictFailure(problems))
    } else {
      const avoided = avoidedBuildText(report.restore, report.restoreMs)
      log.info(`Done. Cache hit: ${cacheHit(report)}.${avoided ? ` ${avoided}` : ''}`)
    }
    await recorded
  } catch (error) {
    setOutputs(report)
    failStep(error)
  }
}
