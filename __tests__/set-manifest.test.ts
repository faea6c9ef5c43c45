import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { newIndex, type IndexEntry } from '../src/bucket/cache-index.js'
import { archiveObjectKey } from '../src/bucket/layout.js'
import { manifestArchiveKeys, manifestDocument, parseSetManifest } from '../src/bucket/set-manifest.js'
import { planPrune } from '../src/cli/prune.js'
import type { KeyPlan } from '../src/keys/keys.js'
import type { Storage } from '../src/storage/index.js'

const hex = (c: string) => c.repeat(64)
const prefix = 'p'

function entry(targetName: string, key: string): IndexEntry {
  return {
    targetName,
    scipioKey: hex(key),
    format: 'tar.zst',
    key: archiveObjectKey(prefix, targetName, hex(key), 'tar.zst'),
    size: 10,
    sha256: hex('e'),
    buildMs: 1200,
  }
}

const now = new Date('2026-01-01T00:00:00Z')
const indexes = [
  newIndex(
    hex('1'),
    { identity: 'one', kind: 'remoteSourceControl', location: 'x', revision: hex('a').slice(0, 40) },
    [entry('A', 'a'), entry('B', 'b')],
    now,
  ),
  newIndex(
    hex('2'),
    { identity: 'two', kind: 'remoteSourceControl', location: 'y', version: '1.0.0' },
    [entry('C', 'c')],
    now,
  ),
]
const marker = () =>
  JSON.parse(JSON.stringify({ schema: 'x', packages: manifestDocument(indexes) })) as {
    packages: Record<string, unknown>[]
  }

describe('the set manifest', () => {
  it('round-trips every entry field, per package key, in the run order', () => {
    const parsed = parseSetManifest(marker(), prefix, [hex('2'), hex('1')])!
    expect([...parsed.keys()]).toEqual([hex('2'), hex('1')])
    expect(parsed.get(hex('1'))!.targets).toEqual(indexes[0]!.targets)
    expect(parsed.get(hex('1'))!.package.identity).toBe('one')
    expect(parsed.get(hex('2'))!.targets).toEqual(indexes[1]!.targets)
  })

  it('is absent from an older marker, and refused when it is not exactly this run’s packages or an entry is bad', () => {
    expect(parseSetManifest({ targets: [] }, prefix, [hex('1')])).toBeUndefined()
    expect(() => parseSetManifest(marker(), prefix, [hex('1')])).toThrow(/not this build's/)
    expect(() => parseSetManifest(marker(), prefix, [hex('1'), hex('3')])).toThrow(/not this build's/)
    const twice = marker()
    twice.packages.push(twice.packages[0]!)
    expect(() => parseSetManifest(twice, prefix, [hex('1'), hex('2')])).toThrow(/twice/)
    const moved = marker()
    ;(moved.packages[0]!.targets as { key: string }[])[0]!.key = 'elsewhere/A.tar.zst'
    expect(() => parseSetManifest(moved, prefix, [hex('1'), hex('2')])).toThrow(/archive key is not where/)
    expect(() => parseSetManifest({ packages: {} }, prefix, [hex('1')])).toThrow(/not a list/)
  })

  it('keeps, in a prune, the archives of a marker that stays', async () => {
    const markerKey = `${prefix}/.scipio-s3-cache/complete/${hex('9')}.json`
    const body = JSON.stringify({ ...marker(), targets: [] })
    const storage: Storage = {
      description: 'memory',
      writable: false,
      head: () => Promise.resolve(undefined),
      get: (key) =>
        Promise.resolve(
          key === markerKey ? { body: Readable.from([Buffer.from(body)]), size: Buffer.byteLength(body) } : undefined,
        ),
      put: () => Promise.resolve(),
    }
    const old = new Date('2025-01-01T00:00:00Z')
    const archives = indexes.flatMap((i) => i.targets.map((t) => t.key))
    const objects = [markerKey, ...archives, archiveObjectKey(prefix, 'D', hex('d'), 'tar.zst')].map((key) => ({
      key,
      size: 1,
      lastModified: old,
    }))
    const plan: KeyPlan = { packages: [], setKey: hex('9'), completeKey: markerKey }
    const pruned = await planPrune({
      prefix,
      plans: [plan],
      olderThanDays: 30,
      now,
      storage,
      admin: { list: () => Promise.resolve(objects), delete: () => Promise.resolve([]) },
    })
    expect(pruned.candidates.map((c) => c.key)).toEqual([archiveObjectKey(prefix, 'D', hex('d'), 'tar.zst')])
    expect(manifestArchiveKeys(JSON.parse(body), prefix).sort()).toEqual(archives.sort())
  })
})
