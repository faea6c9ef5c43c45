import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DeleteObjectCommand } from '@aws-sdk/client-s3'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { pullRequestEnv, pullRequestEvent, runAction, s3TestInputs, type ActionRun } from './helpers/action.js'
import { awsEnv, runCli, storeFlags } from './helpers/cli.js'
import { root } from './helpers/s3-server.js'
import { testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { prefixWriterPolicy } from './helpers/policy.js'
import { isRunsRequest } from './helpers/records.js'
import { doubleEnv, doubleWorkspace, readDoubleLog, type DoubleGraph } from './helpers/workspace.js'
import { pullRequestNumber, readScope } from '../src/inputs/scope.js'
import { Formats, ScopesFolder } from '../src/constants.js'
import { parseIndex } from '../src/bucket/cache-index.js'
import { contentObjectKey, scopePrefix } from '../src/bucket/layout.js'

/**
 * Pull-request scopes (issue 26), through dist/index.js as a runner runs it. main's producer fills the shared cache;
 * a pull request that bumps one pin writes what it built into its own scope, with credentials that may write only
 * there (the proxy enforces that policy), and its next push restores everything. main and other pull requests never
 * read that scope.
 */

const bucket = 'scope-cache'
const prWriter = { accessKeyId: 'AKIASCIPIOSCOPE0001', secretAccessKey: 'scope-writer-secret-0123456789abcdefgh' }
const store = useStore([bucket], { credentials: [testCredentials, prWriter] })

afterEach(() => {
  store.proxy.policies = undefined
  store.proxy.fault = undefined
})

const manifest =
  '// swift-tools-version: 5.9\nimport PackageDescription\nlet package = Package(name: "Scoped", platforms: [.iOS(.v15)])\n'

function revision(text: string): string {
  return createHash('sha1').update(text).digest('hex')
}

/** Four packages of two targets each; `bumped` moves pkg1 to another version. */
function workspace(bumped = false): Promise<string> {
  const pins = Array.from({ length: 4 }, (_, i) => {
    const bump = bumped && i === 1
    return {
      identity: `pkg${i}`,
      kind: 'remoteSourceControl',
      location: `https://example.com/pkg${i}.git`,
      state: { revision: revision(`pkg${i}${bump ? '-bumped' : ''}`), version: bump ? '2.0.0' : `1.0.${i}` },
    }
  })
  const graph: DoubleGraph = Object.fromEntries(
    pins.map((p, i) => [p.identity, { targets: [0, 1].map((t) => ({ name: `P${i}T${t}`, binarySize: 4096 })) }]),
  )
  return doubleWorkspace(JSON.stringify({ pins, version: 2 }, null, 2), graph, manifest)
}

const asPrWriter = { 'access-key-id': prWriter.accessKeyId, 'secret-access-key': prWriter.secretAccessKey }

function inputs(ws: string, prefix: string, extra: Record<string, string> = {}) {
  // GITHUB_ACTIONS is set for pull requests here, without GitHub's cache service: leave SwiftPM's cache out.
  return {
    ...s3TestInputs(store.proxy.endpoint, bucket),
    prefix,
    'package-directory': ws,
    'cache-swiftpm': 'false',
    ...extra,
  }
}

const list = (run: ActionRun, name: string) => (JSON.parse(run.outputs[name] ?? '[]') as string[]).sort()
const warnings = (run: ActionRun) => run.stdout.split('\n').filter((l) => l.startsWith('::warning'))

function expectOk(run: ActionRun, who: string) {
  expect(run.code, `${who}: ${run.stdout.slice(-3000)}`).toBe(0)
}

/** The requests sent from `from` on, as `METHOD key` with the bucket left out. */
function requestsSince(from: number): { method: string; key: string; status?: number }[] {
  return store.proxy.requests.slice(from).map((r) => ({
    method: r.method,
    key: decodeURIComponent(new URL(r.url, 'http://proxy').pathname).replace(`/${bucket}/`, ''),
    ...(r.status !== undefined ? { status: r.status } : {}),
  }))
}

const scopeFolder = (prefix: string, scope: string) => `${prefix}/.scipio-s3-cache-scopes/${scope}/`
const builtLog = async (file: string) =>
  (await readDoubleLog(file))
    .filter((e) => e.event === 'built')
    .map((e) => e.target)
    .sort()

async function mainProducer(prefix: string): Promise<void> {
  const run = await runAction(inputs(await workspace(), prefix, { mode: 'producer' }))
  expectOk(run, "main's producer")
  expect(list(run, 'uploaded')).toHaveLength(8)
}

describe('a pull request that bumps a pin', () => {
  it('builds it once into its scope with credentials that may write only there; its next push is a full hit', async () => {
    const prefix = 'bump'
    await mainProducer(prefix)
    // The pull-request role of docs/storage.md: the scopes, and the run records.
    store.proxy.policies = {
      identities: {
        [prWriter.accessKeyId]: prefixWriterPolicy(bucket, [
          `${prefix}/.scipio-s3-cache-scopes/`,
          `${prefix}/.scipio-s3-cache-runs/`,
        ]),
      },
    }
    const log = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'double-log-')), 'log')
    const env = { ...(await pullRequestEnv(12)), SCIPIO_TEST_DOUBLE_LOG: log }
    const pr = (ws: string) =>
      runAction(inputs(ws, prefix, { mode: 'consumer,producer', scope: 'pull-request', ...asPrWriter }), env)

    const from = store.proxy.requests.length
    const first = await pr(await workspace(true))
    expectOk(first, 'first push')
    expect(warnings(first)).toEqual([])
    expect(await builtLog(log)).toEqual(['P1T0', 'P1T1'])
    expect(list(first, 'restored')).toEqual(['P0T0', 'P0T1', 'P2T0', 'P2T1', 'P3T0', 'P3T1'])
    expect(list(first, 'uploaded')).toEqual(['P1T0', 'P1T1'])
    const reasons = JSON.parse(first.outputs['miss-reasons'] ?? '{}') as Record<string, string>
    expect(Object.keys(reasons)).toEqual(['pkg1'])
    expect(reasons.pkg1).toContain('(looked in scope pr-12, then the shared cache)')
    const writes = requestsSince(from).filter((r) => r.method === 'PUT' || r.method === 'POST' || r.method === 'DELETE')
    expect(writes.length).toBeGreaterThan(0)
    // Every write went into the scope, but the run's record, and the policy refused none.
    const record = writes.filter((w) => w.key.startsWith(`${prefix}/.scipio-s3-cache-runs/`))
    expect(record.map((w) => w.method)).toEqual(['PUT'])
    expect(writes.filter((w) => !w.key.startsWith(scopeFolder(prefix, 'pr-12')) && !record.includes(w))).toEqual([])
    expect(writes.filter((w) => w.status === 403)).toEqual([])

    await fs.rm(log, { force: true })
    const secondFrom = store.proxy.requests.length
    const second = await pr(await workspace(true))
    expectOk(second, 'second push')
    expect(warnings(second)).toEqual([])
    expect(second.outputs['cache-hit']).toBe('true')
    expect(list(second, 'restored')).toHaveLength(8)
    expect(await builtLog(log)).toEqual([])
    const requests = requestsSince(secondFrom)
    // The scope's marker lists the whole set: no index is read, and nothing is written.
    expect(requests.filter((r) => r.key.includes('/.scipio-s3-cache/packages/'))).toEqual([])
    expect(requests.filter((r) => r.method !== 'GET' && !isRunsRequest({ url: `/${r.key}` }))).toEqual([])
    expect(requests.filter((r) => /\.tar\.(zst|gz)$/.test(r.key))).toHaveLength(8)
    // Where each came from: P1's frameworks from the scope, the rest from the shared cache.
    expect(second.summary).toContain('<td>P1T0</td><td>pkg1</td><td>restored from scope pr-12</td>')
    expect(second.summary).toContain('<td>P0T0</td><td>pkg0</td><td>restored from the shared cache</td>')
    expect(second.summary).toContain(
      'Scope pr-12: 2 frameworks restored from this scope, 6 from the shared cache, 0 built',
    )
  }, 180_000)

  it("a shared archive its marker names expires: one push rebuilds it into the scope, the pushes after it don't", async () => {
    const prefix = 'expired-shared'
    await mainProducer(prefix)
    const log = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'double-log-')), 'log')
    const env = { ...(await pullRequestEnv(15)), SCIPIO_TEST_DOUBLE_LOG: log }
    const push = async (n: number) => {
      await fs.rm(log, { force: true })
      const run = await runAction(
        inputs(await workspace(true), prefix, { mode: 'consumer,producer', scope: 'pull-request' }),
        { ...env, SCIPIO_TEST_DOUBLE_NONDETERMINISM: `push ${n}` },
      )
      expectOk(run, `push ${n}`)
      return { run, built: await builtLog(log) }
    }
    const first = await push(1)
    expect(first.built).toEqual(['P1T0', 'P1T1'])
    // The scope's marker names the shared cache's archives of the packages the pull request did not bump.
    const shared = (await sharedKeys(prefix)).find((k) => k.startsWith(`${prefix}/P2T0/`))!
    const marker = (await listKeys(`${prefix}/${ScopesFolder}/pr-15`)).find((k) => k.includes('/complete/'))!
    expect((await readText(marker)).includes(shared)).toBe(true)
    await store.s3.client().send(new DeleteObjectCommand({ Bucket: bucket, Key: shared }))

    const second = await push(2)
    expect(warnings(second.run)).toEqual([expect.stringMatching(/Cache miss for P2T0 .*is missing\. It will be built/)])
    expect(second.built).toEqual(['P2T0'])
    expect(list(second.run, 'uploaded')).toEqual(['P2T0'])
    for (const n of [3, 4]) {
      const later = await push(n)
      expect(warnings(later.run), `push ${n}`).toEqual([])
      expect(later.built, `push ${n}`).toEqual([])
      expect(list(later.run, 'uploaded'), `push ${n}`).toEqual([])
      expect(later.run.outputs['cache-hit'], `push ${n}`).toBe('true')
    }
  }, 240_000)

  it("main's consumer and another pull request never read the scope", async () => {
    const prefix = 'isolated'
    await mainProducer(prefix)
    const first = await runAction(
      inputs(await workspace(true), prefix, { mode: 'consumer,producer', scope: 'pull-request' }),
      await pullRequestEnv(12),
    )
    expectOk(first, 'pull request 12')
    expect(list(first, 'uploaded')).toEqual(['P1T0', 'P1T1'])

    const from = store.proxy.requests.length
    const mainConsumer = await runAction(inputs(await workspace(true), prefix))
    expectOk(mainConsumer, "main's consumer with the bumped pin")
    expect(list(mainConsumer, 'built')).toEqual(['P1T0', 'P1T1'])
    const other = await runAction(
      inputs(await workspace(true), prefix, { mode: 'consumer,producer', scope: 'pull-request' }),
      await pullRequestEnv(13),
    )
    expectOk(other, 'pull request 13')
    expect(list(other, 'built')).toEqual(['P1T0', 'P1T1'])
    const touched = requestsSince(from).filter((r) => r.key.startsWith(scopeFolder(prefix, 'pr-12')))
    expect(touched).toEqual([])
  }, 180_000)

  it('the same restricted credentials cannot write the shared cache (the policy is real)', async () => {
    const prefix = 'policy'
    store.proxy.policies = {
      identities: { [prWriter.accessKeyId]: prefixWriterPolicy(bucket, [`${prefix}/.scipio-s3-cache-scopes/`]) },
    }
    const run = await runAction(inputs(await workspace(), prefix, { mode: 'producer', ...asPrWriter }))
    expectOk(run, 'unscoped producer with the scope role')
    expect(list(run, 'uploaded')).toEqual([])
    expect(run.stdout).toMatch(/AccessDenied|Access Denied|denied/i)
  }, 120_000)

  it("a fork's pull request writes nothing, even with scope: pull-request", async () => {
    const prefix = 'fork'
    await mainProducer(prefix)
    const from = store.proxy.requests.length
    const run = await runAction(
      inputs(await workspace(true), prefix, { mode: 'consumer,producer', scope: 'pull-request' }),
      await pullRequestEnv(14, 'someone/app'),
    )
    expectOk(run, 'fork')
    expect(run.stdout).toContain('comes from a fork')
    expect(list(run, 'uploaded')).toEqual([])
    // Nothing but its run's record.
    expect(
      requestsSince(from).filter(
        (r) => r.method !== 'GET' && r.method !== 'HEAD' && !isRunsRequest({ url: `/${r.key}` }),
      ),
    ).toEqual([])
  }, 120_000)

  it("'pull-request' outside a pull request fails, naming the input", async () => {
    const run = await runAction(inputs(await workspace(), 'nopr', { scope: 'pull-request' }), {
      GITHUB_ACTIONS: 'true',
      GITHUB_EVENT_NAME: 'push',
      GITHUB_REF: 'refs/heads/main',
    })
    expect(run.code).not.toBe(0)
    expect(run.stdout).toMatch(/Input 'scope'.*'pull-request' needs a pull request's run.*'push'/)
  }, 60_000)
})

describe('the action takes no named scope', () => {
  it("'feature-login' in a pull request's job fails the step, naming the input and the fix, and writes nothing", async () => {
    const from = store.proxy.requests.length
    const run = await runAction(
      inputs(await workspace(true), 'named', { mode: 'consumer,producer', scope: 'feature-login' }),
      await pullRequestEnv(12),
    )
    expect(run.code).not.toBe(0)
    expect(run.stdout).toMatch(
      /Input 'scope': 'feature-login' is not a scope the action accepts: use 'pull-request' .*Named scopes are for the command line/,
    )
    expect(requestsSince(from)).toEqual([])
  }, 60_000)
})

describe('readScope', () => {
  const reader = (scope: string) => (name: string) => (name === 'scope' ? scope : '')

  const commandLine = (scope: string) => Object.assign(reader(scope), { commandLine: true as const })

  it('is absent when empty, pr-<N> from GITHUB_REF or the payload, a checked name on the command line only', async () => {
    expect(readScope(reader(''), {})).toBeUndefined()
    expect(readScope(reader('pull-request'), { GITHUB_REF: 'refs/pull/7/merge' })).toBe('pr-7')
    // pull_request_target runs on the base branch's ref: the number comes from the payload.
    const event = await pullRequestEvent(31)
    expect(readScope(reader('pull-request'), { GITHUB_REF: 'refs/heads/main', GITHUB_EVENT_PATH: event })).toBe('pr-31')
    expect(pullRequestNumber({ GITHUB_REF: 'refs/heads/main' })).toBeUndefined()
    expect(readScope(commandLine('feature-login'), {})).toBe('feature-login')
    expect(() => readScope(commandLine('feature/login'), {})).toThrow(/Input 'scope'.*'feature-login'/)
    expect(() => readScope(commandLine('../x'), {})).toThrow(/Input 'scope'/)
    // The action takes no named scope: a pull request could write what a trusted job of that name restores.
    for (const name of ['feature-login', 'pr-13', 'main'])
      expect(() => readScope(reader(name), { GITHUB_REF: 'refs/pull/12/merge' })).toThrow(
        new RegExp(`Input 'scope': '${name}' is not a scope the action accepts: use 'pull-request'`),
      )
  })
})

const listKeys = (prefix: string) => store.listKeys(bucket, `${prefix}/`)

async function readText(key: string): Promise<string> {
  const response = await fetch(`${store.s3.endpoint}/${bucket}/${key}`)
  return response.text()
}

const sharedKeys = async (prefix: string) => (await listKeys(prefix)).filter((k) => !k.includes(`/${ScopesFolder}/`))

const flags = (prefix: string) => storeFlags(bucket, store.endpoint, prefix)

/** The scope lifecycle rule of docs/storage.md, with its prefix `scipio/` moved to `prefix/`. */
async function documentedScopeRule(
  prefix: string,
): Promise<{ Filter: { Prefix: string }; Expiration: { Days: number } }> {
  const doc = await fs.readFile(path.join(root, 'docs/storage.md'), 'utf8')
  const block = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('scopes-expiry'))
  expect(block, 'the scope lifecycle rule in docs/storage.md').toBeDefined()
  const rule = (JSON.parse(block!) as { Rules: { Filter: { Prefix: string }; Expiration: { Days: number } }[] })
    .Rules[0]!
  return { ...rule, Filter: { Prefix: rule.Filter.Prefix.replace(/^scipio\//, `${prefix}/`) } }
}

describe('housekeeping', () => {
  it('prune --scopes and the lifecycle rule remove scopes only; the shared cache stays as it was', async () => {
    const prefix = 'housekeeping'
    await mainProducer(prefix)
    for (const number of [12, 13]) {
      const run = await runAction(
        inputs(await workspace(true), prefix, { mode: 'consumer,producer', scope: 'pull-request' }),
        await pullRequestEnv(number),
      )
      expectOk(run, `pull request ${number}`)
      expect(list(run, 'uploaded')).toEqual(['P1T0', 'P1T1'])
    }
    const shared = await sharedKeys(prefix)
    const scopeKeys = (scope: string) => listKeys(`${prefix}/${ScopesFolder}/${scope}`)
    expect((await scopeKeys('pr-12')).length).toBeGreaterThan(0)
    const ws = await workspace()

    // The shared cache's own prune never takes a scope's objects.
    const sharedPrune = await runCli(['prune', ...flags(prefix), '--older-than', '0', '--delete'], {
      cwd: ws,
      env: awsEnv,
    })
    expect(sharedPrune.code, sharedPrune.stderr).toBe(0)
    expect((await scopeKeys('pr-12')).length).toBeGreaterThan(0)

    // Pull request 12 is closed, 13 is open.
    const dry = await runCli(['prune', '--scopes', ...flags(prefix), '--keep-scope', '13'], {
      cwd: ws,
      env: awsEnv,
    })
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/pr-12 .*prune: not kept/)
    expect(dry.stdout).toMatch(/pr-13 .*keep/)
    expect((await scopeKeys('pr-12')).length).toBeGreaterThan(0)
    const pruned = await runCli(['prune', '--scopes', ...flags(prefix), '--keep-scope', '13', '--delete'], {
      cwd: ws,
      env: awsEnv,
    })
    expect(pruned.code, pruned.stderr).toBe(0)
    expect(await scopeKeys('pr-12')).toEqual([])
    expect((await scopeKeys('pr-13')).length).toBeGreaterThan(0)
    expect(await sharedKeys(prefix)).toEqual(shared)

    // The documented lifecycle rule expires everything under its prefix: here, all of it at once.
    const rule = await documentedScopeRule(prefix)
    expect(rule.Filter.Prefix).toBe(`${prefix}/${ScopesFolder}/`)
    const client = store.s3.client()
    for (const key of await listKeys(rule.Filter.Prefix.replace(/\/$/, '')))
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
    expect(await sharedKeys(prefix)).toEqual(shared)

    // main's consumer still restores everything; pull request 13 builds its bump again, quietly, into its scope.
    const mainConsumer = await runAction(inputs(await workspace(), prefix))
    expectOk(mainConsumer, "main's consumer")
    expect(mainConsumer.outputs['cache-hit']).toBe('true')
    const again = await runAction(
      inputs(await workspace(true), prefix, { mode: 'consumer,producer', scope: 'pull-request' }),
      await pullRequestEnv(13),
    )
    expectOk(again, 'pull request 13 after expiry')
    expect(warnings(again)).toEqual([])
    expect(list(again, 'uploaded')).toEqual(['P1T0', 'P1T1'])
  }, 240_000)

  it('prune --scopes --older-than removes scopes nothing was written to for that long', async () => {
    const prefix = 'aged'
    const run = await runAction(
      inputs(await workspace(true), prefix, { mode: 'consumer,producer', scope: 'pull-request' }),
      await pullRequestEnv(21),
    )
    expectOk(run, 'pull request 21')
    const ws = await workspace()
    const young = await runCli(['prune', '--scopes', ...flags(prefix), '--older-than', '1', '--delete'], {
      cwd: ws,
      env: awsEnv,
    })
    expect(young.code, young.stderr).toBe(0)
    expect((await listKeys(`${prefix}/${ScopesFolder}/pr-21`)).length).toBeGreaterThan(0)
    const old = await runCli(['prune', '--scopes', ...flags(prefix), '--older-than', '0', '--delete'], {
      cwd: ws,
      env: awsEnv,
    })
    expect(old.code, old.stderr).toBe(0)
    expect(old.stdout).toMatch(/pr-21 .*prune: nothing written since/)
    expect(await listKeys(`${prefix}/${ScopesFolder}`)).toEqual([])
    const bare = await runCli(['prune', '--scopes', ...flags(prefix)], { cwd: ws, env: awsEnv })
    expect(bare.code).toBe(2)
    expect(bare.stderr).toContain('--keep-scope')
  }, 120_000)
})

describe('the command line', () => {
  it('--scope NAME: save writes only into the scope, restore reads it first', async () => {
    const prefix = 'cli-scope'
    await mainProducer(prefix)
    const producer = await workspace(true)
    const build = await runCli(['restore', ...flags(prefix), '--scope', 'feature-login'], {
      cwd: producer,
      env: awsEnv,
    })
    expect(build.code, build.stderr).toBe(0)
    expect(build.stdout).toContain('Restored 6 frameworks')
    await promisify(execFile)('scipio', ['prepare', producer, '--framework-cache-policy', 'project'], {
      env: doubleEnv(),
    })
    store.proxy.policies = {
      identities: { [prWriter.accessKeyId]: prefixWriterPolicy(bucket, [`${prefix}/${ScopesFolder}/feature-login/`]) },
    }
    const shared = await sharedKeys(prefix)
    const save = await runCli(['save', ...flags(prefix), '--scope', 'feature-login', '--build-succeeded'], {
      cwd: producer,
      env: { AWS_ACCESS_KEY_ID: prWriter.accessKeyId, AWS_SECRET_ACCESS_KEY: prWriter.secretAccessKey },
    })
    expect(save.code, save.stderr).toBe(0)
    expect(save.stdout).toContain('Uploaded 2 frameworks')
    expect(await sharedKeys(prefix)).toEqual(shared)

    const laptop = await workspace(true)
    const restored = await runCli(['restore', ...flags(prefix), '--scope', 'feature-login'], {
      cwd: laptop,
      env: awsEnv,
    })
    expect(restored.code, restored.stderr).toBe(0)
    expect(restored.stdout).toContain('Restored 8 frameworks')
    const unscoped = await runCli(['restore', ...flags(prefix)], { cwd: await workspace(true), env: awsEnv })
    expect(unscoped.stdout).toContain('Restored 6 frameworks')
    const bad = await runCli(['restore', ...flags(prefix), '--scope', 'feature/login'], {
      cwd: laptop,
      env: awsEnv,
    })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--scope: 'feature\/login' is not a scope name.*'feature-login'/)
  }, 180_000)
})

describe('layouts', () => {
  const packageKey = 'a'.repeat(64)
  const entry = (prefix: string) => {
    const scipioKey = 'b'.repeat(64)
    const sha256 = 'c'.repeat(64)
    return {
      targetName: 'Logging',
      scipioKey,
      format: 'tar.zst',
      size: 10,
      sha256,
      key: contentObjectKey(prefix, 'Logging', scipioKey, sha256, 'tar.zst'),
    }
  }
  const index = (prefix: string) => ({
    schema: Formats.index,
    packageKey,
    package: { identity: 'x' },
    targets: [entry(prefix)],
  })
  const scope = scopePrefix('cache', 'pr-12')

  it("a shared index can never point into a scope; a scope's may point at the shared cache", () => {
    expect(scope).toBe(`cache/${ScopesFolder}/pr-12`)
    expect(() => parseIndex(index(scope), 'cache', packageKey)).toThrow(/not where this layout puts it/)
    expect(parseIndex(index(scope), [scope, 'cache'], packageKey).targets[0]!.key).toContain(`/${ScopesFolder}/pr-12/`)
    expect(parseIndex(index('cache'), [scope, 'cache'], packageKey).targets).toHaveLength(1)
    // Another scope's archive is not this scope's to follow either.
    expect(() => parseIndex(index(scopePrefix('cache', 'pr-13')), [scope, 'cache'], packageKey)).toThrow()
  })
})
