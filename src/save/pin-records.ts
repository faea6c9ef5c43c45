import pLimit from 'p-limit'
import { describeKeyInputs, recordPackageKey, type RecordContext } from '../bucket/pin-record.js'
import { errorMessage } from '../errors.js'
import type { BuildOptions } from '../inputs/inputs.js'
import type { PackagePlan } from '../keys/keys.js'
import type { Toolchain } from '../keys/toolchain.js'
import type { Log } from '../log.js'
import type { RunSetup } from '../setup/setup.js'
import type { SaveOutcome } from './save.js'

/** After a save: records every package whose index is stored now (written, or confirmed unchanged); returns the outcome. */
export async function recordSavedPins(setup: RunSetup, outcome: SaveOutcome, log: Log): Promise<SaveOutcome> {
  const { config, plan, storage, toolchain } = setup
  const indexed = plan.packages.filter((p) => outcome.indexed?.includes(p.packageKey))
  const signal = AbortSignal.timeout(config.cacheTimeoutMs)
  const ctx = {
    storage,
    prefix: config.prefix,
    publicRead: config.shouldPublish,
    build: config.build,
    toolchain,
    salt: config.keySalt,
    concurrency: config.concurrency,
    log,
    signal,
  }
  await recordStoredPins(ctx, indexed)
  return outcome
}

/**
 * Adds every package whose index is now stored to its pin's record. Never throws; a failure
 * costs consumers their explanation only, so it is one warning, not a cache error for `strict`.
 */
export async function recordStoredPins(
  ctx: RecordContext & { build: BuildOptions; toolchain: Toolchain; salt: string; concurrency: number; log: Log },
  packages: PackagePlan[],
): Promise<number> {
  const limit = pLimit(ctx.concurrency)
  const failures: string[] = []
  const written = await Promise.all(
    packages.map((pkg) =>
      limit(async () => {
        try {
          return await recordPackageKey(
            ctx,
            pkg.pin,
            pkg.packageKey,
            describeKeyInputs(pkg.pin, ctx.build, ctx.toolchain, ctx.salt),
          )
        } catch (error) {
          failures.push(`${pkg.pin.identity}: ${errorMessage(error)}`)
          return false
        }
      }),
    ),
  )
  if (failures.length > 0) {
    ctx.log.warning(
      `Could not update ${failures.length} pin records (consumers lose the explanation of their misses, nothing else): ${failures.slice(0, 3).join('; ')}`,
    )
  }
  const count = written.filter(Boolean).length
  if (count > 0)
    ctx.log.info(
      `Recorded ${count} package keys in their pin records (what consumers compare against to explain a miss).`,
    )
  return count
}
