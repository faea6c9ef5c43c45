import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runAction, type ActionRun, s3TestInputs } from './helpers/action.js'
import { snapshotTree } from './helpers/tree.js'
import { useStore } from './helpers/store.js'
import { doubleWorkspace } from './helpers/workspace.js'
import { listedEntries } from './helpers/index-doc.js'

const count = 200
const bucket = 'load-cache'
const store = useStore([bucket])

function revision(i: number, generation: number): string {
  return createHash('sha1').update(`${i}/${generation}`).digest('hex')
}

/** A dependencies package of `count` pinned packages, one target each; `changed` pins get a new revision. */
async function workspace(changed: Set<number>): Promise<string> {
  const manifest =
    '// swift-tools-version: 5.9\nimport PackageDescription\nlet package = Package(name: "Load", platforms: [.iOS(.v15)])\n'
  const pins = Array.from({ length: count }, (_, i) => ({
    identity: `pkg${i}`,
    kind: 'remoteSourceControl',
    location: `https://example.com/pkg${i}.git`,
    state: { revision: revision(i, changed.has(i) ? 1 : 0), version: `1.0.${changed.has(i) ? 1 : 0}` },
  }))
  const graph = Object.fromEntries(
    pins.map((p, i) => [p.identity, { targets: [{ name: `Target${i}`, binarySize: 4096 }] }]),
  )
  return doubleWorkspace(JSON.stringify({ pins, version: 2 }, null, 2), graph, manifest)
}

function inputs(ws: string, extra: Record<string, string> = {}) {
  return {
    ...s3TestInputs(store.endpoint, bucket),
    concurrency: '16',
    'package-directory': ws,
    ...extra,
  }
}

const list = (run: ActionRun, name: string) => JSON.parse(run.outputs[name] ?? '[]') as string[]

describe('load: 200 targets, concurrency 16, a producer and two consumers at once', () => {
  it('every consumer ends with a complete, valid set; nothing is lost or half-written', async () => {
    const seed = await runAction(inputs(await workspace(new Set()), { mode: 'producer' }))
    expect(seed.code, seed.stdout).toBe(0)
    expect(list(seed, 'uploaded')).toHaveLength(count)

    // 20 pins move; the producer rebuilds and uploads them while two consumers restore from the same bucket.
    const changed = new Set(Array.from({ length: 20 }, (_, i) => i * 10))
    const [producerWs, consumerA, consumerB] = await Promise.all([
      workspace(changed),
      workspace(changed),
      workspace(changed),
    ])
    const [producer, a, b] = await Promise.all([
      runAction(inputs(producerWs, { mode: 'consumer,producer' })),
      runAction(inputs(consumerA)),
      runAction(inputs(consumerB)),
    ])
    for (const run of [producer, a, b]) expect(run.code, run.stdout.slice(-2000)).toBe(0)
    expect(list(producer, 'restored')).toHaveLength(count - 20)
    expect(list(producer, 'uploaded')).toHaveLength(20)

    const expected = await snapshotTree(path.join(producerWs, 'XCFrameworks'))
    expect(Object.keys(expected).filter((k) => k.endsWith('.version'))).toHaveLength(count)
    for (const [name, run, ws] of [
      ['A', a, consumerA],
      ['B', b, consumerB],
    ] as const) {
      expect(list(run, 'restored').length + list(run, 'built').length, name).toBeGreaterThanOrEqual(count - 20)
      // Identical to the producer's tree: every framework, every VersionFile, no temporary folder left behind.
      expect(await snapshotTree(path.join(ws, 'XCFrameworks')), name).toEqual(expected)
    }

    // Every index points at archives that exist with the size and SHA-256 it records.
    const client = store.s3.client()
    let token: string | undefined
    const indexKeys: string[] = []
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: '.scipio-s3-cache/packages/', ContinuationToken: token }),
      )
      indexKeys.push(...(page.Contents ?? []).map((o) => o.Key!))
      token = page.NextContinuationToken
    } while (token)
    expect(indexKeys).toHaveLength(count + 20)
    for (const key of indexKeys.slice(0, 60)) {
      const index = (await (await fetch(`${store.s3.endpoint}/${bucket}/${key}`)).json()) as {
        targets: { key: string; size: number; sha256: string }[]
      }
      for (const target of listedEntries(index)) {
        const bytes = Buffer.from(
          await (
            await fetch(`${store.s3.endpoint}/${bucket}/${target.key.split('/').map(encodeURIComponent).join('/')}`)
          ).arrayBuffer(),
        )
        expect(bytes.length, target.key).toBe(target.size)
        expect(createHash('sha256').update(bytes).digest('hex'), target.key).toBe(target.sha256)
      }
    }
  }, 300_000)
})
