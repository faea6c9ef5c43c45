import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runAction, s3TestInputs } from './helpers/action.js'
import { yamlBlocks } from './helpers/docs.js'
import { doubleBin, exampleTargets, exampleWorkspace, readDoubleLog } from './helpers/workspace.js'
import { snapshotTree } from './helpers/tree.js'
import { runScipioDouble } from './helpers/workspace.js'
import { root, testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { runJob } from './helpers/workflow-runner.js'

const bucket = 'sub-cache'
/** The bucket of the documented pattern, which has no prefix: a bucket of its own. */
const patternBucket = 'sub-pattern'
const allTargets = exampleTargets
const store = useStore([bucket, patternBucket])

function inputs(ws: string, extra: Record<string, string> = {}) {
  return {
    ...s3TestInputs(store.endpoint, bucket),
    'package-directory': ws,
    ...extra,
  }
}

const list = (value: string | undefined) => JSON.parse(value ?? 'null') as string[]

describe('restore/ and save/ sub-actions (dist/restore, dist/save)', () => {
  it('save uploads what a separate Scipio run built; without a successful build-outcome it marks nothing complete', async () => {
    const ws = await exampleWorkspace()
    await runScipioDouble(['prepare', ws, '--framework-cache-policy', 'project'])
    const run = await runAction(inputs(ws), {}, 'dist/save/index.js')
    expect(run.code, run.stdout).toBe(0)
    expect(list(run.outputs['uploaded'])).toEqual(allTargets)
    expect(run.outputs['uploaded-count']).toBe('7')
    expect(Object.keys(run.outputs).sort()).toEqual(['uploaded', 'uploaded-count'])
    const keys = ((await store.s3.client().send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map(
      (o) => o.Key!,
    )
    expect(keys.filter((k) => k.includes('/complete/'))).toEqual([])
    expect(keys.filter((k) => k.includes('/packages/'))).toHaveLength(5)
  })

  it('restore with lookup-only reports what is stored and downloads nothing', async () => {
    const ws = await exampleWorkspace()
    const run = await runAction(inputs(ws, { 'lookup-only': 'true' }), {}, 'dist/restore/index.js')
    expect(run.code, run.stdout).toBe(0)
    expect(run.outputs['cache-hit']).toBe('true')
    expect(list(run.outputs['missing'])).toEqual([])
    expect(list(run.outputs['restored'])).toEqual([])
    expect(await snapshotTree(path.join(ws, 'XCFrameworks'))).toEqual({})
  })

  it('restore downloads everything and runs no build', async () => {
    const ws = await exampleWorkspace()
    const log = path.join(ws, 'double.log')
    const run = await runAction(inputs(ws), { SCIPIO_TEST_DOUBLE_LOG: log }, 'dist/restore/index.js')
    expect(run.code, run.stdout).toBe(0)
    expect(run.outputs['cache-hit']).toBe('true')
    expect(list(run.outputs['restored'])).toEqual(allTargets)
    expect(run.outputs['restored-count']).toBe('7')
    expect(await readDoubleLog(log)).toEqual([])
  })

  it('restore reports what is missing, and fail-on-cache-miss fails on it', async () => {
    const ws = await exampleWorkspace()
    const run = await runAction(inputs(ws, { prefix: 'nothing-here' }), {}, 'dist/restore/index.js')
    expect(run.code).toBe(0)
    expect(run.outputs['cache-hit']).toBe('false')
    expect(list(run.outputs['missing'])).toHaveLength(5)
    const failing = await runAction(
      inputs(ws, { prefix: 'nothing-here', 'fail-on-cache-miss': 'true' }),
      {},
      'dist/restore/index.js',
    )
    expect(failing.code).toBe(1)
    expect(failing.stdout).toMatch(/::error::fail-on-cache-miss: 5 not in the cache/)
  })

  it('save refuses to upload from a pull request', async () => {
    const run = await runAction(
      inputs(await exampleWorkspace(), { prefix: 'pr' }),
      { GITHUB_ACTIONS: 'true', GITHUB_EVENT_NAME: 'pull_request_target' },
      'dist/save/index.js',
    )
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/::warning::Not uploading: this run was triggered by 'pull_request_target'/)
    expect(list(run.outputs['uploaded'])).toEqual([])
  })
})

/** The example package plus SwiftLintPlugins, a plugin-only package: pinned, and no framework from it. */
async function withPluginOnlyPackage(ws: string): Promise<void> {
  const resolvedFile = path.join(ws, 'Package.resolved')
  const resolved = JSON.parse(await fs.readFile(resolvedFile, 'utf8')) as { pins: unknown[] }
  resolved.pins.push({
    identity: 'swiftlintplugins',
    kind: 'remoteSourceControl',
    location: 'https://github.com/SimplyDanny/SwiftLintPlugins',
    state: { revision: '7a3d77f3dd9f91d5cea138e52c20cfceabf352de', version: '0.59.1' },
  })
  await fs.writeFile(resolvedFile, JSON.stringify(resolved, null, 2))
  const graphFile = path.join(ws, 'scipio-test-double.json')
  const graph = JSON.parse(await fs.readFile(graphFile, 'utf8')) as { packages: Record<string, unknown> }
  graph.packages.swiftlintplugins = { targets: [] }
  await fs.writeFile(graphFile, JSON.stringify(graph))
}

describe('build-outcome', () => {
  it('success: the save records the plugin-only package and marks the set complete; failure: neither', async () => {
    const ws = await exampleWorkspace()
    await withPluginOnlyPackage(ws)
    await runScipioDouble(['prepare', ws, '--framework-cache-policy', 'project'])
    const keys = async (prefix: string) => store.listKeys(bucket, `${prefix}/`)
    const failed = await runAction(
      inputs(ws, { prefix: 'outcome', 'build-outcome': 'failure' }),
      {},
      'dist/save/index.js',
    )
    expect(failed.code, failed.stdout).toBe(0)
    expect((await keys('outcome')).filter((k) => k.includes('/packages/'))).toHaveLength(5)
    expect((await keys('outcome')).filter((k) => k.includes('/complete/'))).toEqual([])

    const succeeded = await runAction(
      inputs(ws, { prefix: 'outcome', 'build-outcome': 'success' }),
      {},
      'dist/save/index.js',
    )
    expect(succeeded.code, succeeded.stdout).toBe(0)
    expect(list(succeeded.outputs['uploaded'])).toEqual([])
    expect((await keys('outcome')).filter((k) => k.includes('/packages/'))).toHaveLength(6)
    expect((await keys('outcome')).filter((k) => k.includes('/complete/'))).toHaveLength(1)

    // A folder that lacks a framework the package's index lists is no complete build, whatever the outcome says.
    const stored = await runAction(inputs(ws, { prefix: 'outcome-lacking' }), {}, 'dist/save/index.js')
    expect(stored.code, stored.stdout).toBe(0)
    await fs.rm(path.join(ws, 'XCFrameworks/Delegate.xcframework'), { recursive: true })
    await fs.rm(path.join(ws, 'XCFrameworks/.Delegate.version'))
    const claimed = await runAction(
      inputs(ws, { prefix: 'outcome-lacking', 'build-outcome': 'success' }),
      {},
      'dist/save/index.js',
    )
    expect(claimed.code, claimed.stdout).toBe(0)
    expect((await keys('outcome-lacking')).filter((k) => k.includes('/packages/'))).toHaveLength(6)
    expect((await keys('outcome-lacking')).filter((k) => k.includes('/complete/'))).toEqual([])

    const wrong = await runAction(
      inputs(ws, { prefix: 'outcome', 'build-outcome': 'passed' }),
      {},
      'dist/save/index.js',
    )
    expect(wrong.code).toBe(1)
    expect(wrong.stdout).toMatch(/Input 'build-outcome'.*'passed' is not one of success, failure, cancelled, skipped/)
  })
})

describe('the pattern of docs/sub-actions.md, as written', () => {
  /**
   * The page's steps as a job, with the test store in place of the bucket (its endpoint beside it) and this
   * repository's sub-actions in place of `<owner>/scipio-s3-cache/...@v1`: the `if:` conditions, the outputs they
   * read and the inputs' defaults (build-outcome's `${{ job.status }}`) are the page's.
   */
  async function documentedJob(): Promise<string> {
    const page = await fs.readFile(path.join(root, 'docs/sub-actions.md'), 'utf8')
    const steps = yamlBlocks(page).find((b) => b.includes('scipio-s3-cache/restore@v1'))
    expect(steps, 'the pattern in docs/sub-actions.md').toBeDefined()
    expect(steps).toContain("if: steps.restore.outputs.cache-hit != 'true'")
    const local = steps!
      .replace(/<owner>\/scipio-s3-cache\/(restore|save)@v1/g, './$1')
      .replace(
        /^( +)bucket: my-bucket$/gm,
        `$1bucket: ${patternBucket}\n$1endpoint: ${store.endpoint}\n$1force-path-style: 'true'`,
      )
      .replace(/region: ap-northeast-1/g, 'region: us-east-1')
    return `on: push\njobs:\n  build:\n    runs-on: macos-15\n    steps:\n${local}`
  }

  async function job(text: string) {
    const workspace = await fs.mkdtemp(path.join(os.tmpdir(), 'sub-pattern-'))
    const ws = path.join(workspace, 'MyAppDependencies')
    await fs.cp(path.join(root, 'example/MyAppDependencies'), ws, { recursive: true })
    await withPluginOnlyPackage(ws)
    const log = path.join(workspace, 'double.log')
    const run = await runJob({
      workflow: { text },
      job: 'build',
      workspace,
      secrets: {
        AWS_ACCESS_KEY_ID: testCredentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: testCredentials.secretAccessKey,
      },
      env: {
        PATH: `${doubleBin}${path.delimiter}${process.env.PATH ?? ''}`,
        HOME: process.env.HOME ?? workspace,
        TMPDIR: os.tmpdir(),
        RUNNER_TEMP: workspace,
        GITHUB_EVENT_NAME: 'push',
        AWS_EC2_METADATA_DISABLED: 'true',
        SCIPIO_TEST_DOUBLE_LOG: log,
      },
      skip: { uses: [], run: [] },
    })
    const built = (await readDoubleLog(log)).filter((e) => e.event === 'built').map((e) => e.target)
    return { run, built }
  }

  it('with a plugin-only package (SwiftLintPlugins): the first job builds and saves, the next gets cache-hit true and skips Scipio', async () => {
    const text = await documentedJob()
    const first = await job(text)
    expect(
      first.run.steps.map((s) => s.status),
      first.run.log,
    ).toEqual(['success', 'success', 'success'])
    expect(first.built.sort()).toEqual([...allTargets])

    const second = await job(text)
    const [restore, build, save] = second.run.steps
    expect(restore!.outputs['cache-hit'], second.run.log).toBe('true')
    expect(list(restore!.outputs['missing'])).toEqual([])
    expect(list(restore!.outputs['restored']).sort()).toEqual([...allTargets])
    expect(build!.status).toBe('skipped')
    expect(second.built).toEqual([])
    expect(save!.status).toBe('success')
    expect(list(save!.outputs['uploaded'])).toEqual([])
  }, 180_000)
})
