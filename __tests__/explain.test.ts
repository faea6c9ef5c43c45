import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { pinRecordObjectKey } from '../src/bucket/pin-record.js'
import { readResolvedFile, type Pin } from '../src/keys/resolved.js'
import { runAction, s3TestInputs, type ActionRun } from './helpers/action.js'
import { exampleWorkspace } from './helpers/workspace.js'
import { runCli } from './helpers/cli.js'
import { faults, limited } from './helpers/proxy.js'
import { testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { listedEntries } from './helpers/index-doc.js'
import { isRunsRequest } from './helpers/records.js'

/** Issue #10: every miss explained (outputs, log, summary, CLI), and the build time a full hit avoided. */

const bucket = 'explain-cache'
const prefix = 'explain'
const packages = ['apngkit', 'delegate', 'kingfisher', 'swift-collections', 'swift-log']
const hex64 = /^[0-9a-f]{64}$/
/** Per target, so that the producer's measured build time is known to be at least 7 × this. */
const doubleBuildMs = 250
const otherXcode = {
  SCIPIO_TEST_DOUBLE_XCODE: '16.4',
  SCIPIO_TEST_DOUBLE_XCODE_BUILD: '16F6',
  SCIPIO_TEST_DOUBLE_CLANG: 'clang-1700.0.13.5',
}

const store = useStore([bucket])
let producer: ActionRun
let pins: Pin[]

function inputs(ws: string, extra: Record<string, string> = {}, under = prefix): Record<string, string> {
  return { ...s3TestInputs(store.proxy.endpoint, bucket), prefix: under, 'package-directory': ws, ...extra }
}

function expectOk(run: ActionRun) {
  expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0)
}

function reasons(run: ActionRun): Record<string, string> {
  return JSON.parse(run.outputs['miss-reasons'] ?? 'null') as Record<string, string>
}

function warnings(run: ActionRun): string[] {
  return run.stdout.split('\n').filter((l) => l.startsWith('::warning'))
}

async function objectText(key: string): Promise<string> {
  const out = await store.s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  return out.Body!.transformToString()
}

async function keysUnder(under: string): Promise<string[]> {
  const out = await store.s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: under }))
  return (out.Contents ?? []).map((o) => o.Key!).sort()
}

beforeAll(async () => {
  const ws = await exampleWorkspace()
  pins = (await readResolvedFile(path.join(ws, 'Package.resolved'))).pins
  // The producer: Xcode 16.2 (16C5032a) from the xcrun double, release, no salt.
  producer = await runAction(inputs(ws, { mode: 'consumer,producer' }), {
    SCIPIO_TEST_DOUBLE_BUILD_MS: String(doubleBuildMs),
  })
  expectOk(producer)
})

describe('a producer records what it stored', () => {
  it('writes one pin record per pin, with the key description and no salt, and a build time per target in the index', async () => {
    const records = (await keysUnder(`${prefix}/.scipio-s3-cache/pins/`)).sort()
    expect(records).toEqual(pins.map((p) => pinRecordObjectKey(prefix, p)).sort())
    const record = JSON.parse(
      await objectText(
        pinRecordObjectKey(
          prefix,
          pins.find((p) => p.identity === 'kingfisher')!,
        ),
      ),
    ) as {
      entries: { packageKey: string; description: Record<string, unknown> }[]
    }
    expect(record.entries).toHaveLength(1)
    expect(record.entries[0]!.packageKey).toBe(
      (JSON.parse(producer.outputs['package-keys']!) as Record<string, string>).kingfisher,
    )
    expect(record.entries[0]!.description).toMatchObject({
      xcodeVersion: '16.2',
      xcodeBuildVersion: '16C5032a',
      configuration: 'release',
    })

    for (const key of await keysUnder(`${prefix}/.scipio-s3-cache/packages/`)) {
      const index = JSON.parse(await objectText(key)) as { targets: { targetName: string; buildMs?: number }[] }
      for (const t of listedEntries(index)) expect(t.buildMs, t.targetName).toBeGreaterThanOrEqual(doubleBuildMs)
    }
  })

  it('sets package-keys and set-key, and an empty miss-reasons when the cache was empty but this producer fills it (no warning)', () => {
    const keys = JSON.parse(producer.outputs['package-keys']!) as Record<string, string>
    expect(Object.keys(keys).sort()).toEqual(packages)
    for (const k of Object.values(keys)) expect(k).toMatch(hex64)
    expect(producer.outputs['set-key']).toMatch(hex64)
    // Nothing was stored before this first producer: every package says so, and that is no reason to warn.
    expect(Object.values(reasons(producer))).toEqual(packages.map(() => 'no producer has stored this pin yet'))
    expect(warnings(producer)).toEqual([])
  })

  it('an unchanged producer run writes nothing: no index, no archive, no pin record', async () => {
    const ws = await exampleWorkspace()
    store.proxy.requests.length = 0
    const run = await runAction(inputs(ws, { mode: 'consumer,producer', 'output-directory': path.join(ws, 'Out') }))
    expectOk(run)
    // Nothing but the run's record.
    const writes = store.proxy.requests.filter((r) => r.method === 'PUT' || r.method === 'POST')
    expect(writes.filter((r) => !isRunsRequest(r)).map((r) => r.url)).toEqual([])
    expect(reasons(run)).toEqual({})
  })
})

describe('a consumer explains every miss', () => {
  it('another Xcode: the reason names Xcode and both versions, once for all packages, with one warning and a summary section', async () => {
    const ws = await exampleWorkspace()
    const run = await runAction(inputs(ws), otherXcode)
    expectOk(run)
    const expected =
      'stored for Xcode 16.2 (16C5032a), this runner has Xcode 16.4 (16F6): select Xcode 16.2 or run a producer with 16.4'
    expect(reasons(run)).toEqual(Object.fromEntries(packages.map((p) => [p, expected])))
    // Grouped in the log: one line for all five packages.
    const lines = run.stdout.split('\n').filter((l) => l.includes(expected) && !l.startsWith('::'))
    expect(lines).toEqual([`  all 5 packages: ${expected}`])
    const loud = warnings(run)
    expect(loud).toHaveLength(1)
    expect(loud[0]).toContain('Nothing came from the cache (7 frameworks built), although the cache answered.')
    expect(loud[0]).toContain(`Most common reason, for all 5 packages: ${expected}.`)
    expect(run.summary).toContain('Why frameworks were built')
    expect(run.summary).toContain(`all 5 packages: ${expected}`)
    // Its own keys, which differ from the producer's.
    const mine = JSON.parse(run.outputs['package-keys']!) as Record<string, string>
    const theirs = JSON.parse(producer.outputs['package-keys']!) as Record<string, string>
    for (const p of packages) expect(mine[p]).not.toBe(theirs[p])
    expect(run.outputs['set-key']).not.toBe(producer.outputs['set-key'])
  })

  it('another configuration: the reason names the option and both values', async () => {
    const ws = await exampleWorkspace()
    const run = await runAction(inputs(ws, { configuration: 'debug' }))
    expectOk(run)
    expect(new Set(Object.values(reasons(run)))).toEqual(
      new Set(['stored with configuration release, this run asks for debug']),
    )
    expect(warnings(run).join('\n')).toContain(
      'for all 5 packages: stored with configuration release, this run asks for debug',
    )
    expect(run.summary).toContain('stored with configuration release, this run asks for debug')
  })

  it('another key-salt: the reason says so without ever printing either salt', async () => {
    const producerSalt = 'producer-salt-Zq81'
    const consumerSalt = 'consumer-salt-Yx42'
    const under = `${prefix}-salted`
    const stored = await runAction(
      inputs(await exampleWorkspace(), { mode: 'consumer,producer', 'key-salt': producerSalt }, under),
    )
    expectOk(stored)
    const run = await runAction(inputs(await exampleWorkspace(), { 'key-salt': consumerSalt }, under))
    expectOk(run)
    for (const reason of Object.values(reasons(run)))
      expect(reason).toMatch(/^stored with another key-salt \(SHA-256 [0-9a-f]{12}, this run's [0-9a-f]{12}\)$/)
    expect(Object.keys(reasons(run)).sort()).toEqual(packages)
    const unsalted = await runAction(inputs(await exampleWorkspace(), {}, under))
    expect(new Set(Object.values(reasons(unsalted)))).toEqual(new Set(['stored with a key-salt, this run sets none']))
    const everything = [stored, run, unsalted]
      .map((r) => `${r.stdout}${r.stderr}${r.summary}${JSON.stringify(r.outputs)}`)
      .join('\n')
    expect(everything).not.toContain(producerSalt)
    expect(everything).not.toContain(consumerSalt)
    for (const pin of pins) expect(await objectText(pinRecordObjectKey(under, pin))).not.toContain(producerSalt)
  })

  it('a bumped pin: only that package misses, because no producer has stored that pin yet; no warning', async () => {
    const ws = await exampleWorkspace()
    const resolvedPath = path.join(ws, 'Package.resolved')
    const resolved = await fs.readFile(resolvedPath, 'utf8')
    await fs.writeFile(
      resolvedPath,
      resolved
        .replace('5c9a1e3d7f9b1d3f5b7d9f1b3d5f7b9d1f3b5d7f', '6d0b2f4e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a')
        .replace('"1.6.2"', '"1.6.3"'),
    )
    const run = await runAction(inputs(ws))
    expectOk(run)
    expect(reasons(run)).toEqual({ 'swift-log': 'no producer has stored this pin yet' })
    expect(run.stdout).toContain('swift-log 1.6.3: no producer has stored this pin yet')
    expect(warnings(run)).toEqual([])
    expect(run.summary).toContain('Why frameworks were built')
  })

  it('a full hit states the build time it avoided, as the producer measured it', async () => {
    const ws = await exampleWorkspace()
    const run = await runAction(inputs(ws, { 'output-directory': path.join(ws, 'Fresh') }))
    expectOk(run)
    expect(run.outputs['cache-hit']).toBe('true')
    expect(reasons(run)).toEqual({})
    expect(run.summary).not.toContain('Why frameworks were built')
    expect(run.summary).not.toContain('not estimated')
    const m =
      /7 frameworks restored in [\d.]+ s instead of about ([\d.]+) s of Scipio builds \(the producer's measurement/.exec(
        run.summary,
      )
    expect(m, run.summary).not.toBeNull()
    expect(Number(m![1])).toBeGreaterThanOrEqual((7 * doubleBuildMs) / 1000)
  })

  it('the restore sub-action sets the same outputs and warns when nothing is stored for its Xcode', async () => {
    const ws = await exampleWorkspace()
    const run = await runAction(inputs(ws, { 'lookup-only': 'true' }), otherXcode, 'dist/restore/index.js')
    expectOk(run)
    expect(Object.values(reasons(run))[0]).toContain('this runner has Xcode 16.4 (16F6)')
    expect(Object.keys(JSON.parse(run.outputs['package-keys']!) as object).sort()).toEqual(packages)
    expect(run.outputs['set-key']).toMatch(hex64)
    expect(warnings(run)).toHaveLength(1)
    expect(warnings(run)[0]).toContain('Nothing came from the cache (5 packages or targets missing)')
  })

  it('status --explain prints the same reasons', async () => {
    const ws = await exampleWorkspace()
    const flags = [
      '--bucket',
      bucket,
      '--endpoint',
      store.s3.endpoint,
      '--force-path-style',
      '--prefix',
      prefix,
      '--package-directory',
      ws,
    ]
    const env = {
      AWS_ACCESS_KEY_ID: testCredentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: testCredentials.secretAccessKey,
      ...otherXcode,
    }
    const text = await runCli(['status', ...flags, '--explain'], { cwd: ws, env })
    expect(text.code, text.stderr).toBe(0)
    const expected =
      'stored for Xcode 16.2 (16C5032a), this runner has Xcode 16.4 (16F6): select Xcode 16.2 or run a producer with 16.4'
    expect(text.stdout).toContain(`  why: ${expected}`)
    expect(text.stdout).toContain(`Why:\n  all 5 packages: ${expected}`)
    const json = JSON.parse((await runCli(['status', ...flags, '--explain', '--json'], { cwd: ws, env })).stdout) as {
      packages: { explanation?: string }[]
    }
    expect(json.packages.map((p) => p.explanation)).toEqual(packages.map(() => expected))
    // Without --explain, no record is read and nothing is said.
    expect((await runCli(['status', ...flags], { cwd: ws, env })).stdout).not.toContain('why:')
  })
})

describe('records are best effort', () => {
  it('a producer that cannot write pin records still uploads everything and succeeds, with one warning', async () => {
    const under = `${prefix}-no-records`
    store.proxy.fault = limited(
      (req) => req.method === 'PUT' && (req.url ?? '').includes('/.scipio-s3-cache/pins/'),
      Infinity,
      faults.status(403, 'AccessDenied', 'Access Denied'),
    )
    try {
      const run = await runAction(inputs(await exampleWorkspace(), { mode: 'consumer,producer' }, under))
      expectOk(run)
      expect(JSON.parse(run.outputs['uploaded-count']!)).toBe(7)
      expect(warnings(run)).toHaveLength(1)
      expect(warnings(run)[0]).toMatch(/Could not update 5 pin records .*access denied \(403\)/)
      expect(await keysUnder(`${under}/.scipio-s3-cache/pins/`)).toEqual([])
    } finally {
      store.proxy.fault = undefined
    }
  })
})

describe('records are untrusted', () => {
  it('a hostile or oversized record never fails a restore: it is ignored with a debug message and only loses the explanation', async () => {
    const pin = (id: string) => pins.find((p) => p.identity === id)!
    const put = (p: Pin, body: string) =>
      store.s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: pinRecordObjectKey(prefix, p), Body: body }))
    const injected = {
      schema: 'scipio-s3-cache/pin-record/v1',
      pin: { identity: 'kingfisher', revision: pin('kingfisher').revision, version: pin('kingfisher').version },
      entries: [
        {
          packageKey: 'a'.repeat(64),
          storedAt: '2026-01-01T00:00:00Z',
          description: { xcodeVersion: '16.2\n::error::injected', configuration: 7 },
        },
      ],
    }
    await put(pin('kingfisher'), JSON.stringify(injected))
    await put(
      pin('apngkit'),
      JSON.stringify({ schema: 'scipio-s3-cache/pin-record/v1', pin: { identity: 'apngkit' }, entries: 'many' }),
    )
    await put(pin('delegate'), `{"schema":"scipio-s3-cache/pin-record/v1","pad":"${'x'.repeat(200 * 1024)}"}`)
    await put(pin('swift-log'), 'not json at all')

    const run = await runAction(inputs(await exampleWorkspace()), { ...otherXcode, RUNNER_DEBUG: '1' })
    expectOk(run)
    const r = reasons(run)
    for (const id of ['kingfisher', 'apngkit', 'delegate', 'swift-log']) {
      expect(r[id], id).toBe('not in the cache; its pin record is unusable, so there is no explanation')
      expect(run.stdout).toContain(`::debug::Ignoring the pin record of ${id} `)
    }
    expect(run.stdout).toMatch(/::debug::Ignoring the pin record of delegate .*larger than 65536 bytes/)
    expect(r['swift-collections']).toContain('this runner has Xcode 16.4 (16F6)')
    expect(run.stdout).not.toContain('::error::injected')
    expect(run.stdout + run.summary).not.toContain('injected')
  })
})
