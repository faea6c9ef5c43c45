import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { indexDocument, newIndex, type IndexEntry } from '../src/bucket/cache-index.js'
import { archiveObjectKey } from '../src/bucket/layout.js'
import { manifestDocument } from '../src/bucket/set-manifest.js'
import { executePrune, planPrune, pruneGuard, type PrunePlan } from '../src/cli/prune.js'
import { completeObjectKey, indexObjectKey } from '../src/keys/keys.js'
import { S3Admin } from '../src/storage/s3-admin.js'
import { S3Storage } from '../src/storage/s3.js'
import type { Match } from './helpers/proxy.js'
import { useStore } from './helpers/store.js'

// prune --delete plans from one listing and deletes later. These tests write between the two, as a producer
// running at the same time does, through the test proxy (it can hold prune's delete request meanwhile).

const bucket = 'prune-race'
const store = useStore([bucket])

afterEach(() => {
  store.proxy.fault = undefined
})

const settings = () => store.settings(bucket)
const hex = () => randomBytes(32).toString('hex')
const isDelete: Match = (req) => req.method === 'POST' && /[?&]delete/.test(req.url ?? '')

async function put(key: string, body: unknown): Promise<void> {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body))
  await store.s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }))
}

async function keys(prefix: string): Promise<string[]> {
  const out = await store.s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }))
  return (out.Contents ?? []).map((o) => o.Key!).sort()
}

/** An archive object (its bytes do not matter to prune) and the index entry that lists it. */
async function archive(prefix: string, target: string): Promise<IndexEntry> {
  const scipioKey = hex()
  const key = archiveObjectKey(prefix, target, scipioKey, 'tar.zst')
  await put(key, randomBytes(16))
  return { targetName: target, scipioKey, format: 'tar.zst', key, size: 16, sha256: hex() }
}

function index(packageKey: string, targets: IndexEntry[]) {
  const pin = {
    identity: 'dep',
    kind: 'remoteSourceControl' as const,
    location: 'https://example.com/dep.git',
    version: '1.0.0',
  }
  return newIndex(packageKey, pin, targets, new Date())
}

/** The plan prune makes now, keeping nothing (no Package.resolved) and counting everything as old enough. */
async function plan(prefix: string): Promise<PrunePlan> {
  return planPrune({
    prefix,
    plans: [],
    olderThanDays: 0,
    now: new Date(Date.now() + 60_000),
    storage: new S3Storage(settings()),
    admin: new S3Admin(settings()),
  })
}

async function prune(planned: PrunePlan) {
  const admin = new S3Admin(settings())
  return executePrune(planned, admin, pruneGuard(planned, new S3Storage(settings()), admin))
}

describe('prune --delete against producers running at the same time', () => {
  it('keeps every archive that a marker written while it deletes lists', async () => {
    const prefix = 'marker-race'
    const kept = await archive(prefix, 'Kept')
    const unused = await archive(prefix, 'Unused')
    const obsolete = hex()
    await put(indexObjectKey(prefix, obsolete), indexDocument(index(obsolete, [kept, unused])))
    const planned = await plan(prefix)
    expect(planned.candidates.map((c) => c.key).sort()).toEqual(
      [indexObjectKey(prefix, obsolete), kept.key, unused.key].sort(),
    )

    // While the indexes' deletion is on its way, a producer marks a set complete whose manifest lists `kept`
    // (it read the obsolete index before prune deleted it).
    const held = store.proxy.hold(isDelete)
    const deleting = prune(planned)
    await held.arrived
    const marker = completeObjectKey(prefix, hex())
    await put(marker, { packages: manifestDocument([index(hex(), [kept])]) })
    held.release()
    const result = await deleting

    expect(await keys(prefix)).toEqual([kept.key, marker].sort())
    expect(result.deleted).toBe(2)
    expect(result.spared).toEqual([{ key: kept.key, reason: `listed by ${marker}, written since the plan` }])
    expect(result.failures).toEqual([])
  })

  it('keeps an index rewritten since the plan and what it lists now, and an archive uploaded again', async () => {
    const prefix = 'rewrite-race'
    const old = await archive(prefix, 'Old')
    const again = await archive(prefix, 'Again')
    const packageKey = hex()
    const indexKey = indexObjectKey(prefix, packageKey)
    await put(indexKey, indexDocument(index(packageKey, [old])))
    const planned = await plan(prefix)
    expect(planned.candidates).toHaveLength(3)

    // A producer merges its entry into the index (keeping `old`), and another uploads the same bytes again.
    const added = await archive(prefix, 'Added')
    await put(indexKey, indexDocument(index(packageKey, [old, added])))
    await put(again.key, randomBytes(16))
    const result = await prune(planned)

    expect(result.deleted).toBe(0)
    expect(result.spared.map((s) => [s.key, s.reason]).sort()).toEqual(
      [
        [indexKey, 'written again since the plan'],
        [old.key, `listed by ${indexKey}, written since the plan`],
        [again.key, 'written again since the plan'],
      ].sort(),
    )
    expect(await keys(prefix)).toEqual([indexKey, old.key, again.key, added.key].sort())
  })

  it('deletes what nothing wrote meanwhile, indexes before archives, each batch checked just before it goes', async () => {
    const prefix = 'quiet'
    const a = await archive(prefix, 'A')
    await archive(prefix, 'B')
    const packageKey = hex()
    await put(indexObjectKey(prefix, packageKey), indexDocument(index(packageKey, [a])))
    const planned = await plan(prefix)
    const before = store.proxy.requests.length
    const result = await prune(planned)
    expect(result).toEqual({ deleted: 3, failures: [], spared: [] })
    expect(await keys(prefix)).toEqual([])
    // Documents listed, then the index deleted; the archives' range and the documents listed, then the archives.
    // (s3rver sometimes answers a DeleteObjects with a 500, which the SDK retries: the retry counts once.)
    const answered = store.proxy.requests.slice(before).filter((r) => r.status! < 500)
    const calls = answered.map((r) => {
      const url = new URL(r.url, 'http://proxy')
      if (r.method === 'POST') return 'delete'
      return url.searchParams.has('start-after') ? 'list range' : `list ${url.searchParams.get('prefix')}`
    })
    expect(calls).toEqual([
      `list ${prefix}/.scipio-s3-cache/`,
      'delete',
      'list range',
      `list ${prefix}/.scipio-s3-cache/`,
      'delete',
    ])
  })
})
