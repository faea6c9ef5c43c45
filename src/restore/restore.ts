import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import pLimit from 'p-limit'
import { type IndexEntry, type PackageIndex } from '../bucket/cache-index.js'
import { CancelledError, stopReason } from '../errors.js'
import { scanOutput } from '../keys/frameworks.js'
import { DiskSpace } from './disk-space.js'
import { disown, own, stagingFolderName, sweepLeftovers } from '../archive/owned-folders.js'
import { InFlight, indexReadsInFlight } from './in-flight.js'
import { chooseEntries, type DependencyMiss, type IndexSource } from './choose.js'
import { Breaker } from './breaker.js'
import { type RestoreJob, FrameworkClaims } from './claims.js'
import { type RestoreContext } from './context.js'
import { type RestoredTarget, type RestoreOutcome, stoppedMiss } from './outcome.js'
import { removeSettled } from './place.js'
import { readLayeredIndex, readFirstMarker } from './reads.js'
import { restoreTarget } from './target.js'

/** The restore's orchestration: markers and indexes in, choices made as they arrive, downloads started, results out. */

function dependencyMiss(miss: DependencyMiss): RestoredTarget {
  return {
    targetName: miss.entry.targetName,
    package: miss.pkg.pin.identity,
    result: 'missed',
    bytes: 0,
    ms: 0,
    reason: miss.reason,
    miss: 'unavailable',
    cause: miss.cause,
  }
}

/** Largest first: the long downloads start early and the small ones fill the gaps. */
const largestFirst = (a: { entry: IndexEntry }, b: { entry: IndexEntry }) => b.entry.size - a.entry.size

/** Removes the staging folders a killed run left in the output folder, before anything else reads it. */
async function sweepStaging(ctx: RestoreContext): Promise<void> {
  const removed = await sweepLeftovers(ctx.outputDirectory)
  if (removed.length > 0)
    ctx.log.info(
      `Removed ${removed.length} staging folders an interrupted run left in ${ctx.outputDirectory}: ${removed.join(', ')}.`,
    )
}

export async function restore(given: RestoreContext): Promise<RestoreOutcome> {
  await fs.mkdir(given.outputDirectory, { recursive: true })
  await sweepStaging(given)
  // A full disk stops this restore's downloads as the time limit or a cancellation does.
  const stop = new AbortController()
  const ctx = { ...given, signal: given.signal ? AbortSignal.any([given.signal, stop.signal]) : stop.signal }
  const space = await DiskSpace.of(ctx.outputDirectory, stop)
  const local = await scanOutput(ctx.outputDirectory)
  const tempRoot = own(path.join(ctx.outputDirectory, stagingFolderName()))
  const indexes = new Map<string, PackageIndex>()
  const packagesMissing: string[] = []
  const problems: string[] = []
  const breaker = new Breaker()
  try {
    const claims = new FrameworkClaims(ctx.log)
    const inFlight = new InFlight(ctx.concurrency)
    const started: { entry: IndexEntry; result: Promise<RestoredTarget> }[] = []
    const decided = new Set<string>()
    const start = (jobs: RestoreJob[]) => {
      for (const { pkg, entry } of claims.take(jobs).sort(largestFirst)) {
        const result = inFlight.run(entry.size, () =>
          restoreTarget(ctx, pkg, entry, local, tempRoot, breaker, space, problems),
        )
        result.catch(() => undefined) // awaited below, once every index is in; never unhandled meanwhile
        started.push({ entry, result })
      }
    }
    // What the indexes in so far decide (choose.ts): the picked entries start, the targets whose dependencies
    // changed are misses without a download. `complete`: no index is still to come.
    const decide = (sources: IndexSource[], complete: boolean) => {
      const choice = chooseEntries(sources, complete, ctx.plan.packages)
      start(choice.picked.filter((p) => !decided.has(p.entry.targetName)))
      for (const miss of choice.missed.filter((m) => !decided.has(m.entry.targetName)))
        started.push({ entry: miss.entry, result: Promise.resolve(dependencyMiss(miss)) })
      for (const { entry } of [...choice.picked, ...choice.missed]) decided.add(entry.targetName)
    }
    // A build marked complete with a manifest needs no index: one request, then the archives.
    const marker = ctx.lookupOnly ? undefined : await readFirstMarker(given, breaker)
    if (marker?.indexes) {
      const manifest = marker.indexes
      const sources = ctx.plan.packages.map((pkg) => ({ pkg, index: manifest.get(pkg.packageKey)! }))
      for (const { pkg, index } of sources) indexes.set(pkg.packageKey, index)
      ctx.log.debug(
        `This build is marked complete: its manifest lists ${sources.reduce((n, s) => n + s.index.targets.length, 0)} frameworks.`,
      )
      // The whole size is known before any download: a set that cannot fit is not started at all.
      const toFetch = sources
        .flatMap(({ index }) => index.targets)
        .filter((entry) => local.get(entry.targetName)?.scipioKey !== entry.scipioKey)
      if (!space.enough(toFetch.reduce((sum, entry) => sum + entry.size, 0))) space.trip('check')
      decide(sources, true)
    } else {
      // A package's archives start as soon as its index has arrived, and those of every package before it in
      // Package.resolved (so the first to list a framework keeps it, whatever order the answers come in), unless
      // they wait for a dependency listed by an index still to come.
      const limit = pLimit(indexReadsInFlight(ctx.concurrency))
      const arrived: (IndexSource | null | undefined)[] = ctx.plan.packages.map(() => undefined)
      const prefix: IndexSource[] = []
      let next = 0
      await Promise.all(
        ctx.plan.packages.map((pkg, i) =>
          limit(async () => {
            // Read with the caller's signal: a full disk stops downloads, not the small reads that say what is stored.
            const index = await readLayeredIndex(given, i, breaker, problems)
            if (!index) packagesMissing.push(pkg.pin.identity)
            else indexes.set(pkg.packageKey, index)
            arrived[i] = index ? { pkg, index } : null
            const before = next
            for (; next < arrived.length && arrived[next] !== undefined; next++)
              if (arrived[next]) prefix.push(arrived[next]!)
            if (next > before) decide(prefix, next === arrived.length)
          }),
        ),
      )
    }
    // Every marker and index read is in: only if all of them were refused can these credentials not read.
    breaker.judgeReads(ctx.log)
    // Reported largest first, in Package.resolved order among equals, whatever order they started in.
    const targets = await Promise.all(started.sort(largestFirst).map((s) => s.result))
    const stopped = targets.filter((t) => t.reason === stoppedMiss(ctx.signal)).length
    if (space.full) {
      const message = space.report(targets.filter((t) => t.result === 'restored').length, stopped)
      ctx.log.warning(message)
      problems.push(message)
    } else if (stopped > 0 || (ctx.signal?.aborted && packagesMissing.length > 0)) {
      const why = stopReason(ctx.signal)
      const then = ctx.signal.reason instanceof CancelledError ? '' : ' and will be built'
      ctx.log.warning(`${why[0]!.toUpperCase()}${why.slice(1)}: ${stopped} frameworks were not restored${then}.`)
      problems.push(why)
    }
    if (breaker.error) problems.push(breaker.error.message)
    const marked = marker?.targets
    const after = await scanOutput(ctx.outputDirectory)
    const complete =
      marked !== undefined &&
      packagesMissing.length === 0 &&
      targets.every((t) => t.result !== 'missed') &&
      marked.every((id) => {
        const [name, key] = id.split('\0')
        return after.get(name!)?.scipioKey === key
      })
    return {
      indexes,
      packagesMissing: packagesMissing.sort(),
      targets,
      complete,
      ...(marker?.indexes ? { fromManifest: true } : {}),
      ...(breaker.error ? { unavailable: breaker.error.message } : {}),
      problems,
    }
  } finally {
    await removeSettled(tempRoot)
    disown(tempRoot)
  }
}
