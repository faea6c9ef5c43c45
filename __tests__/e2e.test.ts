import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runAction, type ActionRun, s3TestInputs } from './helpers/action.js'
import { exampleTargets, exampleWorkspace, readDoubleLog } from './helpers/workspace.js'
import { snapshotTree } from './helpers/tree.js'
import { useStore } from './helpers/store.js'
import { isRunsRequest } from './helpers/records.js'

const bucket = 'scipio-cache'
const allTargets = exampleTargets

const store = useStore([bucket])

function s3Inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...s3TestInputs(store.proxy.endpoint, bucket),
    ...extra,
  }
}

async function listKeys(prefix = ''): Promise<string[]> {
  const out = await store.s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }))
  return (out.Contents ?? []).map((o) => o.Key!).sort()
}

function json(run: ActionRun, name: string): string[] {
  return JSON.parse(run.outputs[name] ?? 'null') as string[]
}

function expectOk(run: ActionRun) {
  expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0)
}

describe('end to end through dist/index.js against an S3 server', () => {
  const prefix = 'e2e'
  let producerWs: string

  it('a producer builds and uploads every target, publicly readable with should-publish', async () => {
    producerWs = await exampleWorkspace()
    const log = path.join(producerWs, 'double.log')
    store.proxy.requests.length = 0
    const run = await runAction(
      s3Inputs({ mode: 'consumer,producer', prefix, 'package-directory': producerWs, 'should-publish': 'true' }),
      { SCIPIO_TEST_DOUBLE_LOG: log },
    )
    expectOk(run)
    expect(json(run, 'built')).toEqual(allTargets)
    expect(json(run, 'uploaded')).toEqual(allTargets)
    expect(json(run, 'restored')).toEqual([])
    expect(run.outputs['cache-hit']).toBe('false')
    expect(run.outputs['uploaded-count']).toBe('7')
    expect((await readDoubleLog(log)).filter((e) => e.event === 'built')).toHaveLength(7)

    const keys = await listKeys(prefix)
    const archives = keys.filter((k) => /\.tar\.(zst|gz)$/.test(k))
    expect(archives.map((k) => k.split('/')[1])).toEqual(allTargets)
    expect(keys.filter((k) => k.includes('/.scipio-s3-cache/packages/'))).toHaveLength(5)
    expect(keys.filter((k) => k.includes('/.scipio-s3-cache/complete/'))).toHaveLength(1)

    // s3rver does not enforce ACLs, so check what was sent: every object write carries public-read, but the run's
    // record, which is never public (it names the repository and its branches).
    const writes = store.proxy.requests.filter(
      (r) => r.method === 'PUT' || (r.method === 'POST' && r.url.includes('uploads')),
    )
    expect(writes.length).toBeGreaterThanOrEqual(keys.length)
    for (const w of writes.filter((r) => !r.url.includes('partNumber=')))
      expect(w.headers['x-amz-acl'], w.url).toBe(isRunsRequest(w) ? undefined : 'public-read')
    expect(writes.filter(isRunsRequest)).toHaveLength(1)
    // And every object answers an anonymous GET.
    for (const key of keys) {
      const res = await fetch(`${store.s3.endpoint}/${bucket}/${key}`)
      expect(res.status, key).toBe(200)
      await res.arrayBuffer()
    }
    expect(run.summary).toContain('<table>')
    expect(run.summary).toContain('Kingfisher')
  })

  it('a consumer into an empty folder restores all targets, builds nothing and reports a cache hit', async () => {
    const ws = await exampleWorkspace()
    const out = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'out-')), 'Frameworks')
    const log = path.join(ws, 'double.log')
    const run = await runAction(s3Inputs({ prefix, 'package-directory': ws, 'output-directory': out }), {
      SCIPIO_TEST_DOUBLE_LOG: log,
    })
    expectOk(run)
    expect(run.outputs['cache-hit']).toBe('true')
    expect(json(run, 'restored')).toEqual(allTargets)
    expect(json(run, 'built')).toEqual([])
    expect(json(run, 'uploaded')).toEqual([])
    expect(run.outputs['restored-count']).toBe('7')
    expect(await readDoubleLog(log)).toEqual([]) // the producer marked this exact set complete: no Scipio run at all
    expect(await snapshotTree(out)).toEqual(await snapshotTree(path.join(producerWs, 'XCFrameworks')))
  })

  it('without the completion marker, Scipio runs and keeps every restored framework', async () => {
    const ws = await exampleWorkspace()
    await fs.appendFile(path.join(ws, 'Package.swift'), '\n// a manifest change: another set key\n')
    const log = path.join(ws, 'double.log')
    const run = await runAction(s3Inputs({ prefix, 'package-directory': ws }), { SCIPIO_TEST_DOUBLE_LOG: log })
    expectOk(run)
    expect(json(run, 'restored')).toEqual(allTargets)
    const events = await readDoubleLog(log)
    expect(
      events
        .filter((e) => e.event === 'skipped')
        .map((e) => e.target)
        .sort(),
    ).toEqual(allTargets)
    expect(json(run, 'built')).toEqual([])
    expect(run.outputs['cache-hit']).toBe('true')
  })

  it('after one pin changes, exactly that package is built and uploaded', async () => {
    const ws = await exampleWorkspace()
    const resolvedPath = path.join(ws, 'Package.resolved')
    const resolved = await fs.readFile(resolvedPath, 'utf8')
    await fs.writeFile(
      resolvedPath,
      resolved
        .replace('5c9a1e3d7f9b1d3f5b7d9f1b3d5f7b9d1f3b5d7f', '6d0b2f4e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a')
        .replace('"1.6.2"', '"1.6.3"'),
    )
    const log = path.join(ws, 'double.log')
    const run = await runAction(
      s3Inputs({ mode: 'consumer,producer', prefix, 'package-directory': ws, 'should-publish': 'true' }),
      { SCIPIO_TEST_DOUBLE_LOG: log },
    )
    expectOk(run)
    expect(json(run, 'built')).toEqual(['Logging'])
    expect(json(run, 'uploaded')).toEqual(['Logging'])
    expect(json(run, 'restored')).toEqual(allTargets.filter((t) => t !== 'Logging'))
    expect(run.outputs['cache-hit']).toBe('false')
    expect((await readDoubleLog(log)).filter((e) => e.event === 'built').map((e) => e.target)).toEqual(['Logging'])
    expect((await listKeys(`${prefix}/Logging/`)).length).toBe(2)
    // Summary totals: 6 restored, 1 built, 1 uploaded, and an estimate from this run's build time per target.
    expect(run.summary).toMatch(
      /Downloaded \d[\d.]* (B|KiB|MiB), uploaded \d[\d.]* (B|KiB|MiB)\. Estimated time saved: [\d.]+ m?s \(6 restored × [\d.]+ m?s, this run's average Scipio build time per target, minus the restore time\)\./,
    )
  })

  it('a public-URL consumer restores everything with no credentials', async () => {
    const ws = await exampleWorkspace()
    const run = await runAction({ 'public-url': `${store.s3.endpoint}/${bucket}`, prefix, 'package-directory': ws })
    expectOk(run)
    expect(run.outputs['cache-hit']).toBe('true')
    expect(json(run, 'restored')).toEqual(allTargets)
    expect(await snapshotTree(path.join(ws, 'XCFrameworks'))).toEqual(
      await snapshotTree(path.join(producerWs, 'XCFrameworks')),
    )
  })

  it('sends no ACL at all without should-publish', async () => {
    const ws = await exampleWorkspace()
    store.proxy.requests.length = 0
    const run = await runAction(s3Inputs({ mode: 'producer', prefix: 'private', 'package-directory': ws }))
    expectOk(run)
    expect(json(run, 'uploaded')).toEqual(allTargets)
    const writes = store.proxy.requests.filter((r) => r.method === 'PUT' || r.method === 'POST')
    expect(writes.length).toBeGreaterThan(0)
    for (const w of writes) expect(w.headers['x-amz-acl']).toBeUndefined()
  })

  it('a producer run after a full restore uploads nothing', async () => {
    const ws = await exampleWorkspace()
    const run = await runAction(
      s3Inputs({ mode: 'consumer,producer', prefix, 'package-directory': ws, 'should-publish': 'true' }),
    )
    expectOk(run)
    expect(json(run, 'uploaded')).toEqual([])
    expect(json(run, 'built')).toEqual([])
    expect(run.outputs['cache-hit']).toBe('true')
  })
})

describe('archives shared between indexes', () => {
  const prefix = 'shared'
  it('a producer with another key-salt stores its archives beside the stored ones, never over them', async () => {
    const first = await exampleWorkspace()
    expectOk(await runAction(s3Inputs({ mode: 'producer', prefix, 'key-salt': 'a', 'package-directory': first })))
    const second = await exampleWorkspace()
    const run = await runAction(
      s3Inputs({ mode: 'consumer,producer', prefix, 'key-salt': 'b', 'package-directory': second }),
    )
    expectOk(run)
    expect(json(run, 'built')).toEqual(allTargets) // nothing indexed under salt b yet
    // Its own bytes (the tar holds modification times) under their own names: salt a's archives stay as they are.
    expect(json(run, 'uploaded')).toEqual(allTargets)
    expect((await listKeys(`${prefix}/Logging/`)).length).toBeGreaterThanOrEqual(2)
    const consumer = await runAction(
      s3Inputs({ prefix, 'key-salt': 'a', 'package-directory': await exampleWorkspace() }),
    )
    expectOk(consumer)
    expect(json(consumer, 'restored')).toEqual(allTargets)
    expect(consumer.stdout).not.toContain('::warning::')
  })

  it('a damaged archive is replaced by the next consumer,producer run', async () => {
    // Salt a's and salt b's archives of Logging: damage them all.
    const keys = await listKeys(`${prefix}/Logging/`)
    expect(keys.length).toBeGreaterThanOrEqual(1)
    for (const Key of keys)
      await store.s3.client().send(new PutObjectCommand({ Bucket: bucket, Key, Body: Buffer.from('damaged') }))
    const healing = await runAction(
      s3Inputs({ mode: 'consumer,producer', prefix, 'key-salt': 'a', 'package-directory': await exampleWorkspace() }),
    )
    expectOk(healing)
    expect(json(healing, 'built')).toEqual(['Logging'])
    expect(json(healing, 'uploaded')).toEqual(['Logging'])
    const consumer = await runAction(
      s3Inputs({ prefix, 'key-salt': 'a', 'package-directory': await exampleWorkspace() }),
    )
    expect(json(consumer, 'restored')).toEqual(allTargets)
    expect(consumer.outputs['cache-hit']).toBe('true')
  })
})

describe('large archives and failed builds', () => {
  it('uploads a large archive in one PUT of its exact length, unsigned, and restores it byte for byte', async () => {
    const ws = await exampleWorkspace()
    const graphFile = path.join(ws, 'scipio-test-double.json')
    const graph = JSON.parse(await fs.readFile(graphFile, 'utf8')) as {
      packages: Record<string, { targets: { binarySize?: number }[] }>
    }
    graph.packages['kingfisher']!.targets[0]!.binarySize = 20 * 1024 * 1024 // two slices: 40 MiB, over the 16 MiB part size once compressed
    await fs.writeFile(graphFile, JSON.stringify(graph))
    store.proxy.requests.length = 0
    const run = await runAction(s3Inputs({ mode: 'producer', prefix: 'large', 'package-directory': ws }))
    expectOk(run)
    const kingfisher = store.proxy.requests.filter((r) => r.url.includes('/Kingfisher/'))
    expect(kingfisher.some((r) => r.method === 'POST')).toBe(false)
    const puts = kingfisher.filter((r) => r.method === 'PUT' && r.url.includes('.tar.'))
    expect(puts).toHaveLength(1)
    const listed = await store.s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'large/' }))
    const stored = listed.Contents?.find((o) => decodeURIComponent(puts[0]!.url.split('?')[0]!).endsWith(`/${o.Key!}`))
    expect(stored?.Size).toBeGreaterThan(20 * 1024 * 1024)
    expect(Number(puts[0]!.headers['content-length'])).toBe(stored?.Size)
    // The body is hashed once, by us (the index's SHA-256), not again by the SDK to sign it.
    expect(puts[0]!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD')
    const consumerWs = await exampleWorkspace()
    await fs.writeFile(path.join(consumerWs, 'scipio-test-double.json'), JSON.stringify(graph))
    const consumer = await runAction(s3Inputs({ prefix: 'large', 'package-directory': consumerWs }))
    expectOk(consumer)
    expect(json(consumer, 'restored')).toContain('Kingfisher')
    expect(await snapshotTree(path.join(consumerWs, 'XCFrameworks'))).toEqual(
      await snapshotTree(path.join(ws, 'XCFrameworks')),
    )
  })

  it('a failed build still uploads what it built, then fails the step', async () => {
    const ws = await exampleWorkspace()
    const run = await runAction(s3Inputs({ mode: 'producer', prefix: 'failing', 'package-directory': ws }), {
      SCIPIO_TEST_DOUBLE_FAIL: 'Kingfisher',
    })
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(/::error::Scipio failed with exit code 1\. The frameworks it did build were uploaded\./)
    expect(json(run, 'uploaded')).toEqual(allTargets.filter((t) => t !== 'Kingfisher'))
    expect(run.outputs['cache-hit']).toBe('false')
    const keys = await listKeys('failing/')
    expect(keys.filter((k) => k.includes('/complete/'))).toEqual([]) // a failed build is never marked complete
    expect(keys.filter((k) => k.includes('/packages/'))).toHaveLength(4) // no (empty) index for kingfisher
  })
})
