import { afterEach, describe, expect, it } from 'vitest'
import { executePrune, executeScopePrune, planPrune, planScopePrune, pruneGuard } from '../src/cli/prune.js'
import { dayOf } from '../src/records/layout.js'
import { S3Admin } from '../src/storage/s3-admin.js'
import { S3Storage } from '../src/storage/s3.js'
import { runAction, s3TestInputs } from './helpers/action.js'
import { awsEnv, runCli, storeFlags } from './helpers/cli.js'
import { isRunsRequest, putRecords, runnerEnv, storedRecords } from './helpers/records.js'
import { prefixWriterPolicy } from './helpers/policy.js'
import { testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { exampleTargets, exampleWorkspace, runScipioDouble } from './helpers/workspace.js'

/**
 * Run records (src/records/): every run of the action, of each sub-action and of the command line's restore and
 * save writes one, with one PUT at its end; a store that refuses it costs a debug line, nothing more. Nothing that
 * restores or heals ever reads them, and prune never deletes them.
 */

const bucket = 'records-cache'
const store = useStore([bucket])

afterEach(() => {
  store.proxy.policies = undefined
  store.proxy.fault = undefined
})

const inputs = (ws: string, prefix: string, extra: Record<string, string> = {}) =>
  s3TestInputs(store.endpoint, bucket, { prefix, 'package-directory': ws, ...extra })
const debugOn = { ACTIONS_STEP_DEBUG: 'true' }
const isPut = (r: { method: string }) => r.method === 'PUT' || r.method === 'POST'
const isListing = (r: { method: string; url: string }) => r.method === 'GET' && /[?&]list-type=2/.test(r.url)
const namePattern = (via: string, env = runnerEnv()) =>
  new RegExp(`^${env.GITHUB_RUN_ID}-${env.GITHUB_RUN_ATTEMPT}-${env.GITHUB_JOB}-${via}-[0-9a-f]{8}$`)

describe('the record of each kind of run', () => {
  it('a producer, then a consumer: one record each, in the folder of the day, written last', async () => {
    const prefix = 'kinds'
    const producer = await runAction(
      inputs(await exampleWorkspace(), prefix, { mode: 'consumer,producer' }),
      runnerEnv({ GITHUB_EVENT_NAME: 'push', GITHUB_WORKFLOW: 'Dependencies cache' }),
    )
    expect(producer.code, producer.stdout).toBe(0)
    const [made] = await storedRecords(store, bucket, prefix)
    expect(made!.key).toMatch(new RegExp(`^${prefix}/\\.scipio-s3-cache-runs/${dayOf(new Date()).replace(/-/g, '/')}/`))
    expect(made!.name).toMatch(namePattern('action'))
    expect(made!.record).toMatchObject({
      schema: 'scipio-s3-cache/run-record/v1',
      via: 'action',
      mode: 'consumer,producer',
      repository: 'acme/ios-app',
      workflow: 'Dependencies cache',
      event: 'push',
      ref: 'main',
      runner: { os: 'macOS', arch: 'ARM64' },
      xcode: '16.2 (16C5032a)',
      counts: { restored: 0, kept: 0, built: 7, missed: 5, uploaded: 7 },
      reasons: { 'not-produced-yet': 5 },
    })
    expect(made!.record.bytes.up).toBeGreaterThan(0)
    expect(Object.keys(made!.record.ms).sort()).toEqual(['build', 'restore', 'save'])

    store.proxy.requests.length = 0
    const consumer = await runAction(
      inputs(await exampleWorkspace(), prefix),
      runnerEnv({ GITHUB_EVENT_NAME: 'pull_request', GITHUB_HEAD_REF: 'feature/login', GITHUB_RUN_ID: '9000000002' }),
    )
    expect(consumer.code, consumer.stdout).toBe(0)
    expect(consumer.outputs['cache-hit']).toBe('true')
    const records = await storedRecords(store, bucket, prefix)
    expect(records).toHaveLength(2)
    const mine = records.find((r) => r.name.startsWith('9000000002-'))!
    expect(mine.record).toMatchObject({
      via: 'action',
      mode: 'consumer',
      event: 'pull_request',
      ref: 'feature/login',
      counts: { restored: exampleTargets.length, kept: 0, built: 0, missed: 0, uploaded: 0 },
      reasons: {},
      misses: [],
    })
    expect(mine.record.bytes.down).toBeGreaterThan(0)
    expect(mine.record.savedMs).toBeGreaterThanOrEqual(0)
    // One PUT, the run's last request: nothing waited for it.
    const requests = store.proxy.requests
    expect(requests.filter(isPut).map((r) => r.url.split('?')[0])).toEqual([`/${bucket}/${mine.key}`])
    expect(requests[requests.length - 1]!.url.split('?')[0]).toBe(`/${bucket}/${mine.key}`)
    // A restore never reads a record.
    expect(requests.filter((r) => isRunsRequest(r) && !isPut(r))).toEqual([])
  })

  it('the sub-action pair: restore/ records a consumer, save/ a producer, under two names of the same job', async () => {
    const prefix = 'pair'
    const env = runnerEnv({ GITHUB_RUN_ID: '9000000010', GITHUB_EVENT_NAME: 'push' })
    const ws = await exampleWorkspace()
    const restore = await runAction(inputs(ws, prefix), env, 'dist/restore/index.js')
    expect(restore.code, restore.stdout).toBe(0)
    await runScipioDouble(['prepare', ws, '--framework-cache-policy', 'project'])
    const save = await runAction(inputs(ws, prefix), env, 'dist/save/index.js')
    expect(save.code, save.stdout).toBe(0)
    const records = await storedRecords(store, bucket, prefix)
    const restored = records.find((r) => r.record.via === 'restore')!
    const saved = records.find((r) => r.record.via === 'save')!
    expect(records).toHaveLength(2)
    expect(restored.name).toMatch(namePattern('restore', env))
    expect(saved.name).toMatch(namePattern('save', env))
    expect(restored.record).toMatchObject({ mode: 'consumer', counts: { restored: 0, missed: 5, built: 0 } })
    expect(restored.record.ms).toHaveProperty('restore')
    expect(saved.record).toMatchObject({ mode: 'producer', counts: { uploaded: exampleTargets.length } })
    expect(Object.keys(saved.record.ms)).toEqual(['save'])

    // lookup-only moves nothing and records nothing.
    const lookup = await runAction(inputs(ws, prefix, { 'lookup-only': 'true' }), env, 'dist/restore/index.js')
    expect(lookup.code).toBe(0)
    expect(await storedRecords(store, bucket, prefix)).toHaveLength(2)
  })

  it('the command line: restore and save each record, named for no run; --record-runs false records nothing', async () => {
    const prefix = 'cli'
    const ws = await exampleWorkspace()
    const flags = [...storeFlags(bucket, store.endpoint, prefix), '--package-directory', ws]
    const restore = await runCli(['restore', ...flags], { cwd: ws, env: awsEnv })
    expect(restore.code, restore.stderr).toBe(0)
    await runScipioDouble(['prepare', ws, '--framework-cache-policy', 'project'])
    const save = await runCli(['save', ...flags, '--build-succeeded'], { cwd: ws, env: awsEnv })
    expect(save.code, save.stderr).toBe(0)
    const records = await storedRecords(store, bucket, prefix)
    expect(records.map((r) => [r.record.via, r.record.mode])).toEqual(
      expect.arrayContaining([
        ['cli', 'consumer'],
        ['cli', 'producer'],
      ]),
    )
    for (const r of records) {
      expect(r.name).toMatch(/^local-0-none-cli-[0-9a-f]{8}$/)
      expect(r.record).not.toHaveProperty('repository')
    }
    const quiet = await runCli(['restore', ...flags, '--record-runs', 'false'], { cwd: ws, env: awsEnv })
    expect(quiet.code, quiet.stderr).toBe(0)
    expect(await storedRecords(store, bucket, prefix)).toHaveLength(2)
  })
})

describe('when the record cannot be written', () => {
  it('a read-only consumer (PutObject refused, 403): the step passes, one debug line, no warning', async () => {
    const prefix = 'read-only'
    const seed = await runAction(inputs(await exampleWorkspace(), prefix, { mode: 'producer' }), runnerEnv())
    expect(seed.code, seed.stdout).toBe(0)
    store.proxy.policies = { identities: { [testCredentials.accessKeyId]: prefixWriterPolicy(bucket, []) } }
    store.proxy.requests.length = 0
    const run = await runAction(inputs(await exampleWorkspace(), prefix), { ...runnerEnv(), ...debugOn })
    expect(run.code, run.stdout).toBe(0)
    expect(run.outputs['cache-hit']).toBe('true')
    const refused = store.proxy.requests.filter(isPut)
    expect(refused.map((r) => r.status)).toEqual([403])
    expect(isRunsRequest(refused[0]!)).toBe(true)
    expect(run.stdout).not.toMatch(/^::(warning|error)/m)
    const lines = run.stdout.split('\n').filter((l) => /run record/i.test(l))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(
      /^::debug::Run record not written \(refused: these credentials may not write run records\)/,
    )
    expect(await storedRecords(store, bucket, prefix)).toHaveLength(1) // the producer's
  })

  it("record-runs: 'false' writes nothing; a public URL writes nothing and says so at debug level", async () => {
    const prefix = 'off'
    const seed = await runAction(inputs(await exampleWorkspace(), prefix, { mode: 'producer', 'record-runs': 'false' }))
    expect(seed.code, seed.stdout).toBe(0)
    expect(await storedRecords(store, bucket, prefix)).toEqual([])
    store.proxy.requests.length = 0
    const anonymous = await runAction(
      { 'public-url': `${store.endpoint}/${bucket}`, prefix, 'package-directory': await exampleWorkspace() },
      debugOn,
    )
    expect(anonymous.code, anonymous.stdout).toBe(0)
    expect(store.proxy.requests.filter(isPut)).toEqual([])
    expect(anonymous.stdout).toMatch(/^::debug::Run record not written: .* is read-only \(public-url\)\.$/m)
  })
})

describe('records stay out of the cache', () => {
  it("a producer's listing of its prefix starts after the records: 1,200 of them add no page", async () => {
    const prefix = 'listing'
    const first = await runAction(inputs(await exampleWorkspace(), prefix, { mode: 'consumer,producer' }))
    expect(first.code, first.stdout).toBe(0)
    await putRecords(store, bucket, prefix, 1200)
    store.proxy.requests.length = 0
    const again = await runAction(inputs(await exampleWorkspace(), prefix, { mode: 'producer' }))
    expect(again.code, again.stdout).toBe(0)
    const listings = store.proxy.requests.filter(isListing)
    expect(listings).toHaveLength(1)
    expect(decodeURIComponent(listings[0]!.url)).toContain(`start-after=${prefix}/.scipio-s3-cache-runs0`)
    expect(store.proxy.requests.filter((r) => isRunsRequest(r) && !isPut(r))).toEqual([])
  })

  it('prune, of the shared cache or of the scopes, never lists or deletes a record', async () => {
    const prefix = 'prune'
    const producer = await runAction(inputs(await exampleWorkspace(), prefix, { mode: 'producer' }))
    expect(producer.code, producer.stdout).toBe(0)
    const scoped = await runAction(
      inputs(await exampleWorkspace(), prefix, { mode: 'producer', scope: 'pull-request' }),
      { GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF: 'refs/pull/7/merge', GITHUB_ACTIONS: 'true' },
    )
    expect(scoped.code, scoped.stdout).toBe(0)
    await putRecords(store, bucket, prefix, 1200)
    const records = (await store.listKeys(bucket, `${prefix}/.scipio-s3-cache-runs/`)).length
    expect(records).toBe(1202)

    const settings = store.settings(bucket)
    const admin = new S3Admin(settings)
    store.proxy.requests.length = 0
    const plan = await planPrune({
      prefix,
      plans: [],
      olderThanDays: 0,
      now: new Date(Date.now() + 60_000),
      storage: new S3Storage(settings),
      admin,
    })
    expect(store.proxy.requests.filter(isListing)).toHaveLength(1)
    expect(plan.candidates.length).toBeGreaterThan(0)
    expect(plan.candidates.filter((c) => c.key.includes('.scipio-s3-cache-runs'))).toEqual([])
    const pruned = await executePrune(plan, admin, pruneGuard(plan, new S3Storage(settings), admin))
    expect(pruned.failures).toEqual([])
    expect(pruned.deleted).toBe(plan.candidates.length)

    const scopes = await planScopePrune({ prefix, keep: [], now: new Date(), admin })
    expect(scopes.candidates.length).toBeGreaterThan(0)
    await executeScopePrune(scopes, admin, new S3Storage(settings))
    const left = await store.listKeys(bucket, `${prefix}/`)
    expect(left.filter((k) => k.includes('.scipio-s3-cache-runs/'))).toHaveLength(records)
    expect(left.filter((k) => !k.includes('.scipio-s3-cache-runs/'))).toEqual([])
  })
})
