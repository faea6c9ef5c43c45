import { parseCompleteMarker, parseIndex, type PackageIndex } from '../bucket/cache-index.js'
import { errorMessage, StorageError } from '../errors.js'
import { type PackagePlan } from '../keys/keys.js'
import { defaultRetryPolicy, withRetry } from '../retry.js'
import { sharedLayout, type Layout } from '../bucket/layout.js'
import { layerIndexes } from '../bucket/layers.js'
import { getJson } from '../storage/index.js'
import { parseSetManifest } from '../bucket/set-manifest.js'
import { unlessRefused } from '../storage/refusals.js'
import { type Breaker } from './breaker.js'
import { type RestoreContext, layoutsOf, answerWithin, interruptible } from './context.js'
import { isRetryableDownload } from './download.js'

/** The small reads that say what is stored: package indexes and completion markers, in every layout read. */

async function readIndex(
  ctx: RestoreContext,
  pkg: PackagePlan,
  breaker: Breaker,
  problems: string[],
  layout: Layout = sharedLayout(ctx.prefix, ctx.plan),
): Promise<PackageIndex | undefined> {
  if (breaker.error || ctx.signal?.aborted) return undefined
  try {
    const raw = await withRetry(
      interruptible(ctx.retry ?? defaultRetryPolicy, ctx.signal),
      (e) => !(e instanceof StorageError && e.fatal) && isRetryableDownload(e),
      () =>
        answerWithin(ctx.stallTimeoutMs ?? 60_000, ctx.signal, (signal) =>
          // A refused read is a miss for this package: its index may simply not exist yet (storage/refusals.ts).
          unlessRefused(() => getJson(ctx.storage, pkg.indexKey, signal), breaker.reads),
        ),
    )
    if (raw === undefined) return undefined
    return parseIndex(raw, layout.archivePrefixes, pkg.packageKey)
  } catch (error) {
    if (breaker.trip(error, ctx.log) || ctx.signal?.aborted) return undefined
    ctx.log.warning(
      `Cannot use the cache index of ${pkg.pin.identity} (${pkg.indexKey}): ${errorMessage(error)}. Its targets will be built.`,
    )
    problems.push(`${pkg.pin.identity}: ${errorMessage(error)}`)
    return undefined
  }
}

interface Marker {
  /** `<target>\0<Scipio key>` of every framework the producer stored. */
  targets: string[]
  /** The set manifest: every package's entries of the producer that marked the set, when it wrote one (bucket/set-manifest.ts). */
  indexes?: Map<string, PackageIndex>
}

/** The package's index in every layout read at once, layered: the scope's entries first (bucket/layers.ts). */
export async function readLayeredIndex(
  ctx: RestoreContext,
  position: number,
  breaker: Breaker,
  problems: string[],
): Promise<PackageIndex | undefined> {
  const layouts = layoutsOf(ctx)
  const found = await Promise.all(
    layouts.map((layout) => readIndex(ctx, layout.plan.packages[position]!, breaker, problems, layout)),
  )
  return layerIndexes(found)
}

/** The first layout's marker that exists (the scope's before the shared cache's); all are asked at once. */
export async function readFirstMarker(ctx: RestoreContext, breaker: Breaker): Promise<Marker | undefined> {
  const markers = await Promise.all(layoutsOf(ctx).map((layout) => readMarker(ctx, breaker, layout)))
  return markers.find((marker) => marker !== undefined)
}

async function readMarker(
  ctx: RestoreContext,
  breaker: Breaker,
  layout: Layout = sharedLayout(ctx.prefix, ctx.plan),
): Promise<Marker | undefined> {
  let raw: unknown
  let targets: string[]
  try {
    // A new build's marker answers 403 where missing keys are hidden: absent, like a 404.
    raw = await answerWithin(ctx.stallTimeoutMs ?? 60_000, ctx.signal, (signal) =>
      unlessRefused(() => getJson(ctx.storage, layout.plan.completeKey, signal), breaker.reads),
    )
    if (raw === undefined) return undefined
    targets = parseCompleteMarker(raw, ctx.plan.setKey).targets.map((t) => `${t.targetName}\0${t.scipioKey}`)
  } catch (error) {
    ctx.log.debug(`No usable completion marker: ${errorMessage(error)}`)
    return undefined
  }
  try {
    const indexes = parseSetManifest(
      raw,
      layout.archivePrefixes,
      ctx.plan.packages.map((p) => p.packageKey),
    )
    return indexes ? { targets, indexes } : { targets }
  } catch (error) {
    ctx.log.debug(`The completion marker's manifest is unusable (${errorMessage(error)}): reading the package indexes.`)
    return { targets }
  }
}
