import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { runAction, type ActionRun, s3TestInputs } from './helpers/action.js'
import { faults, forKey, isArchiveGet, isIndexGet, isMarkerGet, limited } from './helpers/proxy.js'
import { useStore } from './helpers/store.js'
import { isRunsRequest } from './helpers/records.js'
import { snapshotTree } from './helpers/tree.js'
import { exampleTargets, exampleWorkspace, readDoubleLog } from './helpers/workspace.js'
import { listedEntries } from './helpers/index-doc.js'

/**
 * The set manifest (issue 19): the completion marker carries every package's index entries, so a consumer whose
 * build is marked complete reads one document, then the archives.
 */

const bucket = 'manifest-cache'
const prefix = 'mf'
const allTargets = exampleTargets

const store = useStore([bucket])

const inputs = (extra: Record<string, string>) => ({ ...s3TestInputs(store.proxy.endpoint, bucket), prefix, ...extra })
const list = (run: ActionRun, name: string) => JSON.parse(run.outputs[name] ?? 'null') as string[]
const expectOk = (run: ActionRun) => expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0)

interface StoredEntry {
  targetName: string
  sha256: string
  key: string
}
interface MarkerDocument {
  targets: { targetName: string; scipioKey: string }[]
  packages?: { packageKey: string; package: { identity: string }; targets: StoredEntry[] }[]
}

let producerTree: Record<string, string>
/** package identity → package key, in Package.resolved order (the producer's `package-keys` output). */
let packageKeys: Record<string, string>
let markerKey: string
let original: string

async function readObject(key: string): Promise<string> {
  const out = await store.s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  return out.Body!.transformToString()
}

async function writeMarker(text: string): Promise<void> {
  await store.s3
    .client()
    .send(new PutObjectCommand({ Bucket: bucket, Key: markerKey, Body: text, ContentType: 'application/json' }))
}

async function consume(extra: Record<string, string> = {}) {
  const ws = await exampleWorkspace()
  const out = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'manifest-out-')), 'Frameworks')
  const log = path.join(ws, 'double.log')
  store.proxy.requests.length = 0
  const run = await runAction(inputs({ 'package-directory': ws, 'output-directory': out, ...extra }), {
    SCIPIO_TEST_DOUBLE_LOG: log,
  })
  // The cache's requests; the run's record (records.test.ts) apart.
  const requests = store.proxy.requests.filter((r) => !isRunsRequest(r))
  const recordRequests = store.proxy.requests.filter(isRunsRequest)
  const events = await readDoubleLog(log)
  return {
    run,
    out,
    requests,
    recordRequests,
    built: events.filter((e) => e.event === 'built').map((e) => e.target),
  }
}

beforeAll(async () => {
  const ws = await exampleWorkspace()
  const run = await runAction(inputs({ mode: 'producer', 'package-directory': ws }))
  expectOk(run)
  expect(list(run, 'uploaded')).toEqual(allTargets)
  packageKeys = JSON.parse(run.outputs['package-keys']!) as Record<string, string>
  producerTree = await snapshotTree(path.join(ws, 'XCFrameworks'))
  const listed = await store.s3
    .client()
    .send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/.scipio-s3-cache/complete/` }))
  expect(listed.Contents).toHaveLength(1)
  markerKey = listed.Contents![0]!.Key!
  original = await readObject(markerKey)
}, 120_000)

afterEach(async () => {
  store.proxy.fault = undefined
  await writeMarker(original)
})

describe('the completion marker carries the set manifest', () => {
  it("lists every package's index entries as the indexes store them", async () => {
    const marker = JSON.parse(original) as MarkerDocument
    expect(marker.packages).toHaveLength(5)
    for (const pkg of marker.packages!) {
      const index = JSON.parse(await readObject(`${prefix}/.scipio-s3-cache/packages/${pkg.packageKey}.json`)) as {
        targets: unknown[]
        package: unknown
      }
      expect(listedEntries(pkg)).toEqual(listedEntries(index))
      expect(pkg.package).toEqual(index.package)
    }
    expect(marker.packages!.flatMap((p) => listedEntries(p).map((t) => t.targetName)).sort()).toEqual(allTargets)
  })

  it('a full hit costs the archives and one request: no index, no pin record, no HEAD', async () => {
    const { run, out, requests, recordRequests, built } = await consume()
    expectOk(run)
    expect(run.outputs['cache-hit']).toBe('true')
    expect(list(run, 'restored')).toEqual(allTargets)
    expect(built).toEqual([])
    expect(await snapshotTree(out)).toEqual(producerTree)
    expect(requests.map((r) => r.method)).toEqual(Array(allTargets.length + 1).fill('GET'))
    expect(recordRequests.map((r) => r.method)).toEqual(['PUT'])
    expect(requests.filter((r) => /\.tar\.(zst|gz)(\?|$)/.test(r.url))).toHaveLength(allTargets.length)
    expect(requests.filter((r) => r.url.includes('/complete/'))).toHaveLength(1)
  })

  it('consumer,producer after a manifest full hit writes nothing and reads nothing more than its one survey', async () => {
    const { run, requests, built } = await consume({ mode: 'consumer,producer' })
    expectOk(run)
    expect(run.outputs['cache-hit']).toBe('true')
    expect(built).toEqual([])
    expect(list(run, 'uploaded')).toEqual([])
    // The archives, the marker, and the producer's one listing of its prefix (save/heal.ts: it heals on every path).
    const listings = requests.filter((r) => /[?&]list-type=2/.test(r.url))
    expect(listings).toHaveLength(1)
    expect(requests).toHaveLength(allTargets.length + 2)
    expect(requests.every((r) => r.method === 'GET')).toBe(true)
  })

  it('a damaged manifest falls back to the indexes, with a debug line', async () => {
    const marker = JSON.parse(original) as MarkerDocument
    listedEntries(marker.packages![0]!)[0]!.sha256 = 'not a digest'
    await writeMarker(JSON.stringify(marker))
    const { run, requests, built } = await consume()
    expectOk(run)
    expect(run.stdout).toMatch(/::debug::The completion marker's manifest is unusable \(package .*bad sha256\)/)
    expect(requests.filter((r) => /\/packages\/[0-9a-f]{64}\.json/.test(r.url))).toHaveLength(5)
    expect(list(run, 'restored')).toEqual(allTargets)
    expect(built).toEqual([])
    expect(run.outputs['cache-hit']).toBe('true') // the marker's target list still holds: Scipio is skipped
  })

  it('a manifest that is not this build’s packages falls back as well', async () => {
    const marker = JSON.parse(original) as MarkerDocument
    marker.packages!.pop()
    await writeMarker(JSON.stringify(marker))
    const { run, requests } = await consume()
    expectOk(run)
    expect(run.stdout).toMatch(/manifest is unusable \(the manifest's packages are not this build's\)/)
    expect(requests.filter((r) => /\/packages\/[0-9a-f]{64}\.json/.test(r.url))).toHaveLength(5)
    expect(list(run, 'restored')).toEqual(allTargets)
  })

  it('a manifest archive that fails its SHA-256 is a miss with its reason, and Scipio builds it', async () => {
    // The archive's bytes change on the way (its name, content-addressed, still matches the entry).
    store.proxy.fault = limited(
      (req) => isArchiveGet(req) && req.url!.includes('/Kingfisher/'),
      Infinity,
      faults.flipByte(),
    )
    const { run, out, requests, built } = await consume()
    expectOk(run)
    expect(requests.some((r) => isIndexGetUrl(r.url))).toBe(false) // the manifest was valid: no index read
    expect(run.stdout).toMatch(
      /Cache miss for Kingfisher \(kingfisher\): integrity check failed: (SHA-256 .* differs|the archive is corrupted)/,
    )
    expect(built).toEqual(['Kingfisher'])
    expect(list(run, 'restored')).toEqual(allTargets.filter((t) => t !== 'Kingfisher'))
    expect(run.outputs['cache-hit']).toBe('false')
    expect(JSON.parse(run.outputs['miss-reasons'] ?? '{}')).toMatchObject({
      kingfisher: expect.stringContaining('integrity check failed') as unknown,
    })
    expect(await snapshotTree(out)).toEqual(producerTree)
  })

  it('a manifest archive that is missing is a miss with its reason, and Scipio builds it', async () => {
    store.proxy.fault = limited(
      (req) => isArchiveGet(req) && req.url!.includes('/Logging/'),
      Infinity,
      faults.status(404, 'NoSuchKey'),
    )
    const { run, built } = await consume()
    expectOk(run)
    expect(run.stdout).toMatch(/Cache miss for Logging \(swift-log\): download failed: the archive .* is missing/)
    expect(built).toEqual(['Logging'])
    expect(run.outputs['cache-hit']).toBe('false')
  })

  it('a marker without a manifest (an older producer) still restores through the indexes and skips Scipio', async () => {
    const marker = JSON.parse(original) as MarkerDocument
    delete marker.packages
    await writeMarker(JSON.stringify(marker))
    const { run, out, requests, built } = await consume()
    expectOk(run)
    expect(requests.filter((r) => isIndexGetUrl(r.url))).toHaveLength(5)
    expect(run.stdout).not.toMatch(/manifest is unusable/)
    expect(list(run, 'restored')).toEqual(allTargets)
    expect(built).toEqual([])
    expect(run.outputs['cache-hit']).toBe('true')
    expect(await snapshotTree(out)).toEqual(producerTree)
  })

  it('without any marker (a partial hit) the indexes are read as before', async () => {
    store.proxy.fault = limited(isMarkerGet, Infinity, faults.status(404, 'NoSuchKey'))
    const { run, requests } = await consume()
    expectOk(run)
    expect(requests.filter((r) => isIndexGetUrl(r.url))).toHaveLength(5)
    expect(list(run, 'restored')).toEqual(allTargets)
    expect(list(run, 'built')).toEqual([])
  })

  it('a partial hit starts the archives of the packages whose indexes are in while a later index is on its way', async () => {
    store.proxy.fault = limited(isMarkerGet, Infinity, faults.status(404, 'NoSuchKey'))
    const [lastPackage, lastKey] = Object.entries(packageKeys).at(-1)!
    const hold = store.proxy.hold(forKey('GET', bucket, `${prefix}/.scipio-s3-cache/packages/${lastKey}.json`))
    const consuming = consume()
    await hold.arrived
    const archiveGets = () => store.proxy.requests.filter((r) => isArchiveGetUrl(r.url))
    for (const deadline = Date.now() + 20_000; archiveGets().length === 0 && Date.now() < deadline;)
      await new Promise((resolve) => setTimeout(resolve, 20))
    const beforeRelease = archiveGets().map((r) => r.url)
    hold.release()
    const { run } = await consuming
    expectOk(run)
    // Archives went out while the last package's index was still held; none of them was its own.
    const held = JSON.parse(await readObject(`${prefix}/.scipio-s3-cache/packages/${lastKey}.json`)) as {
      targets: { targetName: string }[]
    }
    expect(beforeRelease.length, `${lastPackage}'s index held`).toBeGreaterThan(0)
    for (const { targetName } of listedEntries(held))
      expect(beforeRelease.filter((url) => url.includes(`/${targetName}/`))).toEqual([])
    expect(list(run, 'restored')).toEqual(allTargets)
    expect(list(run, 'built')).toEqual([])
  })
})

const isArchiveGetUrl = (url: string) => isArchiveGet({ method: 'GET', url } as Parameters<typeof isArchiveGet>[0])
const isIndexGetUrl = (url: string) => isIndexGet({ method: 'GET', url } as Parameters<typeof isIndexGet>[0])
