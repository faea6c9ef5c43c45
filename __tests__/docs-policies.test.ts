import { CreateBucketCommand } from '@aws-sdk/client-s3'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { pullRequestEnv, s3TestInputs } from './helpers/action.js'
import { runCli, storeFlags } from './helpers/cli.js'
import { jsonBlocks } from './helpers/docs.js'
import { actionJob, bumpedTarget, deniedRequests, pinBump, type Job, type PinBump } from './helpers/pin-bump.js'
import { callerOf, parsePolicy, type PolicyDocument } from './helpers/policy.js'
import { putHistory, syntheticHistory } from './helpers/insights.js'
import type { RecordedRequest } from './helpers/proxy.js'
import { isRunsRequest } from './helpers/records.js'
import { root, testCredentials, testKeyPair, type TestCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'

/**
 * Every IAM policy and bucket policy in the docs runs the job it is for, against a store that enforces exactly that
 * policy as S3 does (helpers/policy.ts). Each block names its job in the comment before it
 * (`<!-- iam-policy: consumer -->`); a policy too narrow for its job fails here, and so does code that needs more
 * than the docs grant. `my-bucket` becomes the job's own bucket; `scipio` stays the prefix.
 */

const prefix = 'scipio'
const account = '123456789012'

interface DocumentedPolicy {
  file: string
  line: number
  kind: string
  name: string
  document: unknown
}

/** Every JSON block in the README and docs/ that is a policy (it has a Statement), with the comment naming it. */
function documentedPolicies(): { policies: DocumentedPolicy[]; unnamed: string[] } {
  const files = ['README.md', 'SECURITY.md', ...fs.readdirSync(path.join(root, 'docs')).map((f) => `docs/${f}`)]
  const policies: DocumentedPolicy[] = []
  const unnamed: string[] = []
  for (const file of files.filter((f) => f.endsWith('.md'))) {
    for (const block of jsonBlocks(fs.readFileSync(path.join(root, file), 'utf8'))) {
      if (!/"(Statement|Effect)"\s*:/.test(block.text)) continue // a lifecycle rule, not a policy
      let document: unknown
      try {
        document = JSON.parse(block.text)
      } catch {
        unnamed.push(`${file}:${block.line} (not a whole JSON document)`)
        continue
      }
      if (!block.marker) unnamed.push(`${file}:${block.line}`)
      else policies.push({ file, line: block.line, ...block.marker, document })
    }
  }
  return { policies, unnamed }
}

/** A job in `bucket` (its policy enforced), as the caller `who`; its expectations fail the test. */
type JobRunner = (bucket: string, who: TestCredentials) => Promise<void>

const identities: Record<string, TestCredentials> = Object.fromEntries(
  [
    'consumer',
    'producer',
    'pull-request-role',
    'main-producer-role',
    'prune',
    'prune-scopes',
    'repack',
    'insights',
  ].map((name) => [name, testKeyPair(name)]),
)
const store = useStore([], { credentials: [testCredentials, ...Object.values(identities)] })

let scenario: PinBump
beforeAll(async () => {
  scenario = await pinBump()
})

const keys = (c: TestCredentials) => ({ 'access-key-id': c.accessKeyId, 'secret-access-key': c.secretAccessKey })
const inputs = (bucket: string, extra: Record<string, string> = {}) => ({
  ...s3TestInputs(store.endpoint, bucket),
  prefix,
  'cache-swiftpm': 'false',
  ...extra,
})
const sentBy = (who: TestCredentials | 'anonymous', requests: RecordedRequest[]) =>
  requests.filter((r) => {
    const caller = callerOf(r)
    return who === 'anonymous'
      ? caller === 'anonymous'
      : caller !== 'anonymous' && caller.accessKeyId === who.accessKeyId
  })

function expectOk(job: Job, who: string) {
  expect(job.run.code, `${who}: ${job.run.stdout.slice(-3000)}`).toBe(0)
  expect(job.warnings, who).toEqual([])
}

/** The owner's producer (full rights) stores the set before the bump. */
async function ownerStores(bucket: string, ws?: string): Promise<void> {
  const job = await actionJob(ws ?? (await scenario.stored()), inputs(bucket, { mode: 'producer' }))
  expectOk(job, "owner's producer")
}

/** Runs `job`, then checks that nothing `who` sent was refused: what the code needs, the policy grants. */
async function granting(who: TestCredentials | 'anonymous', job: () => Promise<void>): Promise<void> {
  const from = store.proxy.requests.length
  await job()
  const sent = sentBy(who, store.proxy.requests.slice(from))
  expect(sent.length).toBeGreaterThan(0)
  expect(deniedRequests(sent)).toEqual([])
}

const allButBumped = () => scenario.targets.filter((t) => t !== bumpedTarget)

const runners: Record<string, JobRunner> = {
  'iam-policy: consumer': async (bucket, who) => {
    await ownerStores(bucket)
    await granting(who, async () => {
      const job = await actionJob(await scenario.bumped(), inputs(bucket, { ...keys(who), strict: 'true' }))
      expectOk(job, 'consumer')
      expect(job.restored).toEqual(allButBumped())
      expect(job.built).toEqual([bumpedTarget])
    })
    // Its one write, the run record, went through: the policy grants the records' folder, and nothing else.
    const writes = sentBy(who, store.proxy.requests).filter((r) => r.method === 'PUT')
    expect(writes.map((r) => [isRunsRequest(r), r.status])).toEqual([[true, 200]])
  },
  'iam-policy: producer': async (bucket, who) => {
    await ownerStores(bucket)
    await granting(who, async () => {
      const job = await actionJob(
        await scenario.bumped(),
        inputs(bucket, { ...keys(who), mode: 'consumer,producer', 'should-publish': 'true', strict: 'true' }),
      )
      expectOk(job, 'producer')
      expect(job.uploaded).toEqual([bumpedTarget])
    })
    const next = await actionJob(await scenario.bumped(), inputs(bucket))
    expectOk(next, 'next consumer')
    expect(next.run.outputs['cache-hit']).toBe('true')
  },
  'iam-policy: pull-request-role': async (bucket, who) => {
    await ownerStores(bucket)
    const pr = async () =>
      actionJob(
        await scenario.bumped(),
        inputs(bucket, { ...keys(who), mode: 'consumer,producer', scope: 'pull-request', strict: 'true' }),
        await pullRequestEnv(7),
      )
    await granting(who, async () => {
      const first = await pr()
      expectOk(first, 'first push')
      expect(first.restored).toEqual(allButBumped())
      expect(first.uploaded).toEqual([bumpedTarget])
      const second = await pr()
      expectOk(second, 'second push')
      expect(second.run.outputs['cache-hit']).toBe('true')
    })
  },
  'iam-policy: main-producer-role': async (bucket, who) => {
    await granting(who, async () => {
      const first = await actionJob(
        await scenario.stored(),
        inputs(bucket, { ...keys(who), mode: 'consumer,producer' }),
      )
      expectOk(first, 'first producer')
      expect(first.uploaded).toEqual(scenario.targets)
      const bump = await actionJob(
        await scenario.bumped(),
        inputs(bucket, { ...keys(who), mode: 'consumer,producer', strict: 'true' }),
      )
      expectOk(bump, 'producer after the bump')
      expect(bump.uploaded).toEqual([bumpedTarget])
    })
    const next = await actionJob(await scenario.bumped(), inputs(bucket))
    expect(next.run.outputs['cache-hit']).toBe('true')
  },
  'bucket-policy: public-read': async (bucket) => {
    await ownerStores(bucket)
    await granting('anonymous', async () => {
      const job = await actionJob(await scenario.bumped(), {
        'public-url': `${store.endpoint}/${bucket}`,
        prefix,
        strict: 'true',
      })
      expectOk(job, 'anonymous consumer')
      expect(job.restored).toEqual(allButBumped())
      expect(job.built).toEqual([bumpedTarget])
    })
  },
  'iam-policy: prune': async (bucket, who) => {
    await ownerStores(bucket)
    const bumped = await scenario.bumped()
    await ownerStores(bucket, bumped)
    const env = { AWS_ACCESS_KEY_ID: who.accessKeyId, AWS_SECRET_ACCESS_KEY: who.secretAccessKey }
    await granting(who, async () => {
      // Keeping the bumped set only: the old swift-log index, pin record, marker and Logging archive go.
      const run = await runCli(
        ['prune', ...storeFlags(bucket, store.endpoint, prefix), '--older-than', '0', '--delete'],
        {
          cwd: bumped,
          env,
        },
      )
      expect(run.code, run.stderr).toBe(0)
      expect(run.stdout).toContain('Deleted 4 of 4 objects.')
    })
  },
  'iam-policy: prune-scopes': async (bucket, who) => {
    await ownerStores(bucket)
    const pr = await actionJob(
      await scenario.bumped(),
      inputs(bucket, { mode: 'consumer,producer', scope: 'pull-request' }),
      await pullRequestEnv(5),
    )
    expect(pr.uploaded).toEqual([bumpedTarget])
    const scope = await store.listKeys(bucket, `${prefix}/.scipio-s3-cache-scopes/pr-5/`)
    expect(scope.length).toBeGreaterThan(0)
    const env = { AWS_ACCESS_KEY_ID: who.accessKeyId, AWS_SECRET_ACCESS_KEY: who.secretAccessKey }
    await granting(who, async () => {
      const run = await runCli(
        ['prune', '--scopes', ...storeFlags(bucket, store.endpoint, prefix), '--keep-scope', '6', '--delete'],
        { cwd: await scenario.bumped(), env },
      )
      expect(run.code, run.stderr).toBe(0)
      expect(run.stdout).toContain(`Deleted ${scope.length} of ${scope.length} objects.`)
    })
    expect(await store.listKeys(bucket, `${prefix}/.scipio-s3-cache-scopes/`)).toEqual([])
  },
  'iam-policy: repack': async (bucket, who) => {
    await ownerStores(bucket)
    const env = { AWS_ACCESS_KEY_ID: who.accessKeyId, AWS_SECRET_ACCESS_KEY: who.secretAccessKey }
    await granting(who, async () => {
      const run = await runCli(['repack', ...storeFlags(bucket, store.endpoint, prefix), '--older-than', '0'], {
        cwd: await scenario.stored(),
        env,
      })
      expect(run.code, run.stderr).toBe(0)
      expect(run.stdout).toMatch(/Repacked [1-9]\d* archives/)
    })
    const next = await actionJob(await scenario.stored(), inputs(bucket))
    expectOk(next, 'consumer after repack')
    expect(next.run.outputs['cache-hit']).toBe('true')
  },
  'iam-policy: insights': async (bucket, who) => {
    await putHistory(store, bucket, prefix, syntheticHistory({ records: 60, days: 5, now: new Date(), seed: 3 }))
    const env = { AWS_ACCESS_KEY_ID: who.accessKeyId, AWS_SECRET_ACCESS_KEY: who.secretAccessKey }
    const report = () =>
      runCli(['insights', ...storeFlags(bucket, store.endpoint, prefix), '--since', '5d', '--json'], {
        cwd: root,
        env,
      })
    await granting(who, async () => {
      const first = await report()
      expect(first.code, first.stderr).toBe(0)
      const reads = (JSON.parse(first.stdout) as { reads: { records: number; rollupsWritten: number } }).reads
      expect(reads.records).toBe(60)
      expect(reads.rollupsWritten).toBeGreaterThan(0)
      const second = await report()
      expect(second.code, second.stderr).toBe(0)
      expect(JSON.parse(second.stdout)).toMatchObject({ reads: { rollupsWritten: 0 } })
    })
  },
}

/** What each trust policy must say: the `sub` claim of the jobs its role is for. */
const trustedSubjects: Record<string, string> = {
  'pull-request-role': 'repo:<owner>/<repo>:pull_request',
  'main-producer-role': 'repo:<owner>/<repo>:ref:refs/heads/main',
}

const found = documentedPolicies()

describe('the policies in the docs', () => {
  it('each names the job it is for, and every job has its policy', () => {
    expect(found.unnamed, 'a policy block without a <!-- iam-policy: JOB --> comment before it').toEqual([])
    const runnable = found.policies.filter((p) => p.kind !== 'trust-policy').map((p) => `${p.kind}: ${p.name}`)
    expect(runnable.sort()).toEqual(Object.keys(runners).sort())
    const trusts = found.policies.filter((p) => p.kind === 'trust-policy')
    expect(trusts.map((p) => p.name).sort()).toEqual(Object.keys(trustedSubjects).sort())
    for (const trust of trusts) {
      const text = JSON.stringify(trust.document)
      expect(text, `${trust.file}:${trust.line}`).toContain('"sts:AssumeRoleWithWebIdentity"')
      expect(text, `${trust.file}:${trust.line}`).toContain(`"${trustedSubjects[trust.name]}"`)
    }
  })

  it.each(found.policies.filter((p) => p.kind !== 'trust-policy').map((p) => [`${p.kind}: ${p.name}`, p] as const))(
    '%s runs its job with exactly that policy',
    async (id, documented) => {
      const bucket = `docs-${documented.name}`
      await store.s3.client().send(new CreateBucketCommand({ Bucket: bucket }))
      const text = JSON.stringify(documented.document).replaceAll('my-bucket', bucket).replaceAll('<account>', account)
      const isBucketPolicy = documented.kind === 'bucket-policy'
      const policy: PolicyDocument = parsePolicy(JSON.parse(text), isBucketPolicy ? 'bucket' : 'identity')
      const who = identities[documented.name] ?? testCredentials
      store.proxy.policies = isBucketPolicy
        ? { buckets: { [bucket]: policy } }
        : { identities: { [who.accessKeyId]: policy } }
      try {
        await runners[id]!(bucket, who)
      } finally {
        store.proxy.policies = undefined
      }
    },
    240_000,
  )
})
