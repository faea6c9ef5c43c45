import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { annotationProperties, whereOf } from '../src/annotations.js'
import { InputError, ProjectError } from '../src/errors.js'
import { escapeHtml, totals, totalsText, type RunReport } from '../src/report/report.js'
import type { RestoredTarget } from '../src/restore/outcome.js'
import type { SavedTarget } from '../src/save/save.js'
import { runAction } from './helpers/action.js'
import { exampleWorkspace } from './helpers/workspace.js'

const restored = (targetName: string, bytes: number): RestoredTarget => ({
  targetName,
  package: 'p',
  result: 'restored',
  bytes,
  ms: 10,
})
const uploaded = (targetName: string, bytes: number): SavedTarget => ({
  targetName,
  package: 'p',
  result: 'uploaded',
  bytes,
  ms: 10,
})

function report(extra: Partial<RunReport>): RunReport {
  return { built: [], buildSkipped: false, ...extra }
}

describe('summary totals', () => {
  it('counts restored, built and uploaded targets and their bytes', () => {
    const r = report({
      restore: {
        indexes: new Map(),
        packagesMissing: [],
        complete: false,
        problems: [],
        targets: [restored('A', 1000), restored('B', 500), { ...restored('C', 7), result: 'kept' }],
      },
      built: ['D', 'E'],
      buildExitCode: 0,
      save: {
        unmatched: [],
        indexesWritten: 1,
        markedComplete: false,
        problems: [],
        targets: [uploaded('D', 300), uploaded('E', 200), { ...uploaded('A', 1000), result: 'stored' }],
      },
    })
    expect(totals(r)).toMatchObject({ restored: 2, built: 2, uploaded: 2, bytesDownloaded: 1500, bytesUploaded: 500 })
  })

  it('estimates time saved from the build time per target measured in the same run, minus the restore time', () => {
    const r = report({
      restore: {
        indexes: new Map(),
        packagesMissing: [],
        complete: false,
        problems: [],
        targets: [restored('A', 1), restored('B', 1), restored('C', 1)],
      },
      built: ['D', 'E'],
      buildExitCode: 0,
      buildMs: 60_000,
      restoreMs: 4_000,
    })
    expect(totals(r)).toMatchObject({ buildMsPerTarget: 30_000, timeSavedMs: 86_000 })
    expect(totalsText(r)).toContain('Estimated time saved: 86.0 s (3 restored × 30.0 s')
  })

  it('does not guess when nothing was built in the run', () => {
    const r = report({
      restore: {
        indexes: new Map(),
        packagesMissing: [],
        complete: true,
        problems: [],
        targets: [restored('A', 2048)],
      },
      buildSkipped: true,
      restoreMs: 500,
    })
    expect(totals(r).timeSavedMs).toBeUndefined()
    expect(totalsText(r)).toBe(
      'Downloaded 2.0 KiB, uploaded 0 B. Time saved: not estimated (nothing was built in this run to measure a build time per target).',
    )
  })

  it('claims no saving when nothing was restored', () => {
    const r = report({
      built: ['A', 'B'],
      buildMs: 60_000,
      restoreMs: 100,
      restore: { indexes: new Map(), packagesMissing: ['a'], complete: false, problems: [], targets: [] },
    })
    expect(totalsText(r)).toBe('Downloaded 0 B, uploaded 0 B. Nothing was restored, so no build time was saved.')
  })
})

describe('annotations', () => {
  it('names the input at fault in the title', () => {
    expect(annotationProperties(whereOf(new InputError('bucket', 'bad')))).toEqual({ title: "Input 'bucket'" })
  })

  it('points at a file relative to the workspace', () => {
    const where = whereOf(new ProjectError('broken', '/ws/Deps/Package.resolved'))
    expect(annotationProperties(where, '/ws')).toEqual({ file: 'Deps/Package.resolved', title: 'Package.resolved' })
    expect(annotationProperties(where, '/elsewhere')).toEqual({
      file: '/ws/Deps/Package.resolved',
      title: 'Package.resolved',
    })
  })

  it('has nothing to point at for other errors', () => {
    expect(annotationProperties(whereOf(new Error('x')))).toEqual({})
  })

  it('a broken Package.resolved fails the step with an error annotation on that file', async () => {
    const ws = await exampleWorkspace()
    await fs.writeFile(path.join(ws, 'Package.resolved'), '{ not json')
    const run = await runAction(
      { 'public-url': 'http://127.0.0.1:9/none', 'package-directory': ws },
      { GITHUB_WORKSPACE: path.dirname(ws) },
    )
    expect(run.code).toBe(1)
    expect(run.stdout).toContain(
      `::error title=Package.resolved,file=${path.basename(ws)}/Package.resolved::${ws}/Package.resolved is not a valid Package.resolved`,
    )
  })

  it('a bad input fails the step with an error annotation titled with the input', async () => {
    const run = await runAction({
      'public-url': 'http://127.0.0.1:9/none',
      'package-directory': await exampleWorkspace(),
      concurrency: '0',
    })
    expect(run.code).toBe(1)
    expect(run.stdout).toContain(
      "::error title=Input 'concurrency'::Input 'concurrency': '0' is not a whole number from 1 to 64.",
    )
  })
})

describe('summary cells', () => {
  it('escape markup in target names and error texts', () => {
    expect(escapeHtml('A<script>&B')).toBe('A&lt;script&gt;&amp;B')
  })
})
