import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runAction, s3TestInputs } from './helpers/action.js'
import { exampleTargets, exampleWorkspace, readDoubleLog } from './helpers/workspace.js'
import { snapshotTree } from './helpers/tree.js'
import { runScipioDouble } from './helpers/workspace.js'
import { useStore } from './helpers/store.js'

const bucket = 'sub-cache'
const allTargets = exampleTargets
const store = useStore([bucket])

function inputs(ws: string, extra: Record<string, string> = {}) {
  return {
    ...s3TestInputs(store.endpoint, bucket),
    'package-directory': ws,
    ...extra,
  }
}

const list = (value: string | undefined) => JSON.parse(value ?? 'null') as string[]

describe('restore/ and save/ sub-actions (dist/restore, dist/save)', () => {
  it('save uploads what a separate Scipio run built, without marking the build complete', async () => {
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
