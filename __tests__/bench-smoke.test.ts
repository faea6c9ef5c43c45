import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { root } from './helpers/s3-server.js'

// Smoke test of `npm run bench`: the small preset end to end. Correctness facts only, never timings.

interface Row {
  scenario: string
  contender: string
  ok: boolean
  error?: string
  identical?: boolean
  treeIssues?: string[]
  misses?: number
  builtTargets?: string[]
  uploadedArchives?: number
  receivedBytes: number
  unchangedArchiveBytes?: number
}
interface Results {
  rows: Row[]
  notes: string[]
}

async function runBench(out: string): Promise<{ code: number; output: string }> {
  const child = spawn(
    process.execPath,
    [path.join(root, 'bench/run.mjs'), '--preset', 'small', '--no-shape', '--out', out],
    { cwd: root },
  )
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)))
  return { code, output }
}

describe('npm run bench -- --preset small', () => {
  it('runs every contender and scenario, and each restore is complete', { timeout: 240_000 }, async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'))
    const { code, output } = await runBench(out)
    expect(code, output).toBe(0)
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results
    for (const file of ['results.md', 'chart.svg']) expect(fs.statSync(path.join(out, file)).size).toBeGreaterThan(0)
    const rows = results.rows
    expect(rows.filter((r) => !r.ok).map((r) => `${r.scenario} ${r.contender}: ${r.error}`)).toEqual([])

    const haveAws = fs.existsSync('/usr/bin/aws')
    const contenders = new Set(rows.map((r) => r.contender))
    const native = fs.existsSync('/usr/bin/zstd') && fs.existsSync('/usr/bin/curl') ? ['native-per-fw'] : []
    expect([...contenders].sort()).toEqual(
      haveAws
        ? ['action', 'aws-sync', 'floor-copy', 'floor-fetch', ...native, 'tar-zst']
        : ['action', 'floor-copy', 'floor-fetch', ...native],
    )
    if (!haveAws) expect(results.notes.join('\n')).toMatch(/aws CLI not found/)

    // The action, the tar.zst and the local copy restore an identical tree (symlinks, modes, empty folders).
    for (const r of rows.filter(
      (x) =>
        (x.scenario === 'warm' || x.scenario === 'partial') &&
        ['action', 'tar-zst', 'native-per-fw', 'floor-copy'].includes(x.contender),
    )) {
      expect(r.identical, `${r.scenario} ${r.contender}: ${r.treeIssues?.join(', ')}`).toBe(true)
    }
    // aws s3 sync brings every file's bytes but not the tree's structure (it follows symlinks, drops modes).
    for (const r of rows.filter(
      (x) => x.contender === 'aws-sync' && (x.scenario === 'warm' || x.scenario === 'partial'),
    )) {
      expect(r.treeIssues?.join(', ') ?? '').not.toMatch(/files missing|contents differ/)
    }

    const partial = rows.find((r) => r.scenario === 'partial' && r.contender === 'action')!
    expect(partial.misses).toBe(1)
    expect(partial.builtTargets).toHaveLength(1)
    expect(partial.receivedBytes).toBeGreaterThanOrEqual(partial.unchangedArchiveBytes!)
    expect(partial.receivedBytes).toBeLessThan(partial.unchangedArchiveBytes! * 1.1)

    const noop = rows.find((r) => r.scenario === 'noop' && r.contender === 'action')!
    expect(noop.uploadedArchives).toBe(0)
    fs.rmSync(out, { recursive: true, force: true })
  })
})
