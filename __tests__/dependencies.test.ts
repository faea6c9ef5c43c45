import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runAction, s3TestInputs, type ActionRun } from './helpers/action.js'
import { listedEntries } from './helpers/index-doc.js'
import { useStore } from './helpers/store.js'
import {
  dependentsOf,
  graphFixture,
  graphTargets,
  graphWorkspace,
  readDoubleLog,
  type GraphFixture,
} from './helpers/workspace.js'

/**
 * Dependency bumps (issue 24): Scipio 0.33 puts the keys of a target's dependencies into its own key, so a bump
 * changes the key of every dependent. The consumer restores only what Scipio will keep, both sides of a bump stay
 * cached, and the outputs say what Scipio kept and why the rest was built. The action and the Scipio double, run
 * as a runner runs them, against s3rver behind the test proxy.
 */

const bucket = 'deps-cache'
const store = useStore([bucket])

const list = (run: ActionRun, name: string) => JSON.parse(run.outputs[name] ?? 'null') as string[]
const expectOk = (run: ActionRun) => expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0)
const without = (all: string[], some: string[]) => all.filter((t) => !some.includes(t))

interface Pass {
  run: ActionRun
  /** Targets whose archive the run downloaded, sorted. */
  downloaded: string[]
  /** Targets the double built, sorted. */
  built: string[]
}

/** One action run on `graph` at `versions` under `prefix`: what it downloaded and what the double built. */
async function pass(
  graph: GraphFixture,
  prefix: string,
  versions: Record<string, string>,
  mode = 'consumer',
  { revisions = {}, inspect }: { revisions?: Record<string, string>; inspect?: (ws: string) => Promise<void> } = {},
): Promise<Pass> {
  const ws = await graphWorkspace(graph, versions, revisions)
  const log = path.join(ws, 'double.log')
  store.proxy.requests.length = 0
  const run = await runAction(
    { ...s3TestInputs(store.proxy.endpoint, bucket), prefix, mode, 'package-directory': ws },
    { SCIPIO_TEST_DOUBLE_LOG: log },
  )
  expectOk(run)
  const archive = new RegExp(`/${prefix}/([^/]+)/[0-9a-f]{64}/[0-9a-f]{64}\\.(?:code\\.)?tar\\.(zst|gz)`)
  const downloaded = store.proxy.requests
    .filter((r) => r.method === 'GET')
    .map((r) => archive.exec(r.url)?.[1])
    .filter((t): t is string => t !== undefined)
    .sort()
  const built = (await readDoubleLog(log))
    .filter((e) => e.event === 'built')
    .map((e) => e.target)
    .sort()
  await inspect?.(ws)
  await fs.rm(ws, { recursive: true, force: true })
  return { run, downloaded, built }
}

async function objectKeys(prefix: string): Promise<string[]> {
  const listed = await store.s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }))
  return (listed.Contents ?? []).map((o) => o.Key!)
}

/** Rewrites every package index under `prefix` as a release before dependency keys wrote it. */
async function asOlderRelease(prefix: string): Promise<void> {
  for (const key of await objectKeys(`${prefix}/.scipio-s3-cache`)) {
    if (!key.includes('/packages/') && !key.includes('/complete/')) continue
    const out = await store.s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    const text = (await out.Body!.transformToString()).replace(/,\s*"dependencyCacheKeyChecksums": \[[^\]]*\]/g, '')
    expect(text).not.toContain('dependencyCacheKeyChecksums')
    await store.s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: text }))
  }
}

describe("issue 24's scenarios (Kingfisher depends on Logging, APNGKit on Delegate and OrderedCollections)", () => {
  it('a pull request bumps swift-log: Kingfisher is not downloaded, is built, and its miss names the bump', async () => {
    const graph = await graphFixture('kingfisher-logging')
    const all = graphTargets(graph)
    const producer = await pass(graph, 'bump-log', {}, 'producer')
    expect(list(producer.run, 'uploaded')).toEqual(all)

    const consumer = await pass(graph, 'bump-log', { 'swift-log': '1.6.2' })
    expect(consumer.built).toEqual(['Kingfisher', 'Logging'])
    expect(consumer.downloaded).toEqual(without(all, ['Kingfisher', 'Logging']))
    expect(list(consumer.run, 'restored')).toEqual(without(all, ['Kingfisher', 'Logging']))
    expect(list(consumer.run, 'built')).toEqual(['Kingfisher', 'Logging'])
    const reasons = JSON.parse(consumer.run.outputs['miss-reasons']!) as Record<string, string>
    expect(reasons.kingfisher).toBe('Kingfisher: its dependency Logging changed (swift-log 1.6.1 → 1.6.2)')
    expect(reasons['swift-log']).toBeDefined()
    expect(consumer.run.summary).toContain('Dependency cascade')
    expect(consumer.run.summary).toContain('swift-log 1.6.1 → 1.6.2 made 1 dependent miss: Kingfisher')
  }, 120_000)

  it('both versions stored, then swift-collections bumped with swift-log back at the old version: 6 built, none downloaded for nothing', async () => {
    const graph = await graphFixture('kingfisher-logging')
    const all = graphTargets(graph)
    await pass(graph, 'both-sides', {}, 'producer')
    const bumped = await pass(graph, 'both-sides', { 'swift-log': '1.6.2' }, 'consumer,producer')
    expect(list(bumped.run, 'uploaded')).toEqual(['Kingfisher', 'Logging'])
    // Kingfisher's index keeps both contexts; each set's manifest holds only its producer's (docs/how-it-works.md).
    interface Stored {
      packageKey?: string
      targets: { targetName: string }[]
      laterFormats?: { targetName: string }[]
      contexts?: { targetName: string }[]
      packages?: Stored[]
    }
    const read = async (key: string) =>
      JSON.parse(
        await (
          await store.s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        ).Body!.transformToString(),
      ) as Stored
    const kingfisherIndex = await read(await indexOf('both-sides', 'kingfisher'))
    const entries = (doc: Stored) =>
      [...listedEntries(doc), ...(doc.contexts ?? [])].filter((t) => t.targetName === 'Kingfisher')
    expect(entries(kingfisherIndex)).toHaveLength(2)
    const markers = await objectKeys('both-sides/.scipio-s3-cache/complete')
    expect(markers).toHaveLength(2)
    for (const marker of markers) {
      const manifest = (await read(marker)).packages!.find((p) => p.packageKey === kingfisherIndex.packageKey)!
      expect(entries(manifest), marker).toHaveLength(1)
    }

    const consumer = await pass(graph, 'both-sides', { 'swift-collections': '1.1.5' })
    const needed = dependentsOf(graph, 'swift-collections')
    expect(needed).toEqual([
      'APNGKit',
      'Collections',
      'DequeModule',
      'HeapModule',
      'InternalCollectionsUtilities',
      'OrderedCollections',
    ])
    expect(consumer.built).toEqual(needed)
    expect(consumer.downloaded).toEqual(['Delegate', 'Kingfisher', 'Logging'])
    expect(list(consumer.run, 'restored')).toEqual(['Delegate', 'Kingfisher', 'Logging'])
    const reasons = JSON.parse(consumer.run.outputs['miss-reasons']!) as Record<string, string>
    expect(reasons.apngkit).toBe('APNGKit: its dependency OrderedCollections changed (swift-collections 1.1.4 → 1.1.5)')

    // And main, on the new swift-log, still finds its own Kingfisher: neither side evicted the other.
    const main = await pass(graph, 'both-sides', { 'swift-log': '1.6.2' })
    expect(main.built).toEqual([])
    expect(main.downloaded).toEqual(all)
  }, 180_000)

  it('indexes of an older release (no dependency keys) are still read; what Scipio rebuilds after a restore counts as built', async () => {
    const graph = await graphFixture('kingfisher-logging')
    const all = graphTargets(graph)
    await pass(graph, 'older', {}, 'producer')
    await asOlderRelease('older')

    const consumer = await pass(graph, 'older', { 'swift-log': '1.6.2' })
    // As before this release: the entry without dependency keys is downloaded, and Scipio is the judge.
    expect(consumer.downloaded).toEqual(without(all, ['Logging']))
    expect(consumer.built).toEqual(['Kingfisher', 'Logging'])
    expect(list(consumer.run, 'restored')).toEqual(without(all, ['Kingfisher', 'Logging']))
    expect(consumer.run.outputs['restored-count']).toBe(String(all.length - 2))
    const reasons = JSON.parse(consumer.run.outputs['miss-reasons']!) as Record<string, string>
    expect(reasons.kingfisher).toMatch(/^Kingfisher: restored from the cache, but Scipio rebuilt it/)

    // The next producer that writes the package's index (not one restoring a whole marked set, which writes
    // nothing) gives the old entries their dependency keys; then the choice is exact.
    for (const key of await objectKeys('older/.scipio-s3-cache/complete'))
      await store.s3.client().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
    const producer = await pass(graph, 'older', {}, 'consumer,producer')
    expect(producer.built).toEqual([])
    const again = await pass(graph, 'older', { 'swift-log': '1.6.2' })
    expect(again.downloaded).toEqual(without(all, ['Kingfisher', 'Logging']))
  }, 180_000)
})

/** The index of `identity` under `prefix`, and the completion markers: what a producer stopped before writing. */
async function indexOf(prefix: string, identity: string): Promise<string> {
  for (const key of await objectKeys(`${prefix}/.scipio-s3-cache/packages`)) {
    const out = await store.s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))
    const index = JSON.parse(await out.Body!.transformToString()) as { package: { identity: string } }
    if (index.package.identity === identity) return key
  }
  throw new Error(`no index of ${identity} under ${prefix}`)
}

async function removeMarkers(prefix: string): Promise<void> {
  for (const key of await objectKeys(`${prefix}/.scipio-s3-cache/complete`))
    await store.s3.client().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
}

describe("a lost index (a producer stopped before writing swift-log's, or it expired)", () => {
  it('with the pin unchanged it costs only Logging: Kingfisher is restored by its recorded key, and Scipio keeps it', async () => {
    const graph = await graphFixture('kingfisher-logging')
    const all = graphTargets(graph)
    await pass(graph, 'lost-index', {}, 'producer')
    await store.s3
      .client()
      .send(new DeleteObjectCommand({ Bucket: bucket, Key: await indexOf('lost-index', 'swift-log') }))
    await removeMarkers('lost-index')

    const consumer = await pass(graph, 'lost-index', {})
    expect(consumer.built).toEqual(['Logging'])
    expect(consumer.downloaded).toEqual(without(all, ['Logging']))
    expect(list(consumer.run, 'restored')).toEqual(without(all, ['Logging']))
    // Only swift-log missed: no dependent names it.
    expect(Object.keys(JSON.parse(consumer.run.outputs['miss-reasons']!) as object)).toEqual(['swift-log'])
  }, 120_000)

  it('a wrong guess (the tag moved to another commit) costs a rebuild of the dependent, never a wrong binary', async () => {
    const graph = await graphFixture('kingfisher-logging')
    await pass(graph, 'lost-retagged', {}, 'producer')
    await store.s3
      .client()
      .send(new DeleteObjectCommand({ Bucket: bucket, Key: await indexOf('lost-retagged', 'swift-log') }))
    await removeMarkers('lost-retagged')

    // swift-log 1.6.1 again, at another revision: Logging's key changes, so Kingfisher's does.
    const retagged = { 'swift-log': createHash('sha1').update('swift-log@1.6.1, retagged').digest('hex') }
    const consumer = await pass(graph, 'lost-retagged', {}, 'consumer', {
      revisions: retagged,
      inspect: async (ws) => {
        // What is in place is what Scipio built: Kingfisher's VersionFile names the Logging it was built against now.
        const out = path.join(ws, 'XCFrameworks')
        const logging = createHash('sha256')
          .update(await fs.readFile(path.join(out, '.Logging.version')))
          .digest('hex')
        const kingfisher = JSON.parse(await fs.readFile(path.join(out, '.Kingfisher.version'), 'utf8')) as {
          dependencyCacheKeyChecksums: { targetName: string; checksum: string }[]
        }
        expect(kingfisher.dependencyCacheKeyChecksums).toEqual([{ checksum: logging, targetName: 'Logging' }])
      },
    })
    expect(consumer.downloaded).toContain('Kingfisher')
    expect(consumer.built).toEqual(['Kingfisher', 'Logging'])
    const reasons = JSON.parse(consumer.run.outputs['miss-reasons']!) as Record<string, string>
    expect(reasons.kingfisher).toMatch(/^Kingfisher: restored from the cache, but Scipio rebuilt it/)
  }, 120_000)
})

describe("a real tree: swift-composable-architecture's packages (38 frameworks, swift-syntax under the macros)", () => {
  for (const [leaf, version] of [
    ['swift-syntax', '600.0.1'],
    ['xctest-dynamic-overlay', '1.4.4'],
  ] as const) {
    it(`bumping ${leaf} rebuilds exactly its dependents, and downloads none of them`, async () => {
      const graph = await graphFixture('composable-architecture')
      const all = graphTargets(graph)
      expect(all.length).toBeGreaterThanOrEqual(30)
      const prefix = `tca-${leaf}`
      const producer = await pass(graph, prefix, {}, 'producer')
      expect(list(producer.run, 'uploaded')).toEqual(all)

      const consumer = await pass(graph, prefix, { [leaf]: version })
      const dependents = dependentsOf(graph, leaf)
      expect(consumer.built).toEqual(dependents)
      expect(consumer.downloaded).toEqual(without(all, dependents))
      expect(list(consumer.run, 'restored')).toEqual(without(all, dependents))
      expect(consumer.run.summary).toContain(`${leaf} ${graph.packages[leaf]!.version} → ${version} made`)
      console.log(
        `${leaf} bump: ${all.length} frameworks, ${consumer.downloaded.length} downloaded, ${consumer.built.length} built, ${list(consumer.run, 'restored').length} restored`,
      )
    }, 180_000)
  }
})
