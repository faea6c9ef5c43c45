import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import type { ChildProcess } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { runAction, s3TestInputs, startAction, type ActionRun } from './helpers/action.js'
import { startCli } from './helpers/cli.js'
import { faults, isArchiveGet, isArchivePut, limited, type Match } from './helpers/proxy.js'
import { testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { mountTmpfs, tmpfsUnavailable } from './helpers/tmpfs.js'
import { snapshotTree } from './helpers/tree.js'
import { exampleTargets, exampleWorkspace, readDoubleLog } from './helpers/workspace.js'

/**
 * Cancelled and killed runs (GitHub cancels a step with SIGINT, then SIGTERM, then SIGKILL) and full disks, on the
 * bundled action and command line against the test store. A signal lands mid-transfer: the proxy stalls or holds
 * one archive's request until the test has signalled the process.
 */

const bucket = 'cancel-cache'
const prefix = 'cancel'
const store = useStore([bucket])
let producerOut: Record<string, string>

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return { ...s3TestInputs(store.proxy.endpoint, bucket), prefix, 'stall-timeout-seconds': '600', ...extra }
}

beforeAll(async () => {
  const ws = await exampleWorkspace()
  const run = await runAction(inputs({ mode: 'producer', 'package-directory': ws }))
  expect(run.code, run.stdout).toBe(0)
  producerOut = await snapshotTree(path.join(ws, 'XCFrameworks'))
})
afterEach(() => {
  store.proxy.fault = undefined
})

const list = (run: ActionRun, name: string) => JSON.parse(run.outputs[name] ?? 'null') as string[]
const warnings = (run: ActionRun) => run.stdout.split('\n').filter((l) => l.startsWith('::warning::'))
const named = async (dir: string, start: string) =>
  (await fs.readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(start))
const stagingIn = (out: string) => named(out, '.scipio-s3-cache-tmp-')
const temporaryIn = (dir: string) => named(dir, 'scipio-s3-cache-')
const kingfisher =
  (match: Match): Match =>
  (req) =>
    match(req) && req.url!.includes('/Kingfisher/')

/** Every framework that stands beside its VersionFile is the producer's whole tree. Returns their targets. */
async function expectNoHalfPlaced(out: string): Promise<string[]> {
  const now = await snapshotTree(out)
  const placed = Object.keys(now)
    .filter((k) => /^\.[^/]+\.version$/.test(k))
    .map((k) => k.slice(1, -'.version'.length))
  const of = (tree: Record<string, string>, folder: string) =>
    Object.fromEntries(Object.entries(tree).filter(([k]) => k === folder || k.startsWith(`${folder}/`)))
  for (const target of placed) {
    expect(now[`.${target}.version`], target).toBe(producerOut[`.${target}.version`])
    expect(of(now, `${target}.xcframework`), target).toEqual(of(producerOut, `${target}.xcframework`))
  }
  return placed.sort()
}

/** Stalls Kingfisher's archive download after its first bytes; resolves once it has started. */
function stallKingfisherDownload(): Promise<void> {
  return new Promise((reached) => {
    store.proxy.fault = limited(kingfisher(isArchiveGet), 1, (req, res, forward) => {
      reached()
      return faults.stall()(req, res, forward)
    })
  })
}

/** Sends `signal` once `ready` and the other transfers have had a moment; resolves with the ms the process took to exit. */
async function signalWhen(child: ChildProcess, ready: Promise<unknown>, signal: NodeJS.Signals): Promise<number> {
  const exited = new Promise((resolve) => child.once('close', resolve))
  const early = exited.then(() => Promise.reject(new Error('the process exited before the transfer was under way')))
  await Promise.race([ready, early])
  early.catch(() => undefined)
  await new Promise((resolve) => setTimeout(resolve, 500))
  const sent = Date.now()
  child.kill(signal)
  await exited
  return Date.now() - sent
}

describe('a cancelled restore (SIGINT, SIGTERM)', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s mid-download: exits within 5 s, leaves no staging folder, builds nothing, writes outputs and summary',
    async (signal) => {
      const ws = await exampleWorkspace()
      const out = path.join(ws, 'XCFrameworks')
      const log = path.join(ws, 'double.log')
      const stalled = stallKingfisherDownload()
      const started = await startAction(inputs({ 'package-directory': ws }), { SCIPIO_TEST_DOUBLE_LOG: log })
      const ms = await signalWhen(started.child, stalled, signal)
      const run = await started.result
      expect(ms).toBeLessThan(5_000)
      expect(run.code, run.stdout).toBe(1)
      expect(run.stdout).toMatch(
        new RegExp(
          `::error::The run was cancelled \\(${signal}\\): it restored \\d frameworks, built 0 and uploaded 0`,
        ),
      )
      expect(await stagingIn(out)).toEqual([])
      expect(await readDoubleLog(log)).toEqual([]) // Scipio never ran
      const placed = await expectNoHalfPlaced(out)
      expect(placed).not.toContain('Kingfisher')
      expect(list(run, 'restored')).toEqual(placed)
      expect(run.outputs['cache-hit']).toBe('false')
      expect(run.summary).toContain(`Cancelled: The run was cancelled (${signal})`)
    },
  )

  it('the restore sub-action, on SIGINT mid-download, stops the same way', async () => {
    const ws = await exampleWorkspace()
    const out = path.join(ws, 'XCFrameworks')
    const stalled = stallKingfisherDownload()
    const started = await startAction(inputs({ 'package-directory': ws }), {}, 'dist/restore/index.js')
    const ms = await signalWhen(started.child, stalled, 'SIGINT')
    const run = await started.result
    expect(ms).toBeLessThan(5_000)
    expect(run.code, run.stdout).toBe(1)
    expect(await stagingIn(out)).toEqual([])
    expect(list(run, 'restored')).toEqual(await expectNoHalfPlaced(out))
    expect(list(run, 'missing')).toContain('Kingfisher')
    expect(run.summary).toContain('Cancelled: The run was cancelled (SIGINT)')
  })

  it('the command line, on SIGINT mid-download, exits with 130 within 5 s and leaves no staging folder', async () => {
    const ws = await exampleWorkspace()
    const out = path.join(ws, 'XCFrameworks')
    const stalled = stallKingfisherDownload()
    const flags = ['--bucket', bucket, '--endpoint', store.proxy.endpoint, '--force-path-style', '--prefix', prefix]
    const cli = startCli(['restore', ...flags], {
      cwd: ws,
      env: { AWS_ACCESS_KEY_ID: testCredentials.accessKeyId, AWS_SECRET_ACCESS_KEY: testCredentials.secretAccessKey },
    })
    const ms = await signalWhen(cli.child, stalled, 'SIGINT')
    const run = await cli.result
    expect(ms).toBeLessThan(5_000)
    expect(run.code, run.stdout + run.stderr).toBe(130)
    expect(run.stdout).toMatch(/Not restored \(cancelled\): .*Kingfisher/)
    expect(run.stdout).toContain('Cancelled (SIGINT): nothing more was downloaded.')
    expect(await stagingIn(out)).toEqual([])
    await expectNoHalfPlaced(out)
  })
})

describe('a killed restore (SIGKILL)', () => {
  it('leaves its staging folder and no half-placed framework; the next run removes the folder before anything else', async () => {
    const ws = await exampleWorkspace()
    const out = path.join(ws, 'XCFrameworks')
    const stalled = stallKingfisherDownload()
    const started = await startAction(inputs({ 'package-directory': ws }), {}, 'dist/restore/index.js')
    await signalWhen(started.child, stalled, 'SIGKILL')
    await started.result
    const left = await stagingIn(out)
    expect(left).toHaveLength(1)
    await expectNoHalfPlaced(out)

    store.proxy.fault = undefined
    const next = await runAction(inputs({ 'package-directory': ws }), {}, 'dist/restore/index.js')
    expect(next.code, next.stdout).toBe(0)
    expect(await stagingIn(out)).toEqual([])
    const removedAt = next.stdout.indexOf(`Removed 1 staging folders an interrupted run left in ${out}: ${left[0]}.`)
    expect(removedAt, next.stdout).toBeGreaterThan(-1)
    expect(removedAt).toBeLessThan(next.stdout.indexOf('Restored '))
    expect(await expectNoHalfPlaced(out)).toEqual([...exampleTargets])
  })

  it("never removes a staging folder whose run is alive, nor a folder that isn't one of its names", async () => {
    const ws = await exampleWorkspace()
    const out = path.join(ws, 'XCFrameworks')
    // The test's own process is alive on this host: its folder stays. So do folders of other names.
    const { stagingFolderName } = await import('../src/archive/owned-folders.js')
    const alive = stagingFolderName()
    const others = ['.scipio-s3-cache-tmp-notours', 'scipio-s3-cache-tmp-0', '.scipio-s3-cache-tmpfoo']
    for (const name of [alive, ...others]) await fs.mkdir(path.join(out, name), { recursive: true })
    const run = await runAction(inputs({ 'package-directory': ws }), {}, 'dist/restore/index.js')
    expect(run.code, run.stdout).toBe(0)
    expect((await fs.readdir(out)).filter((n) => n.includes('scipio-s3-cache')).sort()).toEqual(
      [alive, ...others].sort(),
    )
  })
})

describe('a cancelled or killed upload', () => {
  const holdKingfisherUpload = () => store.proxy.hold(kingfisher(isArchivePut))

  async function completionMarkers(under: string): Promise<string[]> {
    const listed = await store.s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${under}/` }))
    return (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.includes('/complete/'))
  }

  it.each(['SIGINT', 'SIGTERM'] as const)(
    '%s mid-upload: exits within 5 s, removes its temporary folders, marks nothing complete, writes outputs and summary',
    async (signal) => {
      const ws = await exampleWorkspace()
      const temp = await fs.mkdtemp(path.join(os.tmpdir(), 'runner-temp-'))
      const under = `upload-${signal.toLowerCase()}`
      const held = holdKingfisherUpload()
      const started = await startAction(inputs({ mode: 'producer', prefix: under, 'package-directory': ws }), {
        RUNNER_TEMP: temp,
      })
      const ms = await signalWhen(started.child, held.arrived, signal)
      held.release()
      const run = await started.result
      expect(ms).toBeLessThan(5_000)
      expect(run.code, run.stdout).toBe(1)
      expect(run.stdout).toMatch(new RegExp(`::error::The run was cancelled \\(${signal}\\): .* built 7 and uploaded`))
      expect(await temporaryIn(temp)).toEqual([])
      expect(list(run, 'uploaded')).not.toContain('Kingfisher')
      expect(list(run, 'built')).toEqual([...exampleTargets])
      expect(run.summary).toContain(`Cancelled: The run was cancelled (${signal})`)
      expect(await completionMarkers(under)).toEqual([])
    },
  )

  it('the save sub-action, on SIGTERM mid-upload, stops the same way', async () => {
    const ws = await exampleWorkspace()
    await runAction(inputs({ mode: 'producer', prefix: 'upload-built', 'package-directory': ws })) // builds the frameworks
    const temp = await fs.mkdtemp(path.join(os.tmpdir(), 'runner-temp-'))
    const held = holdKingfisherUpload()
    const started = await startAction(
      inputs({ prefix: 'upload-save-action', 'package-directory': ws }),
      { RUNNER_TEMP: temp },
      'dist/save/index.js',
    )
    const ms = await signalWhen(started.child, held.arrived, 'SIGTERM')
    held.release()
    const run = await started.result
    expect(ms).toBeLessThan(5_000)
    expect(run.code, run.stdout).toBe(1)
    expect(run.stdout).toContain('::error::The run was cancelled (SIGTERM)')
    expect(await temporaryIn(temp)).toEqual([])
    expect(list(run, 'uploaded')).not.toContain('Kingfisher')
  })

  it('SIGKILL mid-upload leaves a temporary folder that the next producer run removes', async () => {
    const ws = await exampleWorkspace()
    const temp = await fs.mkdtemp(path.join(os.tmpdir(), 'runner-temp-'))
    const under = 'upload-sigkill'
    const held = holdKingfisherUpload()
    const started = await startAction(inputs({ mode: 'producer', prefix: under, 'package-directory': ws }), {
      RUNNER_TEMP: temp,
    })
    await signalWhen(started.child, held.arrived, 'SIGKILL')
    held.release()
    await started.result
    const left = await temporaryIn(temp)
    expect(left).toHaveLength(1)
    expect(await completionMarkers(under)).toEqual([])

    const next = await runAction(inputs({ mode: 'producer', prefix: under, 'package-directory': ws }), {
      RUNNER_TEMP: temp,
    })
    expect(next.code, next.stdout).toBe(0)
    expect(next.stdout).toContain(`Removed 1 temporary folders an interrupted run left in ${temp}: ${left[0]}.`)
    expect(await temporaryIn(temp)).toEqual([])
    expect(list(next, 'uploaded')).toContain('Kingfisher')
    expect(await completionMarkers(under)).toHaveLength(1)
  })
})

describe.skipIf(tmpfsUnavailable !== undefined)(
  `a full disk: the output folder on a small tmpfs${tmpfsUnavailable ? ` (skipped: ${tmpfsUnavailable})` : ''}`,
  () => {
    /** A consumer's workspace whose output folder is a tmpfs of `bytes`; the restore sub-action restores into it. */
    async function restoreOnTmpfs(bytes: number) {
      const ws = await exampleWorkspace()
      const out = path.join(ws, 'XCFrameworks')
      const unmount = mountTmpfs(out, bytes)
      try {
        store.proxy.requests.length = 0
        const run = await runAction(inputs({ 'package-directory': ws }), {}, 'dist/restore/index.js')
        const gets = store.proxy.requests.filter((r) => isArchiveGet({ method: r.method, url: r.url } as never))
        return { run, out, gets: gets.length, staging: await stagingIn(out), placed: await expectNoHalfPlaced(out) }
      } finally {
        unmount()
      }
    }

    it('the first ENOSPC stops the restore: one warning naming the folder, the free space and the bytes needed; no retry, nothing half-placed', async () => {
      // Room for the archives (about 1.2 MB), not for all the unpacked frameworks (about 2.5 MB).
      const { run, out, gets, staging, placed } = await restoreOnTmpfs(1600 * 1024)
      expect(run.code, run.stdout).toBe(0)
      const w = warnings(run)
      expect(w, run.stdout).toHaveLength(1)
      expect(w[0]).toMatch(
        new RegExp(
          `The disk is full \\(no space left on device\\) in ${out}: \\d+\\.\\d MiB was free when the restore started, and it needed 1\\.\\d MiB of archives`,
        ),
      )
      expect(run.stdout).not.toMatch(/attempt \d failed/)
      expect(gets).toBeLessThanOrEqual(exampleTargets.length)
      expect(staging).toEqual([])
      expect(placed.length).toBeLessThan(exampleTargets.length)
      expect(list(run, 'restored')).toEqual(placed)
      expect(list(run, 'missing').length).toBe(exampleTargets.length - placed.length)
    })

    it('a full disk while packing stops the save at once: one warning naming the folder and its free space', async () => {
      const ws = await exampleWorkspace()
      // Packing one archive at a time into 200 KiB: APNGKit's (more than 256 KiB), the first, does not fit.
      const temp = await fs.mkdtemp(path.join(os.tmpdir(), 'full-temp-'))
      const unmount = mountTmpfs(temp, 200 * 1024)
      try {
        store.proxy.requests.length = 0
        const run = await runAction(
          inputs({ mode: 'producer', prefix: 'full-temp', 'package-directory': ws, concurrency: '1' }),
          { RUNNER_TEMP: temp },
        )
        expect(run.code, run.stdout).toBe(0)
        const w = warnings(run)
        expect(w, run.stdout).toHaveLength(1)
        expect(w[0]).toMatch(
          new RegExp(
            `The disk is full \\(no space left on device\\) in ${temp}, where archives are packed before they are uploaded: 0\\.\\d MiB free\\. Packing stopped at once: 7 frameworks were not uploaded`,
          ),
        )
        expect(list(run, 'uploaded')).toEqual([])
        expect(store.proxy.requests.filter((r) => isArchivePut({ method: r.method, url: r.url } as never))).toEqual([])
        expect(await temporaryIn(temp)).toEqual([])
      } finally {
        unmount()
      }
    })

    it('a set too large for the free space is not started: it says so before any download', async () => {
      const { run, out, gets, staging, placed } = await restoreOnTmpfs(400 * 1024)
      expect(run.code, run.stdout).toBe(0)
      const w = warnings(run)
      expect(w, run.stdout).toHaveLength(1)
      expect(w[0]).toMatch(
        new RegExp(
          `Not enough free space to restore: 0\\.\\d MiB free in ${out}, and the frameworks to restore need 1\\.\\d MiB of archives`,
        ),
      )
      expect(gets).toBe(0)
      expect(staging).toEqual([])
      expect(placed).toEqual([])
      expect(list(run, 'missing').sort()).toEqual([...exampleTargets])
    })
  },
)
