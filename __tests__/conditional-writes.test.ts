import { getEventListeners } from 'node:events'
import { Readable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { listsAll, mergeIndex, newIndex, parseIndex, type IndexEntry } from '../src/bucket/cache-index.js'
import { contentObjectKey, archiveObjectKey, probeObjectKey } from '../src/bucket/layout.js'
import { conditionsHonoured, updateShared, type SharedDocument } from '../src/bucket/shared-document.js'
import { classify } from '../src/cli/prune.js'
import { PreconditionFailedError, type StorageError } from '../src/errors.js'
import type { Pin } from '../src/keys/resolved.js'
import type { RetryPolicy } from '../src/retry.js'
import { getJsonVersion, type PutOptions, type Storage, type StoredObject } from '../src/storage/index.js'
import { S3Storage } from '../src/storage/s3.js'
import { faults, limited } from './helpers/proxy.js'
import { testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'

const bucket = 'conditions'
const store = useStore([bucket])

afterEach(() => {
  store.restoreConditions()
  store.proxy.fault = undefined
})

function s3(): S3Storage {
  return new S3Storage({
    kind: 's3',
    bucket,
    region: 'us-east-1',
    endpoint: store.proxy.endpoint,
    forcePathStyle: true,
    credentials: testCredentials,
  })
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value))
const plain: PutOptions = { contentType: 'application/json', publicRead: false }

describe('reading a JSON document', () => {
  it("leaves no listener on the caller's signal: a run's signal outlives hundreds of reads", async () => {
    const storage: Storage = {
      description: 'fake',
      writable: false,
      head: async () => undefined,
      get: async (): Promise<StoredObject> => ({ body: Readable.from([json({ n: 1 })]), size: 7 }),
      put: async () => undefined,
    }
    const run = new AbortController()
    for (let i = 0; i < 50; i++)
      expect((await getJsonVersion(storage, 'doc.json', run.signal))?.value).toEqual({ n: 1 })
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0)
    // A read that fails (not JSON, too large) removes its listener as well.
    const bad: Storage = { ...storage, get: async () => ({ body: Readable.from([Buffer.alloc(64, 1)]), size: 0 }) }
    await expect(getJsonVersion(bad, 'big.json', run.signal, 16)).rejects.toThrow(/larger than 16 bytes/)
    expect(getEventListeners(run.signal, 'abort')).toHaveLength(0)
  })
})

describe('S3 storage: conditional writes', () => {
  it('get returns the ETag; If-Match on it succeeds, on an older one fails with 412, on a missing key with 404', async () => {
    store.proxy.conditions = 'enforce'
    const storage = s3()
    await storage.put('doc.json', json({ n: 1 }), { ...plain, ifNoneMatch: '*' })
    const first = await getJsonVersion(storage, 'doc.json')
    expect(first?.value).toEqual({ n: 1 })
    expect(first?.etag).toMatch(/^"[0-9a-f]{32}"$/)
    await storage.put('doc.json', json({ n: 2 }), { ...plain, ifMatch: first!.etag! })
    const stale = await storage.put('doc.json', json({ n: 3 }), { ...plain, ifMatch: first!.etag! }).catch((e) => e)
    expect(stale).toBeInstanceOf(PreconditionFailedError)
    expect((stale as PreconditionFailedError).status).toBe(412)
    expect((stale as StorageError).retryable).toBe(false)
    expect((stale as StorageError).fatal).toBe(false)
    const gone = await storage.put('nope.json', json({}), { ...plain, ifMatch: first!.etag! }).catch((e) => e)
    expect(gone).toBeInstanceOf(PreconditionFailedError)
    expect((gone as PreconditionFailedError).status).toBe(404)
    expect((await getJsonVersion(storage, 'doc.json'))?.value).toEqual({ n: 2 })
  })

  it('If-None-Match: * on an existing key fails with 412; a conflicting write in flight with 409', async () => {
    store.proxy.conditions = 'enforce'
    const storage = s3()
    await storage.put('once.json', json({ a: 1 }), plain)
    const exists = await storage.put('once.json', json({ a: 2 }), { ...plain, ifNoneMatch: '*' }).catch((e) => e)
    expect((exists as PreconditionFailedError).status).toBe(412)
    store.proxy.fault = limited(
      (req) => req.method === 'PUT',
      1,
      faults.status(409, 'ConditionalRequestConflict', 'A conflicting conditional operation is in progress'),
    )
    const conflict = await storage.put('other.json', json({}), { ...plain, ifNoneMatch: '*' }).catch((e) => e)
    expect(conflict).toBeInstanceOf(PreconditionFailedError)
    expect((conflict as PreconditionFailedError).status).toBe(409)
  })

  it('a store that answers 501 NotImplemented gets the write without conditions, and is remembered', async () => {
    const storage = s3()
    const refusal = limited(
      (req) => req.method === 'PUT' && req.headers['if-none-match'] !== undefined,
      5,
      faults.status(501, 'NotImplemented', 'A header you provided implies functionality that is not implemented'),
    )
    store.proxy.fault = refusal
    await storage.put('old-server.json', json({ v: 1 }), { ...plain, ifNoneMatch: '*' })
    expect(storage.conditionsIgnored).toBe(true)
    expect(refusal.hits()).toBe(1)
    expect((await getJsonVersion(storage, 'old-server.json'))?.value).toEqual({ v: 1 })
    // From now on it writes plainly: no second refusal.
    await storage.put('old-server.json', json({ v: 2 }), { ...plain, ifNoneMatch: '*' })
    expect(refusal.hits()).toBe(1)
  })

  it('the probe: one request, 412/404 where conditions hold, the tiny probe object where they are ignored', async () => {
    store.proxy.conditions = 'enforce'
    const enforcing = s3()
    store.proxy.requests.length = 0
    const ctx = { storage: enforcing, prefix: 'probe-a', publicRead: false }
    expect(await conditionsHonoured(ctx)).toBe(true)
    expect(await conditionsHonoured(ctx)).toBe(true)
    expect(store.proxy.requests.map((r) => `${r.method} ${r.status}`)).toEqual(['PUT 404'])
    expect((await enforcing.head(probeObjectKey('probe-a'))) ?? 'absent').toBe('absent')

    store.proxy.conditions = 'ignore'
    const ignoring = s3()
    expect(await conditionsHonoured({ storage: ignoring, prefix: 'probe-b', publicRead: false })).toBe(false)
    expect(await ignoring.head(probeObjectKey('probe-b'))).toBeDefined()
    expect(classify('probe-b', probeObjectKey('probe-b'))).toEqual({ kind: 'probe' })
  })
})

/** An in-memory store with S3's conditional semantics, and a hook that runs just before each write lands. */
class MemoryStore implements Storage {
  readonly description = 'memory'
  readonly writable = true
  readonly objects = new Map<string, { body: Buffer; etag: string }>()
  beforeWrite: ((key: string) => void) | undefined
  writes = 0
  private version = 0

  constructor(private readonly honours = true) {}

  head(key: string) {
    const o = this.objects.get(key)
    return Promise.resolve(o ? { size: o.body.length } : undefined)
  }

  get(key: string): Promise<StoredObject | undefined> {
    const o = this.objects.get(key)
    return Promise.resolve(o ? { body: Readable.from([o.body]), size: o.body.length, etag: o.etag } : undefined)
  }

  put(key: string, body: Readable | Buffer, options: PutOptions): Promise<void> {
    this.beforeWrite?.(key)
    const current = this.objects.get(key)
    if (this.honours) {
      if (options.ifNoneMatch === '*' && current) return Promise.reject(new PreconditionFailedError('exists', 412))
      if (options.ifMatch !== undefined && !current) return Promise.reject(new PreconditionFailedError('gone', 404))
      if (options.ifMatch !== undefined && current!.etag !== options.ifMatch)
        return Promise.reject(new PreconditionFailedError('changed', 412))
    }
    this.writes += 1
    this.objects.set(key, { body: body as Buffer, etag: `"v${++this.version}"` })
    return Promise.resolve()
  }

  read(key: string): unknown {
    return JSON.parse(this.objects.get(key)!.body.toString('utf8'))
  }
}

function clock(random = () => 0.5): RetryPolicy & { sleeps: number[] } {
  const sleeps: number[] = []
  return { attempts: 5, baseDelayMs: 100, maxDelayMs: 400, sleep: async (ms) => void sleeps.push(ms), random, sleeps }
}

/** A set of names, as a shared document: each writer adds its own. */
function namesDoc(key: string, mine: string): SharedDocument<string[]> {
  return {
    key,
    parse: (raw) => {
      if (!Array.isArray(raw)) throw new Error('not a list')
      return raw as string[]
    },
    merge: (stored) => (stored?.includes(mine) ? undefined : [...(stored ?? []), mine].sort()),
  }
}

describe('read-modify-write of a shared document', () => {
  it('a concurrent write between read and write: 412, read again, merge, write; jittered back-off on the injected clock', async () => {
    const storage = new MemoryStore()
    const retry = clock()
    let interfere = 2
    storage.beforeWrite = (key) => {
      // Another producer lands its own write just before ours, twice.
      if (key === 'names.json' && interfere-- > 0)
        storage.objects.set(key, { body: json([`other${interfere}`]), etag: `"other${interfere}"` })
    }
    const ctx = { storage, prefix: 'p', publicRead: false, conflictRetry: retry }
    expect(await updateShared(ctx, namesDoc('names.json', 'me'))).toBe(true)
    expect(storage.read('names.json')).toEqual(['me', 'other0'])
    expect(retry.sleeps).toEqual([50, 100]) // half of 100, then of 200 (random() = 0.5)
  })

  it('stops when what is stored already holds its part (nothing written), and gives up after the attempts', async () => {
    const storage = new MemoryStore()
    storage.objects.set('names.json', { body: json(['me']), etag: '"x"' })
    const ctx = { storage, prefix: 'p', publicRead: false, conflictRetry: clock() }
    expect(await updateShared(ctx, namesDoc('names.json', 'me'))).toBe(false)
    expect(storage.writes).toBe(0)

    const busy = new MemoryStore()
    const retry = clock(() => 1)
    busy.beforeWrite = () => busy.objects.set('busy.json', { body: json([]), etag: `"${Math.random()}"` })
    await expect(
      updateShared(
        { storage: busy, prefix: 'p', publicRead: false, conflictRetry: retry },
        namesDoc('busy.json', 'me'),
      ),
    ).rejects.toThrow(/kept changing for 5 attempts/)
    expect(retry.sleeps).toEqual([100, 200, 400, 400])
  })

  it('on a store that ignores conditions: reads back after writing and writes again when its part was replaced', async () => {
    const storage = new MemoryStore(false)
    let replaced = false
    const real = storage.put.bind(storage)
    storage.put = async (key, body, options) => {
      await real(key, body, options)
      // Another producer's unconditional write lands right after ours, without our name.
      if (key === 'names.json' && !replaced) {
        replaced = true
        storage.objects.set(key, { body: json(['other']), etag: '"other"' })
      }
    }
    const ctx = { storage, prefix: 'ignoring', publicRead: false, conflictRetry: clock() }
    expect(await conditionsHonoured(ctx)).toBe(false)
    expect(await updateShared(ctx, namesDoc('names.json', 'me'))).toBe(true)
    expect(storage.read('names.json')).toEqual(['me', 'other'])
  })

  it("a writer's own earlier read: written on its ETag with no read, and a change since is read and merged", async () => {
    const storage = new MemoryStore()
    let gets = 0
    const get = storage.get.bind(storage)
    storage.get = (key) => ((gets += 1), get(key))
    const ctx = { storage, prefix: 'p', publicRead: false, conflictRetry: clock() }
    // Absent when this run looked: created with If-None-Match: *, and nothing read.
    expect(await updateShared(ctx, namesDoc('new.json', 'me'), { earlier: { exists: false } })).toBe(true)
    expect([gets, storage.read('new.json')]).toEqual([0, ['me']])
    // Read as ["a"] at "v1"; another producer wrote ["a", "b"] since: 412, read again, merge, write.
    storage.objects.set('old.json', { body: json(['a', 'b']), etag: '"v2"' })
    const earlier = { exists: true, value: ['a'], etag: '"v1"' }
    expect(await updateShared(ctx, namesDoc('old.json', 'me'), { earlier })).toBe(true)
    expect(storage.read('old.json')).toEqual(['a', 'b', 'me'])
    expect(gets).toBe(1)
  })

  it('on a store that ignores conditions an earlier read is not trusted: it reads before writing', async () => {
    const storage = new MemoryStore(false)
    let gets = 0
    const get = storage.get.bind(storage)
    storage.get = (key) => ((gets += 1), get(key))
    storage.objects.set('names.json', { body: json(['other']), etag: '"v2"' })
    const ctx = { storage, prefix: 'ignoring-earlier', publicRead: false, conflictRetry: clock() }
    expect(await updateShared(ctx, namesDoc('names.json', 'me'), { earlier: { exists: false } })).toBe(true)
    // The stale "absent" would have replaced the other producer's name; the fresh read keeps it.
    expect(storage.read('names.json')).toEqual(['me', 'other'])
    expect(gets).toBeGreaterThanOrEqual(1)
  })

  it('a stored document that is not ours is replaced (If-Match on its ETag)', async () => {
    const storage = new MemoryStore()
    storage.objects.set('names.json', { body: Buffer.from('not json'), etag: '"junk"' })
    const ctx = { storage, prefix: 'p', publicRead: false, conflictRetry: clock() }
    expect(await updateShared(ctx, namesDoc('names.json', 'me'))).toBe(true)
    expect(storage.read('names.json')).toEqual(['me'])
  })
})

const pin = { identity: 'lib', revision: 'a'.repeat(40), version: '1.0.0' } as Pin
const packageKey = 'f'.repeat(64)

function entry(targetName: string, scipioKey: string, sha256: string): IndexEntry {
  return {
    targetName,
    scipioKey,
    format: 'tar.zst',
    key: contentObjectKey('p', targetName, scipioKey, sha256, 'tar.zst'),
    size: 10,
    sha256,
  }
}

describe('merging package indexes', () => {
  const k1 = '1'.repeat(64)
  const k2 = '2'.repeat(64)
  const when = new Date('2026-11-29T00:00:00Z')

  it('keeps another producer’s targets, keeps a stored entry with our key, adds what is missing', () => {
    const stored = newIndex(packageKey, pin, [entry('A', k1, 'a'.repeat(64)), entry('C', k1, 'c'.repeat(64))], when)
    const ours = newIndex(packageKey, pin, [entry('A', k1, 'd'.repeat(64)), entry('B', k2, 'b'.repeat(64))], when)
    const merged = mergeIndex(stored, ours)!
    expect(merged.targets.map((t) => [t.targetName, t.sha256[0]])).toEqual([
      ['A', 'a'],
      ['B', 'b'],
      ['C', 'c'],
    ])
  })

  it('adopts a stored index that lists all our targets (nothing to write), unless its entry was found damaged', () => {
    const stored = newIndex(packageKey, pin, [entry('A', k1, 'a'.repeat(64))], when)
    const ours = newIndex(packageKey, pin, [entry('A', k1, 'd'.repeat(64))], when)
    expect(listsAll(stored, ours.targets)).toBe(true)
    expect(mergeIndex(stored, ours)).toBeUndefined()
    const damaged = (e: IndexEntry) => e.sha256 === 'a'.repeat(64)
    expect(mergeIndex(stored, ours, damaged)!.targets.map((t) => t.sha256[0])).toEqual(['d'])
    // Another Scipio key for the same target (another dependency context): ours goes first, the stored one stays.
    const other = newIndex(packageKey, pin, [entry('A', k2, 'e'.repeat(64))], when)
    expect(mergeIndex(stored, other)!.targets.map((t) => t.scipioKey)).toEqual([k2, k1])
  })

  it('readers accept content-addressed keys naming the entry’s bytes and legacy fixed keys, nothing else', () => {
    const sha = 'a'.repeat(64)
    const doc = (key: string) => ({
      schema: newIndex(packageKey, pin, [], when).schema,
      packageKey,
      targets: [{ targetName: 'A', scipioKey: k1, format: 'tar.zst', key, size: 10, sha256: sha }],
    })
    expect(parseIndex(doc(contentObjectKey('p', 'A', k1, sha, 'tar.zst')), 'p', packageKey).targets).toHaveLength(1)
    expect(parseIndex(doc(archiveObjectKey('p', 'A', k1, 'tar.zst')), 'p', packageKey).targets).toHaveLength(1)
    expect(() => parseIndex(doc(contentObjectKey('p', 'A', k1, 'b'.repeat(64), 'tar.zst')), 'p', packageKey)).toThrow(
      /names other bytes/,
    )
    expect(() => parseIndex(doc(contentObjectKey('q', 'A', k1, sha, 'tar.zst')), 'p', packageKey)).toThrow()
  })

  it('prune classifies content-addressed archives and .aar copies as ours, the fixed .aar as scipio-s3-storage’s', () => {
    const sha = 'a'.repeat(64)
    expect(classify('p', contentObjectKey('p', 'A', k1, sha, 'tar.zst'))).toEqual({ kind: 'archive' })
    expect(classify('p', contentObjectKey('p', 'A', k1, sha, 'aar'))).toEqual({ kind: 'archive' })
    expect(classify('p', archiveObjectKey('p', 'A', k1, 'tar.gz'))).toEqual({ kind: 'archive' })
    expect(classify('p', `p/A/${k1}.aar`)).toBeUndefined()
  })
})
