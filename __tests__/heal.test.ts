import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { runAction, s3TestInputs, type ActionRun } from './helpers/action.js'
import { faults, forKey, isArchiveGet, limited } from './helpers/proxy.js'
import { testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { isRunsRequest } from './helpers/records.js'
import { contentObjectKey } from '../src/bucket/layout.js'
import { Formats } from '../src/constants.js'
import { describeBad, storeMarker, type MarkerDocument } from '../src/save/marker.js'
import { S3Storage } from '../src/storage/s3.js'
import type { RetryPolicy } from '../src/retry.js'
import { consumerCopy, exampleTargets, exampleWorkspace, readDoubleLog } from './helpers/workspace.js'
import { listedEntries } from './helpers/index-doc.js'

/**
 * A cache that heals itself (issue 23): objects deleted behind the indexes and markers (a lifecycle rule, a hand)
 * are stored again by the next producer run, and only an absent or damaged archive makes a producer replace an
 * entry. The store honours conditional writes as Amazon S3 does (the suite's default), and the Scipio double's
 * builds are not reproducible here (SCIPIO_TEST_DOUBLE_NONDETERMINISM): a rebuilt framework has new bytes.
 */

const bucket = 'heal-cache'
const store = useStore([bucket])

afterEach(() => {
  store.proxy.fault = undefined
  store.restoreConditions()
})

const inputs = (ws: string, prefix: string, extra: Record<string, string> = {}) => ({
  ...s3TestInputs(store.endpoint, bucket),
  prefix,
  'package-directory': ws,
  ...extra,
})
const list = (run: ActionRun, name: string) => JSON.parse(run.outputs[name] ?? '[]') as string[]
const warnings = (run: ActionRun) => run.stdout.split('\n').filter((l) => l.startsWith('::warning'))
const expectOk = (run: ActionRun, who: string) => expect(run.code, `${who}: ${run.stdout.slice(-3000)}`).toBe(0)

interface Entry {
  targetName: string
  key: string
}
interface Marker {
  packages?: { targets: Entry[] }[]
}

async function keysUnder(prefix: string): Promise<string[]> {
  const page = await store.s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }))
  return (page.Contents ?? []).map((o) => o.Key!).sort()
}

async function readJson<T>(key: string): Promise<T> {
  const out = await store.s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  return JSON.parse(await out.Body!.transformToString()) as T
}

async function remove(key: string): Promise<void> {
  await store.s3.client().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
}

/** The archive key every index of `prefix` gives `target` (one package lists it). */
async function indexedKey(prefix: string, target: string): Promise<string | undefined> {
  for (const key of (await keysUnder(prefix)).filter((k) => k.includes('/.scipio-s3-cache/packages/'))) {
    const entry = listedEntries(await readJson<{ targets: Entry[] }>(key)).find((t) => t.targetName === target)
    if (entry) return entry.key
  }
  return undefined
}

async function markerKeys(prefix: string): Promise<string[]> {
  const markers = (await keysUnder(prefix)).filter((k) => k.includes('/.scipio-s3-cache/complete/'))
  expect(markers).toHaveLength(1)
  const marker = await readJson<Marker>(markers[0]!)
  return (marker.packages ?? []).flatMap((p) => listedEntries(p).map((t) => t.key))
}

/** A producer of the example package on a fresh runner: every framework is built, with bytes of its own. */
async function produce(prefix: string, build: string, mode = 'producer', fresh?: string) {
  const ws = fresh ?? (await exampleWorkspace())
  const run = await runAction(inputs(ws, prefix, { mode }), { SCIPIO_TEST_DOUBLE_NONDETERMINISM: build })
  expectOk(run, `${mode} ${build}`)
  return { ws, run }
}

/** A consumer in a fresh folder: what it restored and what Scipio built. */
async function consume(ws: string, prefix: string) {
  const fresh = await consumerCopy(ws)
  const log = path.join(fresh, 'double.log')
  const run = await runAction(inputs(fresh, prefix), { SCIPIO_TEST_DOUBLE_LOG: log })
  expectOk(run, 'consumer')
  const built = (await readDoubleLog(log)).filter((e) => e.event === 'built').map((e) => e.target)
  return { run, built }
}

async function expectFullHit(ws: string, prefix: string) {
  const { run, built } = await consume(ws, prefix)
  expect(run.outputs['cache-hit'], run.stdout.slice(-3000)).toBe('true')
  expect(list(run, 'restored').sort()).toEqual([...exampleTargets])
  expect(built).toEqual([])
  expect(warnings(run)).toEqual([])
}

const isMarkerPut = (r: { method: string; url: string }) =>
  r.method === 'PUT' && /\/complete\/[0-9a-f]{64}\.json/.test(r.url)

describe('a producer run heals what vanished', () => {
  it("producer mode: an expired archive is built and stored again under its new name, the marker's manifest names it, and the next consumer gets a full hit", async () => {
    const prefix = 'expired-producer'
    const { ws } = await produce(prefix, 'first')
    const gone = (await indexedKey(prefix, 'Kingfisher'))!
    await remove(gone)

    store.proxy.requests.length = 0
    const { run } = await produce(prefix, 'second', 'producer', await consumerCopy(ws))
    expect(list(run, 'uploaded')).toEqual(['Kingfisher'])
    expect(warnings(run)).toEqual([])
    const healed = (await indexedKey(prefix, 'Kingfisher'))!
    expect(healed).not.toBe(gone)
    expect(await keysUnder(prefix)).toContain(healed)
    // The marker was replaced on the ETag it was read with, not created again.
    const markerPuts = store.proxy.requests.filter(isMarkerPut)
    expect(markerPuts.map((r) => [r.status, r.headers['if-match'] !== undefined])).toEqual([[200, true]])
    const named = await markerKeys(prefix)
    expect(named).toContain(healed)
    expect(named).not.toContain(gone)

    await expectFullHit(ws, prefix)
  }, 120_000)

  it('consumer,producer: the run that meets the absent archive rebuilds it, and replaces the marker so that the next consumer gets a full hit', async () => {
    const prefix = 'expired-both'
    const { ws } = await produce(prefix, 'one')
    const gone = (await indexedKey(prefix, 'Kingfisher'))!
    await remove(gone)

    const { run } = await produce(prefix, 'two', 'consumer,producer', await consumerCopy(ws))
    expect(list(run, 'restored')).toHaveLength(exampleTargets.length - 1)
    expect(list(run, 'uploaded')).toEqual(['Kingfisher'])
    const healed = (await indexedKey(prefix, 'Kingfisher'))!
    expect(healed).not.toBe(gone)
    expect(await markerKeys(prefix)).toContain(healed)

    await expectFullHit(ws, prefix)
  }, 120_000)

  it('an unchanged producer writes an expired pin record again, and nothing else', async () => {
    const prefix = 'expired-record'
    const { ws } = await produce(prefix, 'same')
    const records = (await keysUnder(prefix)).filter((k) => k.includes('/.scipio-s3-cache/pins/'))
    expect(records).toHaveLength(5)
    await remove(records[2]!)

    store.proxy.requests.length = 0
    const { run } = await produce(prefix, 'same', 'producer', ws)
    expect(list(run, 'uploaded')).toEqual([])
    expect(await keysUnder(prefix)).toContain(records[2])
    const puts = store.proxy.requests.filter(
      (r) => r.method === 'PUT' && !r.url.includes('/probe') && !isRunsRequest(r),
    )
    expect(puts.map((r) => new URL(r.url, 'http://x').pathname)).toEqual([`/${bucket}/${records[2]}`])
  }, 120_000)

  it('where the listing is refused (no s3:ListBucket), the producer warns once, trusts the indexes as before, and succeeds', async () => {
    const prefix = 'no-list'
    const { ws } = await produce(prefix, 'x')
    store.proxy.fault = limited(
      (req) => req.method === 'GET' && /[?&]list-type=2/.test(req.url ?? ''),
      Infinity,
      faults.status(403, 'AccessDenied'),
    )
    const run = await runAction(inputs(ws, prefix, { mode: 'producer' }))
    expectOk(run, 'producer without ListBucket')
    expect(list(run, 'uploaded')).toEqual([])
    expect(warnings(run)).toHaveLength(1)
    expect(warnings(run)[0]).toMatch(/Could not list the cache prefix .*s3:ListBucket.*the build is not affected/)
  }, 120_000)
})

describe('a producer on a persistent folder (a self-hosted Mac, an output folder kept by actions/cache)', () => {
  it('consumer,producer with every framework already in place stores again an archive the marker names that expired', async () => {
    const prefix = 'persistent'
    const { ws } = await produce(prefix, 'first', 'consumer,producer')
    const gone = (await indexedKey(prefix, 'Kingfisher'))!
    expect(await markerKeys(prefix)).toContain(gone)
    await remove(gone)

    // The same folder again: the restore keeps all seven frameworks without a download, and Scipio is skipped.
    const { run } = await produce(prefix, 'second', 'consumer,producer', ws)
    expect(list(run, 'restored')).toEqual([])
    expect(run.stdout).toContain('kept 7 already in place')
    expect(list(run, 'uploaded')).toEqual(['Kingfisher'])
    expect(warnings(run)).toEqual([])
    // Packed again from the framework in place (the same bytes, so the same content name), listed where it was.
    const healed = (await indexedKey(prefix, 'Kingfisher'))!
    expect(await keysUnder(prefix)).toContain(healed)
    expect(await markerKeys(prefix)).toContain(healed)

    await expectFullHit(ws, prefix)
  }, 120_000)

  it('an index that expired behind a marked set is written again, from the manifest', async () => {
    const prefix = 'persistent-index'
    const { ws } = await produce(prefix, 'first', 'consumer,producer')
    const indexes = (await keysUnder(prefix)).filter((k) => k.includes('/.scipio-s3-cache/packages/'))
    await remove(indexes[0]!)
    const { run } = await produce(prefix, 'first', 'consumer,producer', ws)
    expect(list(run, 'uploaded')).toEqual([])
    expect(await keysUnder(prefix)).toContain(indexes[0])
  }, 120_000)
})

describe('only damage replaces entries', () => {
  it('a download that keeps failing with 500 is a miss, built, but its good entry is kept', async () => {
    const prefix = 'transient'
    const { ws } = await produce(prefix, 'a')
    const kept = (await indexedKey(prefix, 'Kingfisher'))!
    store.proxy.fault = limited(
      (req) => isArchiveGet(req) && req.url!.includes('/Kingfisher/'),
      Infinity,
      faults.status(500, 'InternalError'),
    )
    const { run } = await produce(prefix, 'b', 'consumer,producer', await consumerCopy(ws))
    expect(list(run, 'restored')).toHaveLength(exampleTargets.length - 1)
    expect(list(run, 'uploaded')).toEqual([])
    expect(await indexedKey(prefix, 'Kingfisher')).toBe(kept)
    expect(await markerKeys(prefix)).toContain(kept)
  }, 120_000)

  it('the cache time limit is a miss, built, but the entry it did not reach is kept', async () => {
    const prefix = 'time-limit'
    const { ws } = await produce(prefix, 'a')
    const kept = (await indexedKey(prefix, 'Kingfisher'))!
    store.proxy.fault = limited(
      (req) => isArchiveGet(req) && req.url!.includes('/Kingfisher/'),
      Infinity,
      faults.stall(),
    )
    const fresh = await consumerCopy(ws)
    const run = await runAction(
      inputs(fresh, prefix, {
        mode: 'consumer,producer',
        'cache-timeout-minutes': '0.05',
        'stall-timeout-seconds': '600',
      }),
      { SCIPIO_TEST_DOUBLE_NONDETERMINISM: 'b' },
    )
    expectOk(run, 'consumer,producer')
    expect(run.stdout).toMatch(/The cache time limit was reached: 1 frameworks were not restored/)
    expect(list(run, 'uploaded')).toEqual([])
    expect(await indexedKey(prefix, 'Kingfisher')).toBe(kept)
  }, 120_000)
})

describe('replacing the completion marker', () => {
  const setKey = 'a'.repeat(64)
  const hex = (c: string) => c.repeat(64)
  const prefix = 'marker-units'
  const markerKey = `${prefix}/.scipio-s3-cache/complete/${setKey}.json`
  /** A marker whose manifest lists one archive of target T, named by the SHA-256 `sha`. */
  const marker = (sha: string, createdAt: string): MarkerDocument => ({
    schema: Formats.complete,
    setKey,
    createdAt,
    targets: [{ targetName: 'T', scipioKey: hex('b') }],
    packages: [
      {
        packageKey: hex('c'),
        package: { identity: 'p' },
        targets: [
          {
            targetName: 'T',
            scipioKey: hex('b'),
            format: 'tar.zst',
            key: contentObjectKey(prefix, 'T', hex('b'), sha, 'tar.zst'),
            size: 1,
            sha256: sha,
          },
        ],
      },
    ],
  })
  const goneKey = contentObjectKey(prefix, 'T', hex('b'), hex('d'), 'tar.zst')
  const noWait: RetryPolicy = {
    attempts: 8,
    baseDelayMs: 0,
    maxDelayMs: 0,
    sleep: async () => undefined,
    random: () => 0,
  }
  const context = () => ({
    storage: new S3Storage({
      kind: 's3',
      bucket,
      region: 'us-east-1',
      endpoint: store.endpoint,
      forcePathStyle: true,
      credentials: testCredentials,
    }),
    prefix,
    publicRead: false,
    key: markerKey,
    setKey,
    conflictRetry: noWait,
  })
  const put = (doc: MarkerDocument) =>
    store.s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: markerKey, Body: JSON.stringify(doc) }))

  it('another producer replaced it first (412): it is read again and left alone when it names nothing gone', async () => {
    await put(marker(hex('d'), 'stale'))
    const first = store.proxy.hold(forKey('PUT', bucket, markerKey))
    const writing = storeMarker(context(), marker(hex('e'), 'ours'), async (key) =>
      key === goneKey ? 'gone' : undefined,
    )
    await first.arrived
    await put(marker(hex('f'), 'theirs'))
    first.release()
    await writing
    const stored = await readJson<MarkerDocument>(markerKey)
    expect(stored.createdAt).toBe('theirs')
    const puts = store.proxy.requests.filter((r) => r.method === 'PUT' && r.url.includes('/complete/'))
    expect(puts.at(-1)?.status).toBe(412)
  })

  it('a marker that names nothing gone is left as it is, with no write', async () => {
    await put(marker(hex('e'), 'good'))
    store.proxy.requests.length = 0
    await storeMarker(context(), marker(hex('9'), 'ours'), async (key) => (key === goneKey ? 'gone' : undefined))
    expect((await readJson<MarkerDocument>(markerKey)).createdAt).toBe('good')
    expect(store.proxy.requests.map((r) => r.method)).toEqual(['GET'])
  })

  it('says what it replaces: a marker it cannot read, archives that are gone, archives that are damaged', async () => {
    const lines: string[] = []
    const log = {
      info: (m: string) => lines.push(m),
      warning: () => {},
      debug: () => {},
      group: <T>(_: string, f: () => Promise<T>) => f(),
    }
    await store.s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: markerKey, Body: 'not a marker' }))
    await storeMarker({ ...context(), log }, marker(hex('e'), 'after garbage'), async () => 'gone')
    expect(lines).toEqual(['The stored completion marker is not one this action can read: replacing it.'])
    expect((await readJson<MarkerDocument>(markerKey)).createdAt).toBe('after garbage')

    lines.length = 0
    await put(marker(hex('d'), 'names a damaged one'))
    await storeMarker({ ...context(), log }, marker(hex('e'), 'ours'), async (key) =>
      key === goneKey ? 'damaged' : undefined,
    )
    expect(lines).toEqual(['The completion marker names 1 archive that is damaged: replacing it.'])
    lines.length = 0
    await put(marker(hex('d'), 'names a gone one'))
    await storeMarker({ ...context(), log }, marker(hex('e'), 'ours'), async (key) =>
      key === goneKey ? 'gone' : undefined,
    )
    expect(lines).toEqual(['The completion marker names 1 archive that is gone (expired or deleted): replacing it.'])
    const both = new Map<string, 'gone' | 'damaged'>([
      ['a', 'gone'],
      ['b', 'damaged'],
      ['c', 'damaged'],
    ])
    expect(describeBad(both)).toBe('1 archive that is gone (expired or deleted) and 2 that are damaged')
  })

  it('on a store that ignores conditions the replacement is written and read back once', async () => {
    store.proxy.conditions = 'ignore'
    await put(marker(hex('d'), 'stale'))
    store.proxy.requests.length = 0
    await storeMarker(context(), marker(hex('e'), 'ours'), async (key) => (key === goneKey ? 'gone' : undefined))
    expect((await readJson<MarkerDocument>(markerKey)).createdAt).toBe('ours')
    const markerRequests = store.proxy.requests.filter((r) => r.url.includes('/complete/')).map((r) => r.method)
    expect(markerRequests).toEqual(['GET', 'GET', 'PUT', 'GET'])
  })
})
