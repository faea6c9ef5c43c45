import { PutObjectCommand } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { runAction, s3TestInputs, type ActionRun } from './helpers/action.js'
import { pinRecordObjectKey } from '../src/bucket/pin-record.js'
import type { Pin } from '../src/keys/resolved.js'
import { forKey, isArchivePut, type ConditionMode, type Match } from './helpers/proxy.js'
import { testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { isRunsRequest } from './helpers/records.js'
import { snapshotTree } from './helpers/tree.js'
import { consumerCopy, doubleWorkspace, readDoubleLog } from './helpers/workspace.js'
import { listedEntries } from './helpers/index-doc.js'

/**
 * Several producers writing one bucket at once (issue 16), through dist/index.js as a runner runs it, on a store
 * that enforces S3's conditional writes (the proxy emulates them) and on one that ignores them (s3rver as is).
 * Builds are not reproducible here (SCIPIO_TEST_DOUBLE_NONDETERMINISM): each producer has other archive bytes.
 */

const bucket = 'race-cache'
const second = { accessKeyId: 'AKIASCIPIOTEST0002', secretAccessKey: 'second-secret-key-0123456789abcdefghij' }
const store = useStore([bucket], { credentials: [testCredentials, second] })

afterEach(() => {
  store.restoreConditions()
  store.proxy.fault = undefined
})

function revision(i: number): string {
  return createHash('sha1').update(`race/${i}`).digest('hex')
}

/** `packages` pinned packages with `targets` targets each, as the Scipio double builds them. */
function generatedSet(packages: number, targets: number): () => Promise<string> {
  const manifest =
    '// swift-tools-version: 5.9\nimport PackageDescription\nlet package = Package(name: "Race", platforms: [.iOS(.v15)])\n'
  const pins = Array.from({ length: packages }, (_, i) => ({
    identity: `pkg${i}`,
    kind: 'remoteSourceControl',
    location: `https://example.com/pkg${i}.git`,
    state: { revision: revision(i), version: `1.0.${i}` },
  }))
  const graph = Object.fromEntries(
    pins.map((p, i) => [
      p.identity,
      { targets: Array.from({ length: targets }, (_, t) => ({ name: `P${i}Target${t}`, binarySize: 2048 })) },
    ]),
  )
  return () => doubleWorkspace(JSON.stringify({ pins, version: 2 }, null, 2), graph, manifest)
}

function inputs(ws: string, prefix: string, extra: Record<string, string> = {}) {
  return { ...s3TestInputs(store.proxy.endpoint, bucket), prefix, 'package-directory': ws, ...extra }
}

const asSecond = { 'access-key-id': second.accessKeyId, 'secret-access-key': second.secretAccessKey }
const list = (run: ActionRun, name: string) => JSON.parse(run.outputs[name] ?? '[]') as string[]
const warnings = (run: ActionRun) => run.stdout.split('\n').filter((l) => l.startsWith('::warning'))

function expectQuiet(run: ActionRun, who: string, allowed?: RegExp) {
  expect(run.code, `${who}: ${run.stdout.slice(-3000)}`).toBe(0)
  expect(
    warnings(run).filter((w) => !allowed?.test(w)),
    who,
  ).toEqual([])
}

/** What a consumer that starts before anything is stored rightly says; anything else would be the race's doing. */
const nothingYet = /Nothing came from the cache .*no producer has stored this pin yet/

const listKeys = (prefix: string) => store.listKeys(bucket, `${prefix}/`)

async function readObject(key: string): Promise<Buffer> {
  const response = await fetch(`${store.s3.endpoint}/${bucket}/${key}`)
  expect(response.status, key).toBe(200)
  return Buffer.from(await response.arrayBuffer())
}

interface StoredIndex {
  targets: { targetName: string; key: string; size: number; sha256: string }[]
}

/** Every entry of every index under `prefix` matches the bytes under its key; returns the entries. */
async function expectIndexesMatchBytes(prefix: string): Promise<StoredIndex['targets']> {
  const entries: StoredIndex['targets'] = []
  for (const key of (await listKeys(prefix)).filter((k) => k.includes('/.scipio-s3-cache/packages/'))) {
    const index = JSON.parse((await readObject(key)).toString('utf8')) as StoredIndex
    for (const entry of listedEntries(index)) {
      const bytes = await readObject(entry.key)
      expect(bytes.length, entry.key).toBe(entry.size)
      expect(createHash('sha256').update(bytes).digest('hex'), entry.key).toBe(entry.sha256)
      entries.push(entry)
    }
  }
  return entries
}

/** Delays the matching requests, as a real link does for an archive upload, so that producers overlap. */
function slow(match: Match, ms: number) {
  store.proxy.fault = (req, _res, forward) => {
    if (!match(req)) return false
    setTimeout(() => forward(), ms)
    return true
  }
}

const signedBy =
  (accessKeyId: string, match: Match): Match =>
  (req) =>
    match(req) && String(req.headers.authorization ?? '').includes(`Credential=${accessKeyId}/`)
const isIndexPut: Match = (req) =>
  req.method === 'PUT' && /\/\.scipio-s3-cache\/packages\/[0-9a-f]{64}\.json/.test(req.url ?? '')

const isPinRecordPut = (r: { method: string; url: string }) =>
  r.method === 'PUT' && /\/\.scipio-s3-cache\/pins\/[0-9a-f]{64}\.json/.test(r.url)

const modes: ConditionMode[] = ['enforce', 'ignore']

describe.each(modes)('several producers at once, store conditions: %s', (mode) => {
  it('4 producers with builds that differ: every index entry matches its bytes; a consumer then restores all, quietly', async () => {
    store.proxy.conditions = mode
    slow(isArchivePut, 150)
    const prefix = `many-${mode}`
    const set = generatedSet(6, 2)
    const concurrencies = ['1', '8', '2', '8']
    const runs = await Promise.all(
      concurrencies.map(async (concurrency, i) =>
        runAction(inputs(await set(), prefix, { mode: 'producer', concurrency }), {
          SCIPIO_TEST_DOUBLE_NONDETERMINISM: `producer-${i}`,
        }),
      ),
    )
    runs.forEach((run, i) => expectQuiet(run, `producer ${i}`))
    store.proxy.fault = undefined

    const entries = await expectIndexesMatchBytes(prefix)
    expect(entries).toHaveLength(12)
    expect(entries.every((e) => /\/[0-9a-f]{64}\/[0-9a-f]{64}\.(code\.)?tar\.(zst|gz)$/.test(e.key))).toBe(true)

    const consumer = await runAction(inputs(await set(), prefix))
    expectQuiet(consumer, 'consumer')
    expect(list(consumer, 'restored')).toHaveLength(12)
    expect(consumer.outputs['cache-hit']).toBe('true')
  }, 180_000)

  it('the interleaving that broke before: both check, B uploads, A uploads, A indexes, then B indexes', async () => {
    store.proxy.conditions = mode
    const prefix = `forced-${mode}`
    const set = generatedSet(1, 1)
    const archiveA = store.proxy.hold(signedBy(testCredentials.accessKeyId, isArchivePut))
    const archiveB = store.proxy.hold(signedBy(second.accessKeyId, isArchivePut))
    const indexB = store.proxy.hold(signedBy(second.accessKeyId, isIndexPut))
    const producerA = runAction(inputs(await set(), prefix, { mode: 'producer' }), {
      SCIPIO_TEST_DOUBLE_NONDETERMINISM: 'A',
    })
    const producerB = runAction(inputs(await set(), prefix, { mode: 'producer', ...asSecond }), {
      SCIPIO_TEST_DOUBLE_NONDETERMINISM: 'B',
    })
    // Both found nothing stored and are about to upload.
    await Promise.all([archiveA.arrived, archiveB.arrived])
    archiveB.release()
    await indexB.arrived
    archiveA.release()
    const a = await producerA
    indexB.release()
    const b = await producerB
    expectQuiet(a, 'producer A')
    expectQuiet(b, 'producer B')

    if (mode === 'enforce') {
      // B's index create was refused (A's was there): B read it again and adopted it.
      const indexPuts = store.proxy.requests.filter(
        (r) => r.method === 'PUT' && r.url.includes(`/${prefix}/.scipio-s3-cache/packages/`),
      )
      expect(indexPuts.map((r) => r.status)).toContain(412)
    }
    expect(await expectIndexesMatchBytes(prefix)).toHaveLength(1)
    const consumer = await runAction(inputs(await set(), prefix))
    expectQuiet(consumer, 'consumer')
    expect(list(consumer, 'restored')).toEqual(['P0Target0'])
  }, 120_000)
})

describe('several producers on a store that enforces conditions', () => {
  it('two Xcode versions at once: every pin record keeps both entries', async () => {
    store.proxy.conditions = 'enforce'
    const prefix = 'xcodes'
    const packages = 4
    const set = generatedSet(packages, 1)
    // Each record's first two writes (one per producer) wait for each other, then race: one wins, one must merge.
    for (let i = 0; i < packages; i++) {
      const key = pinRecordObjectKey(prefix, { identity: `pkg${i}`, revision: revision(i), version: `1.0.${i}` } as Pin)
      const first = store.proxy.hold(forKey('PUT', bucket, key))
      const next = store.proxy.hold(forKey('PUT', bucket, key))
      void Promise.all([first.arrived, next.arrived]).then(() => {
        first.release()
        next.release()
      })
    }
    const [older, newer] = await Promise.all([
      runAction(inputs(await set(), prefix, { mode: 'producer', concurrency: '1' })),
      runAction(inputs(await set(), prefix, { mode: 'producer', concurrency: '1', ...asSecond }), {
        SCIPIO_TEST_DOUBLE_XCODE: '16.4',
        SCIPIO_TEST_DOUBLE_XCODE_BUILD: '16F6',
        SCIPIO_TEST_DOUBLE_CLANG: 'clang-1700.0.13.5',
      }),
    ])
    expectQuiet(older, 'Xcode 16.2')
    expectQuiet(newer, 'Xcode 16.4')
    const refused = store.proxy.requests.filter(
      (r) => isPinRecordPut(r) && r.url.includes(`/${prefix}/`) && (r.status === 409 || r.status === 412),
    )
    expect(refused.length).toBeGreaterThanOrEqual(packages)
    const records = (await listKeys(prefix)).filter((k) => k.includes('/.scipio-s3-cache/pins/'))
    expect(records).toHaveLength(packages)
    for (const key of records) {
      const record = JSON.parse((await readObject(key)).toString('utf8')) as {
        entries: { description: { xcodeVersion: string } }[]
      }
      expect(record.entries.map((e) => e.description.xcodeVersion).sort(), key).toEqual(['16.2', '16.4'])
    }
  }, 120_000)

  it('consumers running while producers write place whole frameworks only, and never warn', async () => {
    store.proxy.conditions = 'enforce'
    slow(isArchivePut, 200)
    const prefix = 'readers'
    const set = generatedSet(5, 2)
    const [wsA, wsB, wsC, wsD] = await Promise.all([set(), set(), set(), set()])
    const logs = [path.join(wsC, 'double.log'), path.join(wsD, 'double.log')]
    const producers = Promise.all([
      runAction(inputs(wsA, prefix, { mode: 'producer' }), { SCIPIO_TEST_DOUBLE_NONDETERMINISM: 'A' }),
      runAction(inputs(wsB, prefix, { mode: 'producer', concurrency: '2', ...asSecond }), {
        SCIPIO_TEST_DOUBLE_NONDETERMINISM: 'B',
      }),
    ])
    // The consumers start while the archives are on their way, and again once the first indexes are there.
    const consumers = Promise.all([
      runAction(inputs(wsC, prefix), { SCIPIO_TEST_DOUBLE_NONDETERMINISM: 'C', SCIPIO_TEST_DOUBLE_LOG: logs[0]! }),
      new Promise((resolve) => setTimeout(resolve, 1500)).then(() =>
        runAction(inputs(wsD, prefix), { SCIPIO_TEST_DOUBLE_NONDETERMINISM: 'D', SCIPIO_TEST_DOUBLE_LOG: logs[1]! }),
      ),
    ])
    const [[a, b], [c, d]] = await Promise.all([producers, consumers])
    expectQuiet(a, 'producer A')
    expectQuiet(b, 'producer B')
    expectQuiet(c, 'consumer C', nothingYet)
    expectQuiet(d, 'consumer D', nothingYet)

    const out = (ws: string) => path.join(ws, 'XCFrameworks')
    for (const [ws, log] of [
      [wsC, logs[0]!],
      [wsD, logs[1]!],
    ] as const) {
      const builtHere = new Set((await readDoubleLog(log)).filter((e) => e.event === 'built').map((e) => e.target))
      for (const name of (await fs.readdir(out(ws))).filter((n) => n.endsWith('.xcframework'))) {
        if (builtHere.has(name.replace(/\.xcframework$/, ''))) continue
        const placed = await snapshotTree(path.join(out(ws), name))
        const fromA = await snapshotTree(path.join(out(wsA), name))
        const fromB = await snapshotTree(path.join(out(wsB), name))
        expect([fromA, fromB], `${name} in ${ws}`).toContainEqual(placed)
      }
    }
  }, 180_000)
})

describe('a producer writing new indexes', () => {
  it('reads each index once where the store honours conditions (and writes it with If-None-Match), twice where it does not', async () => {
    const ws = await generatedSet(6, 2)()
    for (const conditions of modes) {
      store.proxy.conditions = conditions
      store.proxy.requests.length = 0
      const run = await runAction(inputs(ws, `new-indexes-${conditions}`, { mode: 'producer' }))
      expectQuiet(run, `producer (${conditions})`)
      const indexRequests = store.proxy.requests.filter((r) => /\/packages\/[0-9a-f]{64}\.json/.test(r.url))
      const gets = indexRequests.filter((r) => r.method === 'GET')
      const puts = indexRequests.filter((r) => r.method === 'PUT')
      expect(puts, conditions).toHaveLength(6)
      if (conditions === 'enforce') {
        expect(gets, gets.map((r) => r.url).join('\n')).toHaveLength(6)
        expect(puts.map((r) => r.headers['if-none-match'])).toEqual(Array(6).fill('*'))
      } else expect(gets.length, conditions).toBeGreaterThanOrEqual(12) // read, read again, read back
    }
  }, 120_000)
})

const isListing = (r: { method: string; url: string }) => r.method === 'GET' && /[?&]list-type=2/.test(r.url)

describe('an unchanged producer run', () => {
  it('costs at most packages + 2 requests, one of them the listing that finds what expired (30 packages, 60 frameworks)', async () => {
    const prefix = 'unchanged'
    const ws = await generatedSet(30, 2)()
    const first = await runAction(inputs(ws, prefix, { mode: 'producer', concurrency: '8' }))
    expectQuiet(first, 'first producer')
    expect(list(first, 'uploaded')).toHaveLength(60)

    for (const conditions of modes) {
      store.proxy.conditions = conditions
      store.proxy.requests.length = 0
      const again = await runAction(inputs(ws, prefix, { mode: 'producer', concurrency: '8' }))
      expectQuiet(again, `unchanged producer (${conditions})`)
      expect(list(again, 'uploaded'), conditions).toEqual([])
      const seen = store.proxy.requests.map((r) => `${r.method} ${r.url}`).join('\n')
      // The cache's requests, and the one PUT of the run's record.
      const cache = store.proxy.requests.filter((r) => !isRunsRequest(r))
      expect(store.proxy.requests.filter(isRunsRequest).map((r) => r.method)).toEqual(['PUT'])
      expect(cache.length, seen).toBeLessThanOrEqual(30 + 2)
      expect(cache.filter(isListing), seen).toHaveLength(1)
      expect(
        cache.filter((r) => r.method === 'HEAD' || r.method === 'PUT'),
        conditions,
      ).toEqual([])
    }
  }, 120_000)

  it('lists 1,000 objects per request: with 1,200 more objects under the prefix it costs one request more', async () => {
    const prefix = 'unchanged-large'
    const ws = await generatedSet(3, 1)()
    const first = await runAction(inputs(ws, prefix, { mode: 'producer' }))
    expectQuiet(first, 'first producer')
    const client = store.s3.client()
    const keys = Array.from({ length: 1200 }, (_, i) => `${prefix}/Other${i % 7}/${String(i).padStart(64, '0')}.txt`)
    for (let i = 0; i < keys.length; i += 50)
      await Promise.all(
        keys
          .slice(i, i + 50)
          .map((Key) => client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Buffer.from('x') }))),
      )
    store.proxy.requests.length = 0
    const again = await runAction(inputs(ws, prefix, { mode: 'producer' }))
    expectQuiet(again, 'unchanged producer')
    const seen = store.proxy.requests.map((r) => `${r.method} ${r.url}`).join('\n')
    const cache = store.proxy.requests.filter((r) => !isRunsRequest(r))
    expect(cache.filter(isListing), seen).toHaveLength(2)
    expect(cache.length, seen).toBeLessThanOrEqual(3 + 2 + 1)
  }, 120_000)

  it('a consumer,producer run after a full restore, and again on that persistent folder, stays within packages + 2: the marker and the listing, no HEAD, no write', async () => {
    const prefix = 'unchanged'
    const ws = await consumerCopy(await generatedSet(30, 2)())
    for (const [run, restored] of [
      ['fresh folder', 60],
      ['persistent folder, every framework in place', 0],
    ] as const) {
      store.proxy.requests.length = 0
      const again = await runAction(inputs(ws, prefix, { mode: 'consumer,producer' }))
      expectQuiet(again, run)
      expect(list(again, 'restored'), run).toHaveLength(restored)
      // The cache's requests: the run record (helpers/records.ts) is not the cache's.
      const cache = store.proxy.requests.filter((r) => !isRunsRequest(r))
      const seen = cache.map((r) => `${r.method} ${r.url}`).join('\n')
      // The archives downloaded (a fresh folder) are the restore's; the save adds only the listing.
      const archives = cache.filter((r) => /\.tar\.(zst|gz)(\?|$)/.test(r.url)).length
      expect(archives, run).toBe(restored)
      expect(cache.length - archives, seen).toBeLessThanOrEqual(30 + 2)
      expect(cache.filter(isListing), seen).toHaveLength(1)
      expect(
        cache.filter((r) => r.method === 'HEAD' || r.method === 'PUT'),
        run,
      ).toEqual([])
    }
  }, 120_000)
})
