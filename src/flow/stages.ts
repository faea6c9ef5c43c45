import { preferredFormat } from '../archive/archive.js'
import { builtTargets, runScipio, scipioArgs } from '../scipio/build.js'
import { errorMessage } from '../errors.js'
import { scanOutput } from '../keys/frameworks.js'
import type { Log } from '../log.js'
import { PinRecords } from '../save/pin-records.js'
import { restore } from '../restore/restore.js'
import type { RestoreOutcome } from '../restore/outcome.js'
import { save, type SaveOutcome } from '../save/save.js'
import { ScipioS3StorageObjects } from '../interop/scipio-s3-storage.js'
import type { RunSetup } from '../setup/setup.js'
import { sweepLeftovers } from '../archive/owned-folders.js'
import { stageSignal } from './cancel.js'
import * as os from 'node:os'
import { sharedLayout } from '../bucket/layout.js'

/** The three stages as the action and both sub-actions call them, each logged in its own group. */

export async function restoreStage(setup: RunSetup, log: Log, lookupOnly = false): Promise<RestoreOutcome> {
  const { config, storage, plan } = setup
  const outcome = await log.group(
    lookupOnly ? 'Look up frameworks in the cache' : 'Restore frameworks from the cache',
    () =>
      restore({
        storage,
        plan,
        prefix: config.prefix,
        outputDirectory: config.outputDirectory,
        concurrency: config.concurrency,
        log,
        stallTimeoutMs: config.stallTimeoutMs,
        signal: stageSignal(config.cacheTimeoutMs),
        lookupOnly,
        ...(setup.scope ? { scope: setup.scope } : {}),
      }),
  )
  const count = (kind: string) => outcome.targets.filter((t) => t.result === kind).length
  log.info(
    lookupOnly
      ? `${count('available')} frameworks stored, ${count('kept')} already in place, ${count('missed')} missing; ${outcome.packagesMissing.length} packages not in the cache.`
      : `Restored ${count('restored')} frameworks, kept ${count('kept')} already in place; ${outcome.packagesMissing.length} packages not in the cache.`,
  )
  return outcome
}

export async function buildStage(setup: RunSetup, log: Log): Promise<{ exitCode: number; built: string[] }> {
  const { config, toolchain } = setup
  const before = await scanOutput(config.outputDirectory)
  const exitCode = await log.group('Build with Scipio', () => runScipio(toolchain.scipioPath, scipioArgs(config)))
  const built = builtTargets(before, await scanOutput(config.outputDirectory))
  log.info(`Scipio exited with ${exitCode}; built ${built.length} frameworks.`)
  return { exitCode, built }
}

/** Never throws: a cache fault while saving is a warning, and the step's outcome stays the build's. */
export async function saveStage(
  setup: RunSetup,
  log: Log,
  buildSucceeded: boolean,
  restored?: RestoreOutcome,
  buildMs?: ReadonlyMap<string, number>,
): Promise<SaveOutcome> {
  const { config, storage, plan } = setup
  const signal = stageSignal(config.cacheTimeoutMs)
  // A scoped run writes into its scope only; the shared cache is read, never written.
  const target = setup.scope ?? sharedLayout(config.prefix, plan)
  const title = setup.scope ? `Upload frameworks to scope '${setup.scope.scope}'` : 'Upload frameworks to the cache'
  return log.group(title, async () => {
    await sweepTemporaryFolders(log)
    return save({
      storage,
      plan: target.plan,
      prefix: target.prefix,
      ...(setup.scope ? { shared: sharedLayout(config.prefix, plan) } : {}),
      outputDirectory: config.outputDirectory,
      packageDirectory: config.packageDirectory,
      publicRead: config.shouldPublish,
      concurrency: config.concurrency,
      format: preferredFormat(),
      buildSucceeded,
      ...(restored ? { restored } : {}),
      log,
      signal,
      ...(config.scipioS3StorageObjects
        ? {
            scipioS3Storage: new ScipioS3StorageObjects({
              storage,
              prefix: config.prefix,
              outputDirectory: config.outputDirectory,
              publish: config.shouldPublish,
              log,
              signal,
            }),
          }
        : {}),
      ...(buildMs ? { buildMs } : {}),
      pinRecords: new PinRecords(setup, log, signal, target.prefix),
    }).catch((error: unknown): SaveOutcome => {
      const problem = `Uploading to the cache failed: ${errorMessage(error)}`
      log.warning(problem)
      return { targets: [], unmatched: [], indexesWritten: 0, markedComplete: false, problems: [problem] }
    })
  })
}

/** The folders where a killed save packed its archives (RUNNER_TEMP, or the system's temporary folder). */
async function sweepTemporaryFolders(log: Log): Promise<void> {
  const dirs = [...new Set([process.env.RUNNER_TEMP || os.tmpdir(), os.tmpdir()])]
  for (const dir of dirs) {
    const removed = await sweepLeftovers(dir)
    if (removed.length > 0)
      log.info(`Removed ${removed.length} temporary folders an interrupted run left in ${dir}: ${removed.join(', ')}.`)
  }
}
