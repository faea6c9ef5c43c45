import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { s3TestInputs } from './helpers/action.js'
import { awsEnv, runCli, storeFlags } from './helpers/cli.js'
import { actionJob, bumpedPackage, bumpedTarget, deniedRequests, pinBump, type PinBump } from './helpers/pin-bump.js'
import { isRunsRequest } from './helpers/records.js'
import { policyOf, type AccessPolicies } from './helpers/policy.js'
import { testCredentials, testKeyPair, type TestCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { runScipioDouble } from './helpers/workspace.js'

/**
 * Issue 29: least privilege and anonymous readers, on Amazon S3's answers (the proxy enforces the policies below,
 * and answers 403 for a missing key to every caller that may not list the bucket). A 403 on one read is a miss for
 * that key; only a run whose every read was refused says it cannot read the cache.
 */

const bucket = 'least-privilege'
const reader = testKeyPair('get-object-only')
const writer = testKeyPair('no-list-bucket')
const store = useStore([bucket], { credentials: [testCredentials, reader, writer] })

const objects = `arn:aws:s3:::${bucket}/*`
const policy = policyOf
/** The owner (testCredentials) may do anything; the others get exactly these. */
const policies: AccessPolicies = {
  identities: {
    [reader.accessKeyId]: policy({ Effect: 'Allow', Action: 's3:GetObject', Resource: objects }),
    [writer.accessKeyId]: policy({ Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: objects }),
  },
  buckets: {
    [bucket]: policy({
      Effect: 'Allow',
      Principal: '*',
      Action: 's3:GetObject',
      Resource: `arn:aws:s3:::${bucket}/public/*`,
    }),
  },
}

const as = (c: TestCredentials) => ({ 'access-key-id': c.accessKeyId, 'secret-access-key': c.secretAccessKey })
const inputs = (prefix: string, extra: Record<string, string> = {}) => ({
  ...s3TestInputs(store.endpoint, bucket),
  prefix,
  ...extra,
})
const anonymous = (prefix: string) => ({ 'public-url': `${store.endpoint}/${bucket}`, prefix })

let scenario: PinBump
beforeAll(async () => {
  scenario = await pinBump()
})
beforeEach(() => {
  store.proxy.policies = policies
})

/** The full-rights producer stores the set before the bump (nine frameworks in five packages). */
async function storeFullSet(prefix: string): Promise<void> {
  const job = await actionJob(await scenario.stored(), inputs(prefix, { mode: 'producer' }))
  expect(job.run.code, job.run.stdout).toBe(0)
  expect(job.uploaded).toEqual(scenario.targets)
}

const allButBumped = () => scenario.targets.filter((t) => t !== bumpedTarget)

/** The requests since `from` that answered 403 without being a refused action: hidden missing keys. */
const hiddenMisses = (from: number) => store.proxy.requests.slice(from).filter((r) => r.status === 403 && !r.denied)

describe('a pull request bumps swift-log; the bumped key is not stored yet', () => {
  it('a consumer with only s3:GetObject restores the 8 stored frameworks and builds Logging, with no warning', async () => {
    const prefix = 'public/get-object-only'
    await storeFullSet(prefix)
    const from = store.proxy.requests.length
    const job = await actionJob(await scenario.bumped(), inputs(prefix, { ...as(reader), strict: 'true' }))
    expect(job.run.code, job.run.stdout).toBe(0)
    expect(job.restored).toEqual(allButBumped())
    expect(job.built).toEqual([bumpedTarget])
    expect(job.warnings).toEqual([])
    // S3 hid the bumped index and the new set's marker with a 403: read as "not stored". The one refusal is its run
    // record (this role may write nothing): a debug line, never a warning.
    expect(hiddenMisses(from).length).toBeGreaterThanOrEqual(2)
    const refused = store.proxy.requests.slice(from).filter((r) => r.denied)
    expect(refused.map((r) => [r.method, isRunsRequest(r)])).toEqual([['PUT', true]])
    const reasons = JSON.parse(job.run.outputs['miss-reasons'] ?? '{}') as Record<string, string>
    expect(Object.keys(reasons)).toEqual([bumpedPackage])
  }, 120_000)

  it('an anonymous public-url reader restores the 8 stored frameworks and builds Logging, with no warning', async () => {
    const prefix = 'public/anonymous'
    await storeFullSet(prefix)
    const from = store.proxy.requests.length
    const job = await actionJob(await scenario.bumped(), { ...anonymous(prefix), strict: 'true' })
    expect(job.run.code, job.run.stdout).toBe(0)
    expect(job.restored).toEqual(allButBumped())
    expect(job.built).toEqual([bumpedTarget])
    expect(job.warnings).toEqual([])
    const sent = store.proxy.requests.slice(from)
    expect(sent.every((r) => r.headers.authorization === undefined && !r.url.includes('X-Amz-Credential'))).toBe(true)
    expect(hiddenMisses(from).length).toBeGreaterThanOrEqual(2)
    expect(deniedRequests(sent)).toEqual([])
  }, 120_000)

  it('a producer without s3:ListBucket stores Logging, warns once (healing needs ListBucket), and the next consumer gets a full hit', async () => {
    const prefix = 'no-list-producer'
    await storeFullSet(prefix)
    const from = store.proxy.requests.length
    const producer = await actionJob(
      await scenario.bumped(),
      inputs(prefix, { ...as(writer), mode: 'consumer,producer' }),
    )
    expect(producer.run.code, producer.run.stdout).toBe(0)
    expect(producer.restored).toEqual(allButBumped())
    expect(producer.built).toEqual([bumpedTarget])
    expect(producer.uploaded).toEqual([bumpedTarget])
    expect(producer.warnings).toHaveLength(1)
    expect(producer.warnings[0]).toMatch(/healing objects that expired or were deleted needs s3:ListBucket/)
    const sent = store.proxy.requests.slice(from)
    expect(deniedRequests(sent)).toEqual(['GET /least-privilege/: s3:ListBucket'])
    // The documents it created where it read a 403 (index, pin record, completion marker) were create-only writes.
    const created = sent.filter(
      (r) => r.method === 'PUT' && /\/\.scipio-s3-cache\/(packages|pins|complete)\//.test(r.url),
    )
    expect(created.length).toBeGreaterThanOrEqual(3)
    expect(created.map((r) => r.headers['if-none-match'])).toEqual(created.map(() => '*'))
    expect(created.every((r) => r.status === 200)).toBe(true)

    const next = await actionJob(await scenario.bumped(), inputs(prefix, as(reader)))
    expect(next.run.code, next.run.stdout).toBe(0)
    expect(next.run.outputs['cache-hit']).toBe('true')
    expect(next.restored).toEqual(scenario.targets)
    expect(next.built).toEqual([])
    expect(next.warnings).toEqual([])
  }, 180_000)
})

describe('the sub-actions, on the same pin bump', () => {
  it('restore (s3:GetObject only, lookup-only too) gets the 8; save (no s3:ListBucket) stores Logging; the next restore gets all 9', async () => {
    const prefix = 'sub-actions'
    await storeFullSet(prefix)
    const ws = await scenario.bumped()
    const restoreEntry = 'dist/restore/index.js'
    const lookup = await actionJob(ws, inputs(prefix, { ...as(reader), 'lookup-only': 'true' }), {}, restoreEntry)
    expect(lookup.run.code, lookup.run.stdout).toBe(0)
    expect(JSON.parse(lookup.run.outputs.missing!)).toEqual([`${bumpedPackage} (package)`])
    expect(lookup.warnings).toEqual([])
    const restored = await actionJob(ws, inputs(prefix, { ...as(reader), strict: 'true' }), {}, restoreEntry)
    expect(restored.run.code, restored.run.stdout).toBe(0)
    expect(restored.restored).toEqual(allButBumped())
    expect(restored.warnings).toEqual([])
    await runScipioDouble(['prepare', ws, '--framework-cache-policy', 'project'])
    const saved = await actionJob(ws, inputs(prefix, as(writer)), {}, 'dist/save/index.js')
    expect(saved.run.code, saved.run.stdout).toBe(0)
    expect(saved.uploaded).toEqual([bumpedTarget])
    expect(saved.warnings).toHaveLength(1)
    expect(saved.warnings[0]).toMatch(/healing objects that expired or were deleted needs s3:ListBucket/)
    const next = await actionJob(await scenario.bumped(), inputs(prefix, as(reader)), {}, restoreEntry)
    expect(next.run.outputs['cache-hit']).toBe('true')
    expect(next.restored).toEqual(scenario.targets)
  }, 180_000)
})

describe('only a run whose every read was refused says it cannot read the cache', () => {
  const elsewhere = 'not-readable-by-anyone-here'

  it('the action warns once, naming the permission, and strict fails the step', async () => {
    const prefix = `${elsewhere}/action`
    store.proxy.policies = {
      identities: {
        [reader.accessKeyId]: policy({
          Effect: 'Allow',
          Action: 's3:GetObject',
          Resource: `arn:aws:s3:::${bucket}/other/*`,
        }),
      },
    }
    await storeFullSet(prefix)
    const job = await actionJob(await scenario.stored(), inputs(prefix, as(reader)))
    expect(job.run.code, job.run.stdout).toBe(0)
    expect(job.built).toEqual(scenario.targets)
    expect(job.warnings).toHaveLength(1)
    expect(job.warnings[0]).toMatch(
      new RegExp(
        `The cache is unavailable: every read of the cache was refused \\(403 AccessDenied\\): all 6 of its completion markers and package indexes, none answered .*` +
          `they need s3:GetObject on arn:aws:s3:::${bucket}/\\*.*nothing is stored for this build yet`,
      ),
    )
    const strict = await actionJob(await scenario.stored(), inputs(prefix, { ...as(reader), strict: 'true' }))
    expect(strict.run.code).toBe(1)
    expect(strict.run.stdout).toMatch(/::error::strict: .*every read of the cache was refused/)
  }, 180_000)

  it('the command line: restore and status exit 1 when every read is refused, 0 (or 3) when one answered', async () => {
    const prefix = 'public/cli'
    await storeFullSet(prefix)
    const ws = await scenario.bumped()
    const readerEnv = { AWS_ACCESS_KEY_ID: reader.accessKeyId, AWS_SECRET_ACCESS_KEY: reader.secretAccessKey }
    const flags = storeFlags(bucket, store.endpoint, prefix)
    const restore = await runCli(['restore', ...flags], { cwd: ws, env: readerEnv })
    expect(restore.code, restore.stderr).toBe(0)
    expect(restore.stdout).toContain(`Restored ${allButBumped().length} frameworks`)
    expect(restore.stdout).toContain(`Not in the cache: ${bumpedPackage}.`)
    const status = await runCli(['status', ...flags, '--json', '--fail-on-missing'], { cwd: ws, env: readerEnv })
    expect(status.code, status.stderr).toBe(3)
    const report = JSON.parse(status.stdout) as { packages: { identity: string; index: string; reason?: string }[] }
    expect(report.packages.filter((p) => p.index === 'missing')).toEqual([
      expect.objectContaining({
        identity: bumpedPackage,
        reason: 'not stored, or not readable with these credentials (403)',
      }),
    ])
    const publicStatus = await runCli(['status', '--public-url', `${store.endpoint}/${bucket}`, '--prefix', prefix], {
      cwd: ws,
    })
    expect(publicStatus.code, publicStatus.stderr).toBe(0)

    const hidden = storeFlags(bucket, store.endpoint, `${elsewhere}/cli`)
    for (const command of ['restore', 'status']) {
      const refused = await runCli([command, ...hidden], { cwd: await scenario.stored(), env: readerEnv })
      expect(refused.code, `${command}: ${refused.stderr}`).toBe(1)
      expect(refused.stderr).toMatch(/every read of the cache was refused \(403 AccessDenied\)/)
      const anon = await runCli(
        [command, '--public-url', `${store.endpoint}/${bucket}`, '--prefix', `${elsewhere}/cli`],
        {
          cwd: await scenario.stored(),
        },
      )
      expect(anon.code, `${command} (anonymous): ${anon.stderr}`).toBe(1)
      expect(anon.stderr).toMatch(/the objects must be public/)
    }
    const owner = await runCli(['restore', ...hidden], { cwd: await scenario.stored(), env: awsEnv })
    expect(owner.code, owner.stderr).toBe(0) // the owner may list: 404s, an empty cache, no failure
  }, 180_000)
})
