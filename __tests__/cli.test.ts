import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import pLimit from 'p-limit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runAction, s3TestInputs } from './helpers/action.js'
import { exampleTargets, exampleWorkspace, readDoubleLog, runScipioDouble } from './helpers/workspace.js'
import { startCdn, type Cdn } from './helpers/cdn.js'
import { awsEnv, runCli, storeFlags, type CliRun } from './helpers/cli.js'
import { root, testCredentials } from './helpers/s3-server.js'
import { snapshotTree } from './helpers/tree.js'
import { useStore } from './helpers/store.js'
import { listedEntries } from './helpers/index-doc.js'

const bucket = 'cli-cache'
const prefix = 'team/ios'
const allTargets = exampleTargets
const packages = ['apngkit', 'delegate', 'kingfisher', 'swift-collections', 'swift-log']

const store = useStore([bucket])
let cdn: Cdn
let producerWs: string

beforeAll(async () => {
  cdn = await startCdn(store.s3.endpoint, bucket)
})
afterAll(async () => {
  await cdn?.close()
})

const flags = (under = prefix) => storeFlags(bucket, store.endpoint, under)

function expectCode(run: CliRun, code: number) {
  expect(run.code, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(code)
  expect(run.stdout + run.stderr).not.toContain(testCredentials.secretAccessKey)
}

const listKeys = (under = '') => store.listKeys(bucket, under)

interface StatusJson {
  schema: string
  markedComplete: boolean
  missing: number
  packages: {
    identity: string
    index: string
    packageKey: string
    targets: { targetName: string; state: string; key: string }[]
  }[]
  local: { targetName: string; state: string; packages: string[] }[]
}

/** The example workspace with these packages moved to another version (and a made-up revision). */
async function bumpedWorkspace(versions: Record<string, string>): Promise<string> {
  const ws = await exampleWorkspace()
  const resolvedPath = path.join(ws, 'Package.resolved')
  const resolved = JSON.parse(await fs.readFile(resolvedPath, 'utf8')) as {
    pins: { identity: string; state: { revision: string; version?: string } }[]
  }
  for (const pin of resolved.pins) {
    const version = versions[pin.identity]
    if (version) pin.state = { revision: createHash('sha1').update(version).digest('hex'), version }
  }
  await fs.writeFile(resolvedPath, JSON.stringify(resolved, null, 2))
  return ws
}

async function buildWithDouble(ws: string): Promise<void> {
  await runScipioDouble([
    'prepare',
    ws,
    '--output',
    path.join(ws, 'XCFrameworks'),
    '--framework-cache-policy',
    'project',
    '--configuration',
    'release',
    '--framework-type',
    'dynamic',
  ])
}

describe('command line usage', () => {
  it('prints help with the exit codes, and rejects unknown commands and flags with exit code 2', async () => {
    const ws = await exampleWorkspace()
    const help = await runCli(['--help'], { cwd: ws })
    expectCode(help, 0)
    expect(help.stdout).toMatch(/Commands:[\s\S]*restore[\s\S]*save[\s\S]*status[\s\S]*prune/)
    expect(help.stdout).toContain('3  something is missing from the cache (only with --fail-on-missing)')
    const statusHelp = await runCli(['status', '--help'], { cwd: ws })
    expect(statusHelp.stdout).toContain('--missing')
    expect(statusHelp.stdout).not.toContain('--delete')

    expectCode(await runCli(['fetch'], { cwd: ws }), 2)
    const badFlag = await runCli(['restore', '--delete'], { cwd: ws })
    expectCode(badFlag, 2)
    expect(badFlag.stderr).toContain("Unknown option '--delete'")
    const badBucket = await runCli(['status', '--bucket', 'Not_A_Bucket'], { cwd: ws })
    expectCode(badBucket, 2)
    expect(badBucket.stderr).toMatch(/^error: --bucket: 'Not_A_Bucket' is not a valid S3 bucket name/m)
    const noBucket = await runCli(['save'], { cwd: ws, env: awsEnv })
    expectCode(noBucket, 2)
    expect(noBucket.stderr).toContain('save needs --bucket')
    const noResolved = await runCli(['status', ...flags(), '--package-directory', path.join(ws, 'nowhere')], {
      cwd: ws,
      env: awsEnv,
    })
    expectCode(noResolved, 2)
    expect(noResolved.stderr).toContain('No Package.resolved found')
  })
})

describe('the command line and the action share one cache', () => {
  it('status finds everything an action producer stored, under the same package and set keys', async () => {
    producerWs = await exampleWorkspace()
    const producer = await runAction({
      ...s3TestInputs(store.endpoint, bucket),
      prefix,
      mode: 'consumer,producer',
      'should-publish': 'true',
      'package-directory': producerWs,
    })
    expect(producer.code, producer.stdout).toBe(0)
    expect(JSON.parse(producer.outputs.uploaded!)).toEqual(allTargets)

    const consumerWs = await exampleWorkspace()
    const run = await runCli(['status', ...flags(), '--json'], { cwd: consumerWs, env: awsEnv })
    expectCode(run, 0)
    const status = JSON.parse(run.stdout) as StatusJson
    expect(status.schema).toBe('scipio-s3-cache/status/v1')
    expect(status.markedComplete).toBe(true)
    expect(status.missing).toBe(0)
    expect(status.packages.map((p) => [p.identity, p.index])).toEqual(packages.map((p) => [p, 'stored']))
    expect(status.packages.flatMap((p) => p.targets.map((t) => t.targetName)).sort()).toEqual(allTargets)
    expect(
      status.packages.flatMap((p) => p.targets).every((t) => t.state === 'stored' && t.key.startsWith(`${prefix}/`)),
    ).toBe(true)
    expect(status.local).toEqual([])
    // Human output goes to stdout, the log to stderr.
    const text = await runCli(['status', ...flags()], { cwd: consumerWs, env: awsEnv })
    expectCode(text, 0)
    expect(text.stdout).toContain('marked complete by a producer')
    expect(text.stdout).toMatch(/^ {2}stored {3}APNGKit /m)
    expect(text.stdout).toContain('Nothing is missing.')
    expect(text.stderr).toContain('5 pinned packages')
  })

  it('restore brings back a byte-identical tree with progress, and status then sees every local framework stored', async () => {
    const ws = await exampleWorkspace()
    const run = await runCli(['restore', ...flags(), '--fail-on-missing'], { cwd: ws, env: awsEnv })
    expectCode(run, 0)
    expect(run.stdout).toContain('Restored 7 frameworks')
    expect(run.stdout).toContain('Complete: a producer stored exactly this build')
    // Not a terminal: one progress line per finished archive, no workflow commands.
    for (const target of allTargets)
      expect(run.stderr).toMatch(new RegExp(`↓ ${target} {2}\\d+\\.\\d \\w+ in \\d+\\.\\d s`))
    expect(run.stderr).not.toContain('::')
    expect(await snapshotTree(path.join(ws, 'XCFrameworks'))).toEqual(
      await snapshotTree(path.join(producerWs, 'XCFrameworks')),
    )

    const again = await runCli(['restore', ...flags()], { cwd: ws, env: awsEnv })
    expectCode(again, 0)
    expect(again.stdout).toContain('Restored 0 frameworks (0 B), kept 7 already in place.')

    const status = JSON.parse(
      (await runCli(['status', ...flags(), '--json'], { cwd: ws, env: awsEnv })).stdout,
    ) as StatusJson
    expect(status.local.map((l) => [l.targetName, l.state])).toEqual(allTargets.map((t) => [t, 'stored']))
    expect(status.local.find((l) => l.targetName === 'Delegate')?.packages).toEqual(['delegate'])
  })

  it('save uploads a local build that the action then restores completely, skipping Scipio', async () => {
    const ws = await exampleWorkspace()
    await buildWithDouble(ws)
    // Its own prefix: archives are addressed by Scipio's key, so a second upload of the same target (other
    // bytes: the tar holds modification times) would replace the archive the first producer's index describes.
    const own = `${prefix}-cli-save`
    const salt = ['--key-salt', 'cli-save']
    const before = await runCli(['status', ...flags(own), ...salt, '--missing', '--fail-on-missing'], {
      cwd: ws,
      env: awsEnv,
    })
    expectCode(before, 3)
    expect(before.stdout).toMatch(/swift-log .*index missing \(not in the cache\)/)
    expect(before.stdout).toMatch(/^ {2}missing {3}Logging \(swift-log\): its package's index is not in the cache$/m)

    const save = await runCli(['save', ...flags(own), ...salt, '--build-succeeded'], { cwd: ws, env: awsEnv })
    expectCode(save, 0)
    expect(save.stdout).toMatch(/Uploaded 7 frameworks .*; 0 were already stored; 5 indexes written\./)
    expect(save.stdout).toContain('Marked this build set complete.')
    for (const target of allTargets) expect(save.stderr).toMatch(new RegExp(`↑ ${target} {2}\\d+\\.\\d \\w+ in`))

    const after = await runCli(['status', ...flags(own), ...salt, '--missing', '--fail-on-missing', '--json'], {
      cwd: ws,
      env: awsEnv,
    })
    expectCode(after, 0)
    const missing = JSON.parse(after.stdout) as StatusJson
    expect([missing.missing, missing.packages, missing.local]).toEqual([0, [], []])

    const consumerWs = await exampleWorkspace()
    const log = path.join(consumerWs, 'double.log')
    const consumer = await runAction(
      {
        ...s3TestInputs(store.endpoint, bucket),
        prefix: own,
        'key-salt': 'cli-save',
        'package-directory': consumerWs,
      },
      { SCIPIO_TEST_DOUBLE_LOG: log },
    )
    expect(consumer.code, consumer.stdout).toBe(0)
    expect(JSON.parse(consumer.outputs.restored!)).toEqual(allTargets)
    expect(consumer.outputs['cache-hit']).toBe('true')
    expect(await readDoubleLog(log)).toEqual([])
  })

  it('save without --build-succeeded records what it uploads but marks nothing complete', async () => {
    const ws = await exampleWorkspace()
    await buildWithDouble(ws)
    const own = `${prefix}-partial`
    const run = await runCli(['save', ...flags(own), '--quiet'], { cwd: ws, env: awsEnv })
    expectCode(run, 0)
    expect(run.stdout).toContain('Not marked complete: pass --build-succeeded')
    // --quiet: no log, no progress, and (on Node.js 22 and later) no warning from Node.js or the AWS SDK either.
    expect(run.stderr).toBe('')
    const status = JSON.parse(
      (await runCli(['status', ...flags(own), '--json'], { cwd: ws, env: awsEnv })).stdout,
    ) as StatusJson
    expect(status.markedComplete).toBe(false)
    expect(status.missing).toBe(0)
  })

  it('restore and status exit with 3 under --fail-on-missing when the cache has nothing for these keys', async () => {
    const ws = await exampleWorkspace()
    const restore = await runCli(['restore', ...flags(), '--key-salt', 'never-stored', '--fail-on-missing'], {
      cwd: ws,
      env: awsEnv,
    })
    expectCode(restore, 3)
    expect(restore.stdout).toContain(`Not in the cache: ${packages.join(', ')}.`)
    const withoutFlag = await runCli(['restore', ...flags(), '--key-salt', 'never-stored'], {
      cwd: ws,
      env: awsEnv,
    })
    expectCode(withoutFlag, 0)
  })

  it("restore exits with every code of docs/cli.md's table, as --help lists them", async () => {
    const table = [...(await fs.readFile(path.join(root, 'docs/cli.md'), 'utf8')).matchAll(/^\| `(\d+)` \|/gm)].map(
      (m) => Number(m[1]),
    )
    expect(table).toEqual([0, 1, 2, 3, 130, 143])
    const help = await runCli(['restore', '--help'], { cwd: await exampleWorkspace() })
    for (const code of table) expect(help.stdout).toMatch(new RegExp(`^  ${code}  \\w`, 'm'))
    const hidden = await startCdn(store.s3.endpoint, bucket, '/cache', 403)
    try {
      const ws = () => exampleWorkspace()
      const codes = new Map<number, CliRun>([
        [0, await runCli(['restore', ...flags()], { cwd: await ws(), env: awsEnv })],
        // Nothing could be read: every read refused (a public bucket that hides missing keys, nothing stored).
        [1, await runCli(['restore', '--public-url', hidden.baseUrl, '--prefix', 'nothing-here'], { cwd: await ws() })],
        [2, await runCli(['restore', ...flags(), '--concurrency', 'many'], { cwd: await ws(), env: awsEnv })],
        [
          3,
          await runCli(['restore', ...flags(), '--key-salt', 'other', '--fail-on-missing'], {
            cwd: await ws(),
            env: awsEnv,
          }),
        ],
      ])
      for (const [code, run] of codes) expectCode(run, code)
      // 130 and 143 are a cancelled run's (cancel.test.ts signals the command line mid-download).
      expect([...codes.keys()]).toEqual(table.filter((code) => code < 128))
      expect(codes.get(1)!.stderr).toMatch(/every read of the cache was refused/)
    } finally {
      await hidden.close()
    }
  })

  it('takes credentials from a named profile in ~/.aws with --profile', async () => {
    const ws = await exampleWorkspace()
    await fs.mkdir(path.join(ws, '.aws'))
    await fs.writeFile(
      path.join(ws, '.aws/credentials'),
      `[ci-cache]\naws_access_key_id = ${testCredentials.accessKeyId}\naws_secret_access_key = ${testCredentials.secretAccessKey}\n`,
    )
    const withProfile = await runCli(['status', ...flags(), '--profile', 'ci-cache', '--fail-on-missing'], {
      cwd: ws,
      env: { HOME: ws },
    })
    expectCode(withProfile, 0)
    const without = await runCli(['status', ...flags()], { cwd: ws, env: { HOME: ws } })
    expectCode(without, 1)
    expect(without.stderr).toContain('no AWS credentials were found')
    expect(without.stderr).toContain('On the command line: export AWS_ACCESS_KEY_ID')
  })

  it('fails with exit code 1 and a clear message when the store rejects the credentials', async () => {
    const ws = await exampleWorkspace()
    const run = await runCli(['status', ...flags()], {
      cwd: ws,
      env: { AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG1', AWS_SECRET_ACCESS_KEY: 'wrong-secret-value-123456' },
    })
    expectCode(run, 1)
    expect(run.stderr).toContain('the credentials were rejected')
    expect(run.stderr).not.toContain('wrong-secret-value-123456')
  })
})

describe('the progress display observes; the store keeps every capability', () => {
  it('restore with progress downloads through the extraction threads (presigned GETs), as the action does', async () => {
    const ws = await exampleWorkspace()
    store.proxy.requests.length = 0
    const run = await runCli(['restore', ...flags()], { cwd: ws, env: awsEnv })
    expectCode(run, 0)
    expect(run.stdout).toContain('Restored 7 frameworks')
    for (const target of allTargets) expect(run.stderr).toMatch(new RegExp(`↓ ${target} {2}\\d+\\.\\d \\w+ in`))
    const archives = store.proxy.requests.filter((r) => r.method === 'GET' && /\.tar\.(zst|gz)(\?|$)/.test(r.url))
    expect(archives).toHaveLength(7)
    // Signed in the URL by the main thread, sent by a thread with Node's own client: no SDK Authorization header.
    expect(archives.filter((r) => !r.url.includes('X-Amz-Signature=') || r.headers.authorization)).toEqual([])
  })

  it('save with progress lists the prefix and stores again an archive that expired, from a persistent folder', async () => {
    const own = `${prefix}-heal`
    const ws = await exampleWorkspace()
    const producer = await runAction({
      ...s3TestInputs(store.endpoint, bucket),
      prefix: own,
      mode: 'consumer,producer',
      'package-directory': ws,
    })
    expect(producer.code, producer.stdout).toBe(0)
    const kingfisher = (await listKeys(`${own}/Kingfisher/`))[0]!
    await store.s3.client().send(new DeleteObjectCommand({ Bucket: bucket, Key: kingfisher }))

    store.proxy.requests.length = 0
    const save = await runCli(['save', ...flags(own), '--build-succeeded'], { cwd: ws, env: awsEnv })
    expectCode(save, 0)
    expect(store.proxy.requests.filter((r) => r.method === 'GET' && /[?&]list-type=2/.test(r.url))).toHaveLength(1)
    expect(save.stdout).toMatch(/Uploaded 1 frameworks .*; 6 were already stored/)
    expect(save.stderr).toMatch(/↑ Kingfisher {2}\d+\.\d \w+ in/)
    // Packed again from the same folder: the same bytes, so the same name, stored once more.
    expect(await listKeys(`${own}/Kingfisher/`)).toHaveLength(1)
  })
})

describe('S3-compatible settings and public URLs', () => {
  it('reads anonymously through a CDN that serves the bucket under another host and base path', async () => {
    const ws = await exampleWorkspace()
    cdn.requests.length = 0
    const flags = ['--public-url', cdn.baseUrl, '--prefix', prefix]
    const status = await runCli(['status', ...flags, '--json', '--fail-on-missing'], { cwd: ws })
    expectCode(status, 0)
    const doc = JSON.parse(status.stdout) as StatusJson
    expect(doc.markedComplete).toBe(true)
    expect(doc.packages.flatMap((p) => p.targets).filter((t) => t.state === 'stored')).toHaveLength(7)

    const restore = await runCli(['restore', ...flags, '--fail-on-missing'], { cwd: ws })
    expectCode(restore, 0)
    expect(restore.stdout).toContain('Restored 7 frameworks')
    expect(await snapshotTree(path.join(ws, 'XCFrameworks'))).toEqual(
      await snapshotTree(path.join(producerWs, 'XCFrameworks')),
    )
    // Everything came through the CDN, anonymously, under its base path.
    expect(cdn.requests.length).toBeGreaterThanOrEqual(7 + 5 + 1)
    expect(
      cdn.requests.every(
        (r) => (r.method === 'GET' || r.method === 'HEAD') && r.url.startsWith(`/cache/${prefix}/`) && !r.authorized,
      ),
    ).toBe(true)
  })

  it('with both a bucket and a public URL and no credentials at all, a consumer reads through the public URL', async () => {
    const ws = await exampleWorkspace()
    cdn.requests.length = 0
    const run = await runCli(
      [
        'restore',
        '--bucket',
        bucket,
        '--region',
        'auto',
        '--endpoint',
        store.s3.endpoint,
        '--force-path-style',
        '--public-url',
        cdn.baseUrl,
        '--prefix',
        prefix,
      ],
      { cwd: ws },
    )
    expectCode(run, 0)
    expect(run.stdout).toContain('Restored 7 frameworks')
    expect(cdn.requests.length).toBeGreaterThan(0)
  })

  it('through a public bucket that answers 403 for missing objects, status reports them missing; every read refused exits 1', async () => {
    const hidden = await startCdn(store.s3.endpoint, bucket, '/cache', 403)
    try {
      const bumped = await bumpedWorkspace({ 'swift-log': '9.9.9' })
      const run = await runCli(
        ['status', '--public-url', hidden.baseUrl, '--prefix', prefix, '--fail-on-missing', '--json'],
        { cwd: bumped },
      )
      expectCode(run, 3)
      const doc = JSON.parse(run.stdout) as { packages: { identity: string; index: string; reason?: string }[] }
      expect(doc.packages.map((p) => p.index)).toEqual(packages.map((p) => (p === 'swift-log' ? 'missing' : 'stored')))
      expect(doc.packages.find((p) => p.identity === 'swift-log')!.reason).toBe(
        'not stored, or not readable with these credentials (403)',
      )
      const ws = await exampleWorkspace()
      const none = await runCli(
        ['status', '--public-url', hidden.baseUrl, '--prefix', prefix, '--key-salt', 'never-stored'],
        {
          cwd: ws,
        },
      )
      expectCode(none, 1)
      expect(none.stderr).toMatch(/every read of the cache was refused \(403 AccessDenied\): all 6 /)
      expect(none.stdout).toContain(`${packages.length} missing.`)
      const stored = await runCli(['status', '--public-url', hidden.baseUrl, '--prefix', prefix, '--fail-on-missing'], {
        cwd: ws,
      })
      expectCode(stored, 0)
    } finally {
      await hidden.close()
    }
  })

  it("accepts R2's region 'auto' with an endpoint and path-style addressing", async () => {
    const ws = await exampleWorkspace()
    const run = await runCli(
      [
        'status',
        '--bucket',
        bucket,
        '--region',
        'auto',
        '--endpoint',
        store.s3.endpoint,
        '--force-path-style',
        '--prefix',
        prefix,
        '--fail-on-missing',
      ],
      { cwd: ws, env: awsEnv },
    )
    expectCode(run, 0)
    expect(run.stderr).toContain(`cache at s3://${bucket} at ${store.s3.endpoint}`)
  })
})

describe('prune', () => {
  const hex = () => randomBytes(32).toString('hex')

  it('is a dry run by default, keeps what Package.resolved files use, and deletes only unused objects of its layout', async () => {
    const ws = await exampleWorkspace()
    // A second dependency set: swift-log moved to another revision, built and saved by a producer.
    const bumped = await exampleWorkspace()
    const resolvedPath = path.join(bumped, 'Package.resolved')
    const resolved = JSON.parse(await fs.readFile(resolvedPath, 'utf8')) as {
      pins: { identity: string; state: { revision: string; version?: string } }[]
    }
    const log = resolved.pins.find((p) => p.identity === 'swift-log')!
    log.state = { revision: 'f'.repeat(40), version: '9.9.9' }
    await fs.writeFile(resolvedPath, JSON.stringify(resolved, null, 2))
    await buildWithDouble(bumped)
    expectCode(await runCli(['save', ...flags(), '--build-succeeded', '--quiet'], { cwd: bumped, env: awsEnv }), 0)

    const old = `${prefix}/Obsolete/${hex()}.tar.gz`
    const foreign = `${prefix}/notes.txt`
    const outside = `elsewhere/Obsolete/${hex()}.tar.gz`
    for (const Key of [old, foreign, outside])
      await store.s3.client().send(new PutObjectCommand({ Bucket: bucket, Key, Body: Buffer.from('x') }))
    const before = await listKeys()

    // Everything was written just now: the default --older-than 1 protects all of it.
    const fresh = await runCli(['prune', ...flags()], { cwd: ws, env: awsEnv })
    expectCode(fresh, 0)
    expect(fresh.stdout).toContain('Nothing to prune.')
    expect(fresh.stdout).toMatch(/unused but newer than 1 day\(s\); 1 not written by scipio-s3-cache/)

    // Keeping the bumped Package.resolved too, only the obsolete archive goes.
    const keepBoth = await runCli(
      ['prune', ...flags(), '--older-than', '0', '--keep-resolved', resolvedPath, '--json'],
      { cwd: ws, env: awsEnv },
    )
    expectCode(keepBoth, 0)
    const both = JSON.parse(keepBoth.stdout) as {
      dryRun: boolean
      candidates: { key: string; kind: string }[]
      deleted: number
      foreign: number
    }
    expect(both.dryRun).toBe(true)
    expect(both.deleted).toBe(0)
    expect(both.foreign).toBe(1)
    expect(await listKeys(`${prefix}/Logging/`)).toHaveLength(2)
    expect(both.candidates.map((c) => c.key)).toEqual([old])

    // Keeping only the project's own Package.resolved: the bumped set's Logging archive, index and marker go too.
    const dry = await runCli(['prune', ...flags(), '--older-than', '0', '--json'], { cwd: ws, env: awsEnv })
    expectCode(dry, 0)
    const plan = JSON.parse(dry.stdout) as { candidates: { key: string; kind: string }[]; inUse: number }
    const candidateKeys = plan.candidates.map((c) => c.key)
    expect(candidateKeys).toContain(old)
    expect(candidateKeys).not.toContain(foreign)
    expect(candidateKeys.every((k) => k.startsWith(`${prefix}/`))).toBe(true)
    expect(plan.candidates.map((c) => [c.kind, c.key.split('/')[2]])).toEqual([
      ['marker', '.scipio-s3-cache'],
      ['index', '.scipio-s3-cache'],
      ['record', '.scipio-s3-cache'],
      ['archive', 'Logging'],
      ['archive', 'Obsolete'],
    ])
    // Seven archives and the five indexes, five pin records and marker of the current set are in use (the store
    // honours conditional writes, so the probe left no object).
    expect(plan.inUse).toBe(7 + 5 + 5 + 1)
    expect(await listKeys()).toEqual(before)

    const human = await runCli(['prune', ...flags(), '--older-than', '0'], { cwd: ws, env: awsEnv })
    expect(human.stdout).toContain(
      `Dry run: nothing was deleted. Run again with --delete to delete these ${plan.candidates.length} objects`,
    )

    const del = await runCli(['prune', ...flags(), '--older-than', '0', '--delete'], { cwd: ws, env: awsEnv })
    expectCode(del, 0)
    expect(del.stdout).toContain(`Deleted ${plan.candidates.length} of ${plan.candidates.length} objects.`)
    const after = await listKeys()
    expect(after).toEqual(before.filter((k) => !candidateKeys.includes(k)))
    expect(after).toContain(foreign)
    expect(after).toContain(outside)

    // What the project uses is untouched: a consumer still restores everything.
    const status = await runCli(['status', ...flags(), '--fail-on-missing'], { cwd: ws, env: awsEnv })
    expectCode(status, 0)
  })

  it('--delete keeps the archives a producer running meanwhile lists in its marker', async () => {
    const own = `${prefix}-race`
    const ws = await exampleWorkspace()
    // A producer stored a set with swift-log bumped; the project's Package.resolved no longer uses that pin.
    const bumped = await bumpedWorkspace({ 'swift-log': '9.9.9' })
    await buildWithDouble(bumped)
    expectCode(await runCli(['save', ...flags(own), '--build-succeeded', '--quiet'], { cwd: bumped, env: awsEnv }), 0)
    const [logging] = await listKeys(`${own}/Logging/`)
    // Another producer, with Kingfisher bumped too, builds while prune runs.
    const later = await bumpedWorkspace({ 'swift-log': '9.9.9', kingfisher: '99.0.0' })
    await buildWithDouble(later)
    const markers = await listKeys(`${own}/.scipio-s3-cache/complete/`)

    // Prune plans (the bumped set's Logging archive, index and marker are candidates), and its first deletion is
    // held while the second producer saves: it adopts swift-log's index and marks its set complete.
    const held = store.proxy.hold((req) => req.method === 'POST' && /[?&]delete/.test(req.url ?? ''))
    const pruning = runCli(
      ['prune', ...flags(own), '--endpoint', store.proxy.endpoint, '--older-than', '0', '--delete', '--json'],
      { cwd: ws, env: awsEnv },
    )
    await held.arrived
    expectCode(await runCli(['save', ...flags(own), '--build-succeeded', '--quiet'], { cwd: later, env: awsEnv }), 0)
    held.release()
    const run = await pruning
    expectCode(run, 0)

    const [marker, ...others] = (await listKeys(`${own}/.scipio-s3-cache/complete/`)).filter(
      (k) => !markers.includes(k),
    )
    expect(others).toEqual([])
    const manifest = JSON.parse(
      await (
        await store.s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: marker }))
      ).Body!.transformToString(),
    ) as { packages: { targets: { key: string }[] }[] }
    const listed = manifest.packages.flatMap((p) => listedEntries(p).map((t) => t.key))
    expect(listed).toContain(logging)
    const stored = await listKeys(`${own}/`)
    expect(listed.filter((key) => !stored.includes(key))).toEqual([])
    const result = JSON.parse(run.stdout) as { spared: { key: string; reason: string }[] }
    expect(result.spared).toEqual([{ key: logging, reason: `listed by ${marker}, written since the plan` }])
  })

  it('pages through more than 1000 objects and deletes them in batches', async () => {
    const ws = await exampleWorkspace()
    const many = Array.from({ length: 1005 }, (_, i) => `bulk/Junk${i % 3}/${hex()}.tar.gz`)
    const limit = pLimit(16)
    await Promise.all(
      many.map((Key) =>
        limit(() => store.s3.client().send(new PutObjectCommand({ Bucket: bucket, Key, Body: Buffer.from('x') }))),
      ),
    )
    const flags = [
      '--bucket',
      bucket,
      '--endpoint',
      store.s3.endpoint,
      '--force-path-style',
      '--prefix',
      'bulk',
      '--older-than',
      '0',
    ]
    const dry = await runCli(['prune', ...flags, '--json'], { cwd: ws, env: awsEnv })
    expectCode(dry, 0)
    const plan = JSON.parse(dry.stdout) as { listed: number; candidates: unknown[] }
    expect([plan.listed, plan.candidates.length]).toEqual([1005, 1005])
    const del = await runCli(['prune', ...flags, '--delete', '--json'], { cwd: ws, env: awsEnv })
    expectCode(del, 0)
    expect((JSON.parse(del.stdout) as { deleted: number }).deleted).toBe(1005)
    expect(await listKeys('bulk/')).toEqual([])
    expect((await listKeys(`${prefix}/`)).length).toBeGreaterThan(0)
  })
})
