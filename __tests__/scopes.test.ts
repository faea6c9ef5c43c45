import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { runAction, s3TestInputs, type ActionRun } from './helpers/action.js'
import { testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { doubleWorkspace, readDoubleLog, type DoubleGraph } from './helpers/workspace.js'
import { pullRequestNumber, readScope } from '../src/inputs/scope.js'

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
  store.proxy.writePolicy = undefined
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

async function pullRequestEvent(number: number, headRepo = 'acme/app'): Promise<string> {
  const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'event-')), 'event.json')
  const payload = {
    number,
    pull_request: { number, head: { repo: { full_name: headRepo } }, base: { repo: { full_name: 'acme/app' } } },
  }
  await fs.writeFile(file, JSON.stringify(payload))
  return file
}

/** The environment of a pull request's job: the event, its merge ref, and the payload. */
async function pullRequestEnv(number: number, headRepo?: string): Promise<Record<string, string>> {
  return {
    GITHUB_ACTIONS: 'true',
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_REF: `refs/pull/${number}/merge`,
    GITHUB_EVENT_PATH: await pullRequestEvent(number, headRepo),
  }
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
    store.proxy.writePolicy = {
      accessKeyId: prWriter.accessKeyId,
      bucket,
      writable: [`${prefix}/.scipio-s3-cache-scopes/`],
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
    const writes = requestsSince(from).filter((r) => r.method === 'PUT' || r.method === 'POST' || r.method === 'DELETE')
    expect(writes.length).toBeGreaterThan(0)
    // Every write went into the scope, and the policy refused none.
    expect(writes.filter((w) => !w.key.startsWith(scopeFolder(prefix, 'pr-12')))).toEqual([])
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
    expect(requests.filter((r) => r.method !== 'GET')).toEqual([])
    expect(requests.filter((r) => /\.tar\.(zst|gz)$/.test(r.key))).toHaveLength(8)
    // Where each came from: P1's frameworks from the scope, the rest from the shared cache.
    expect(second.summary).toContain('<td>P1T0</td><td>pkg1</td><td>restored from scope pr-12</td>')
    expect(second.summary).toContain('<td>P0T0</td><td>pkg0</td><td>restored from the shared cache</td>')
    expect(second.summary).toContain(
      'Scope pr-12: 2 frameworks restored from this scope, 6 from the shared cache, 0 built',
    )
  }, 180_000)

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
    store.proxy.writePolicy = {
      accessKeyId: prWriter.accessKeyId,
      bucket,
      writable: [`${prefix}/.scipio-s3-cache-scopes/`],
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
    expect(requestsSince(from).filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([])
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

describe('readScope', () => {
  const reader = (scope: string) => (name: string) => (name === 'scope' ? scope : '')

  it('is absent when empty, pr-<N> from GITHUB_REF or the payload, a checked name otherwise', async () => {
    expect(readScope(reader(''), {})).toBeUndefined()
    expect(readScope(reader('pull-request'), { GITHUB_REF: 'refs/pull/7/merge' })).toBe('pr-7')
    // pull_request_target runs on the base branch's ref: the number comes from the payload.
    const event = await pullRequestEvent(31)
    expect(readScope(reader('pull-request'), { GITHUB_REF: 'refs/heads/main', GITHUB_EVENT_PATH: event })).toBe('pr-31')
    expect(pullRequestNumber({ GITHUB_REF: 'refs/heads/main' })).toBeUndefined()
    expect(readScope(reader('feature-login'), {})).toBe('feature-login')
    expect(() => readScope(reader('feature/login'), {})).toThrow(/Input 'scope'.*'feature-login'/)
    expect(() => readScope(reader('../x'), {})).toThrow(/Input 'scope'/)
  })
})
