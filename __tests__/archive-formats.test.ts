import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { indexDocument, parseIndex, type IndexEntry, type PackageIndex } from '../src/bucket/cache-index.js'
import { contentObjectKey } from '../src/bucket/layout.js'
import { Formats } from '../src/constants.js'
import { replaceEntry, replaceInManifest } from '../src/cli/repack.js'
import { runAction, s3TestInputs } from './helpers/action.js'
import { awsEnv, runCli, storeFlags } from './helpers/cli.js'
import { earlierBundle } from './helpers/earlier-release.js'
import { useStore } from './helpers/store.js'
import { snapshotTree } from './helpers/tree.js'
import { exampleTargets, exampleWorkspace } from './helpers/workspace.js'

const prefix = 'p'
const hex = (c: string) => c.repeat(64)
const entry = (targetName: string, key: string, format: IndexEntry['format'], sha = 'e'): IndexEntry => ({
  targetName,
  scipioKey: hex(key),
  format,
  key: contentObjectKey(prefix, targetName, hex(key), hex(sha), format),
  size: 10,
  sha256: hex(sha),
})
const index = (targets: IndexEntry[]): PackageIndex => ({
  schema: Formats.index,
  packageKey: hex('f'),
  package: { identity: 'pkg' },
  createdAt: '2026-01-01T00:00:00.000Z',
  targets,
})

describe('code.tar.zst entries in package indexes (laterFormats)', () => {
  const newest = entry('A', 'a', 'code.tar.zst')
  const earlier = entry('A', 'b', 'tar.zst')
  const other = entry('B', 'c', 'tar.zst')

  it('are kept apart, where earlier releases do not look, and read back in order, the later format first', () => {
    const doc = indexDocument(index([newest, earlier, other]))
    expect(doc.targets).toEqual([earlier, other]) // what an earlier release reads: valid on its own
    expect(doc.contexts).toBeUndefined()
    expect(doc.laterFormats).toEqual([newest])
    expect(parseIndex(JSON.parse(JSON.stringify(doc)), prefix, hex('f')).targets).toEqual([newest, earlier, other])
  })

  it('are refused where an earlier release would read them, and nothing but a later format is taken from the list', () => {
    const doc = indexDocument(index([other]))
    expect(() => parseIndex({ ...doc, targets: [newest] }, prefix, hex('f'))).toThrow(/unknown format/)
    expect(() => parseIndex({ ...doc, laterFormats: [entry('C', 'd', 'tar.zst')] }, prefix, hex('f'))).toThrow(
      /laterFormats list holds/,
    )
    expect(() =>
      parseIndex(
        { ...doc, laterFormats: [{ ...newest, scipioKey: other.scipioKey, targetName: 'B' }] },
        prefix,
        hex('f'),
      ),
    ).toThrow()
  })

  it('repack replaces one entry and leaves the rest; a document that no longer names it is left alone', () => {
    const repacked = { ...entry('B', 'c', 'code.tar.zst', '9'), compression: 'zstd-22-w24' }
    const replaced = replaceEntry(index([newest, other]), other.key, repacked)!
    expect(replaced.targets).toEqual([newest, repacked])
    expect(replaceEntry(replaced, other.key, repacked)).toBeUndefined()
    const marker = { schema: Formats.complete, packages: [{ ...indexDocument(index([other])), schema: undefined }] }
    const updated = replaceInManifest(JSON.parse(JSON.stringify(marker)), new Map([[other.key, repacked]]), prefix)!
    const pkg = (updated.packages as Record<string, unknown>[])[0]!
    expect(pkg.targets).toEqual([])
    expect(pkg.laterFormats).toEqual([repacked])
    expect(replaceInManifest(updated, new Map([[other.key, repacked]]), prefix)).toBeUndefined()
  })
})

const bucket = 'formats-cache'
const store = useStore([bucket])
const inputs = (under: string) => ({ ...s3TestInputs(store.endpoint, bucket), prefix: under })

async function indexDocuments(under: string): Promise<Record<string, unknown>[]> {
  const keys = await store.listKeys(bucket, `${under}/.scipio-s3-cache/packages/`)
  return Promise.all(
    keys.map(
      async (key) => (await (await fetch(`${store.s3.endpoint}/${bucket}/${key}`)).json()) as Record<string, unknown>,
    ),
  )
}

const entriesOf = (doc: Record<string, unknown>, list: string) => (doc[list] ?? []) as IndexEntry[]

describe('an earlier release meets code.tar.zst entries', () => {
  it('its consumer misses them without calling anything damaged; its producer keeps what it can read', async () => {
    const under = 'compat'
    const producerWs = await exampleWorkspace()
    const stored = await runAction({ ...inputs(under), mode: 'producer', 'package-directory': producerWs })
    expect(stored.code, stored.stdout).toBe(0)
    const docs = await indexDocuments(under)
    expect(
      docs
        .flatMap((d) => entriesOf(d, 'laterFormats'))
        .map((e) => e.targetName)
        .sort(),
    ).toEqual(exampleTargets)
    expect(docs.every((d) => entriesOf(d, 'targets').length === 0)).toBe(true)

    const earlier = path.join(earlierBundle(), 'index.js')
    const consumer = await runAction(
      { ...inputs(under), mode: 'consumer', 'package-directory': await exampleWorkspace() },
      {},
      earlier,
    )
    expect(consumer.code, consumer.stdout).toBe(0)
    expect(JSON.parse(consumer.outputs.restored!)).toEqual([])
    expect(consumer.stdout).not.toMatch(/Cannot use|integrity|unsafe archive|corrupt|damaged/i)
    expect(await indexDocuments(under)).toEqual(docs)

    // An earlier producer beside it: it builds, stores tar.zst, and writes indexes both releases read.
    const mixed = await runAction(
      { ...inputs(under), mode: 'consumer,producer', 'package-directory': await exampleWorkspace() },
      {},
      earlier,
    )
    expect(mixed.code, mixed.stdout).toBe(0)
    expect(JSON.parse(mixed.outputs.uploaded!)).toEqual(exampleTargets)
    const after = await indexDocuments(under)
    expect(after.flatMap((d) => entriesOf(d, 'targets')).every((e) => e.format === 'tar.zst')).toBe(true)

    // This release reads what the earlier one stored, and stores nothing again.
    const ws = await exampleWorkspace()
    const again = await runAction({ ...inputs(under), mode: 'consumer,producer', 'package-directory': ws })
    expect(again.code, again.stdout).toBe(0)
    expect(JSON.parse(again.outputs.restored!)).toEqual(exampleTargets)
    expect(JSON.parse(again.outputs.uploaded!)).toEqual([])
    expect(await snapshotTree(path.join(ws, 'XCFrameworks'))).toEqual(
      await snapshotTree(path.join(producerWs, 'XCFrameworks')),
    )
  })
})

describe('scipio-s3-cache repack', () => {
  it('packs every archive again while consumers restore, replacing index and manifest entries; the old objects stay', async () => {
    const under = 'repack'
    const producerWs = await exampleWorkspace()
    const stored = await runAction({ ...inputs(under), mode: 'producer', 'package-directory': producerWs })
    expect(stored.code, stored.stdout).toBe(0)
    const before = (await indexDocuments(under)).flatMap((d) => entriesOf(d, 'laterFormats'))
    const flags = ['repack', ...storeFlags(bucket, store.endpoint, under), '--older-than', '0']

    const dry = await runCli([...flags, '--dry-run'], { cwd: producerWs, env: awsEnv })
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(`${before.length} archives to repack`)
    expect((await indexDocuments(under)).flatMap((d) => entriesOf(d, 'laterFormats'))).toEqual(before)

    const consume = async () => {
      const ws = await exampleWorkspace()
      const run = await runAction({ ...inputs(under), mode: 'consumer', 'package-directory': ws })
      return { run, tree: await snapshotTree(path.join(ws, 'XCFrameworks')) }
    }
    const [repack, ...consumers] = await Promise.all([
      runCli(flags, { cwd: producerWs, env: awsEnv }),
      consume(),
      consume(),
      consume(),
    ])
    expect(repack.code, repack.stderr).toBe(0)
    const want = await snapshotTree(path.join(producerWs, 'XCFrameworks'))
    for (const { run, tree } of consumers) {
      expect(run.code, run.stdout).toBe(0)
      expect(JSON.parse(run.outputs.restored!)).toEqual(exampleTargets)
      expect(tree).toEqual(want)
    }

    const after = (await indexDocuments(under)).flatMap((d) => entriesOf(d, 'laterFormats'))
    const repacked = after.filter((e) => e.compression === 'zstd-22-w24')
    expect(repack.stdout).toContain(`Repacked ${repacked.length} archives`)
    expect(repacked.length).toBeGreaterThan(0)
    for (const e of repacked) {
      const old = before.find((b) => b.targetName === e.targetName)!
      expect(e.key).not.toBe(old.key)
      expect(e.size).toBeLessThan(old.size)
    }
    const keys = await store.listKeys(bucket, `${under}/`)
    for (const e of [...before, ...after]) expect(keys).toContain(e.key)
    const markerKey = keys.find((k) => k.includes('/.scipio-s3-cache/complete/'))!
    const marker = await (await fetch(`${store.s3.endpoint}/${bucket}/${markerKey}`)).text()
    for (const e of repacked) expect(marker).toContain(e.key)

    const last = await consume()
    expect(JSON.parse(last.run.outputs.restored!)).toEqual(exampleTargets)
    expect(last.tree).toEqual(want)
    const second = await runCli(flags, { cwd: producerWs, env: awsEnv })
    expect(second.code).toBe(0)
    expect(second.stdout).toContain(`${repacked.length} already repacked`)
    expect(second.stdout).toContain('Repacked 0 archives')
  })
})
