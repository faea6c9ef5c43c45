import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
// @ts-expect-error: the e2e script is plain JavaScript
import * as e2e from '../scripts/e2e/e2e.mjs'
import { aaArchiveArgs, aaExtractArgs, scipioS3StorageFields } from '../src/interop/apple-archive.js'
import { doubleBin } from './helpers/workspace.js'
import { makeTestBundle, startBundleServer, type BundleServer, type TestBundle } from './helpers/bundle-server.js'
import { root } from './helpers/s3-server.js'
import { runJob, type JobRun } from './helpers/workflow-runner.js'

/**
 * .github/workflows/e2e-macos.yml, step by step, on Linux: the same scripts (scripts/e2e/e2e.mjs) and the same
 * `uses: ./` steps with the same inputs, with s3rver in place of MinIO, the Scipio double (installed through
 * scipio-version and scipio-checksum from a test artifact bundle), the xcrun double and the aa double.
 * What only a macOS runner can show is the same run with the real Scipio, Xcode and aa.
 */

const run = promisify(execFile)
const script = path.join(root, 'scripts/e2e/e2e.mjs')
const aaBin = path.join(root, 'aa-test-double/bin')
const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix))
const workflowFile = '.github/workflows/e2e-macos.yml'
const workflow = parse(fs.readFileSync(path.join(root, workflowFile), 'utf8')) as {
  env: { SCIPIO_VERSION: string }
  jobs: {
    e2e: {
      strategy: { matrix: { include: { os: string; xcode: string }[] } }
      steps: { uses?: string; run?: string }[]
    }
  }
}

/** PATH with the Scipio, xcrun and aa doubles first, and no other `aa` or `minio`. */
function searchPath(): string {
  const rest = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => dir && !fs.existsSync(path.join(dir, 'aa')) && !fs.existsSync(path.join(dir, 'minio')))
  return [doubleBin, aaBin, path.dirname(process.execPath), ...rest].join(path.delimiter)
}

describe(`${workflowFile} on Linux, with s3rver and the doubles`, () => {
  let bundle: TestBundle
  let server: BundleServer
  let job: JobRun
  let runnerTemp: string
  const matrix = workflow.jobs.e2e.strategy.matrix.include.find((m) => m.xcode)!

  beforeAll(async () => {
    bundle = await makeTestBundle(workflow.env.SCIPIO_VERSION)
    server = await startBundleServer({ [workflow.env.SCIPIO_VERSION]: bundle.zip })
    runnerTemp = tmp('runner-temp-')
    const applications = tmp('applications-')
    fs.mkdirSync(path.join(applications, `Xcode_${matrix.xcode}.app/Contents/Developer`), { recursive: true })
    job = await runJob({
      workflow: workflowFile,
      job: 'e2e',
      matrix,
      vars: { SCIPIO_CHECKSUM: bundle.sha256 },
      env: {
        PATH: searchPath(),
        HOME: process.env.HOME ?? runnerTemp,
        TMPDIR: os.tmpdir(),
        RUNNER_TEMP: runnerTemp,
        RUNNER_TOOL_CACHE: tmp('tool-cache-'),
        GITHUB_EVENT_NAME: 'pull_request',
        AWS_EC2_METADATA_DISABLED: 'true',
        E2E_STORE: 's3rver',
        E2E_APPLICATIONS_DIR: applications,
        SCIPIO_S3_CACHE_SCIPIO_DOWNLOAD_URL: server.url,
      },
      skip: { uses: ['actions/checkout', 'actions/setup-node'], run: ['npm ci --no-audit --no-fund'] },
    })
  }, 300_000)

  afterAll(async () => {
    await server?.close()
    if (runnerTemp) fs.rmSync(runnerTemp, { recursive: true, force: true })
  })

  const step = (id: string) => job.steps.find((s) => s.id === id)!
  const checkStep = (phase: string) =>
    job.steps.find((s) => s.label.startsWith('Check') && s.output.includes(`${phase}: every check passed`))

  it('runs every step and every step passes; only the runner set-up is skipped', () => {
    const failed = job.steps.filter((s) => s.status === 'failure')
    expect(failed.map((s) => `${s.label} (exit ${s.code})\n${s.output}`)).toEqual([])
    expect(job.steps.filter((s) => s.status === 'skipped').map((s) => s.label)).toEqual([
      expect.stringMatching(/^actions\/checkout@/),
      expect.stringMatching(/^actions\/setup-node@/),
      'npm ci --no-audit --no-fund',
    ])
    expect(job.steps.filter((s) => s.label.startsWith('Check')).length).toBe(5)
    for (const phase of ['producer', 'consumer', 'bumped', 'adopted', 'adopted-consumer'])
      expect(checkStep(phase), phase).toBeDefined()
    expect(job.log).toContain('aar-readback: every check passed')
  })

  it('installs Scipio through scipio-version and scipio-checksum (the checksum from the repository variable)', () => {
    expect(server.bundleRequests).toEqual([
      `/${workflow.env.SCIPIO_VERSION}/scipio-${workflow.env.SCIPIO_VERSION}.artifactbundle.zip`,
    ])
    expect(step('producer').output).toContain(`Scipio ${workflow.env.SCIPIO_VERSION} from the download`)
    expect(step('consumer').output).toContain(`Scipio ${workflow.env.SCIPIO_VERSION} from the tool cache`)
  })

  it('the producer built and stored everything; the consumer restored everything and skipped Scipio', () => {
    const targets = Object.values(e2e.expected.targets as Record<string, string[]>)
      .flat()
      .sort()
    expect(JSON.parse(step('producer').outputs.built!).sort()).toEqual(targets)
    expect(step('consumer').outputs['cache-hit']).toBe('true')
    expect(step('consumer').output).toContain('skipping the Scipio build')
  })

  it('with one pin bumped exactly that package builds, and the miss reason names it', () => {
    const { identity } = e2e.expected.bump as { identity: string }
    expect(JSON.parse(step('bumped').outputs.built!)).toEqual(e2e.expected.targets[identity])
    expect(Object.keys(JSON.parse(step('bumped').outputs['miss-reasons']!))).toEqual([identity])
  })

  it('selects the matrix Xcode through DEVELOPER_DIR for the steps after the preflight', () => {
    const preflight = job.steps.find((s) => s.label.startsWith('Preflight'))!
    expect(preflight.output).toMatch(new RegExp(`Xcode_${matrix.xcode.replace('.', '\\.')}\\.app/Contents/Developer`))
  })

  it('never shows the store credentials: they are masked before any step could print them', () => {
    expect(job.masks.length).toBeGreaterThanOrEqual(2)
    const unmasked = job.log
      .split('\n')
      .filter((line) => !line.startsWith('::add-mask::') && job.masks.some((secret) => line.includes(secret)))
    expect(unmasked).toEqual([])
  })

  it('stops the store it started', () => {
    expect(job.steps.at(-1)!.output).toMatch(/stopped the store \(pid \d+\)/)
  })
})

describe('scripts/e2e/e2e.mjs', () => {
  const node = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, [script, ...args], { env: { PATH: searchPath(), E2E_DIR: tmp('e2e-dir-'), ...env } }).then(
      () => ({ code: 0, output: '' }),
      (error: { code: number; stdout: string; stderr: string }) => ({
        code: error.code,
        output: `${error.stdout}${error.stderr}`,
      }),
    )

  it("runs aa with exactly the argument lists of src/interop/apple-archive.ts (scipio-s3-storage's)", () => {
    expect(e2e.scipioS3StorageFields).toBe(scipioS3StorageFields)
    expect(e2e.aaArchiveArgs('/f/A.xcframework', '/t/a.aar')).toEqual(aaArchiveArgs('/f/A.xcframework', '/t/a.aar'))
    expect(e2e.aaExtractArgs('/f/A.xcframework', '/t/a.aar')).toEqual(aaExtractArgs('/f/A.xcframework', '/t/a.aar'))
  })

  it('the preflight refuses to run without a SHA-256 in SCIPIO_CHECKSUM', async () => {
    const result = await node(['preflight'], { SCIPIO_VERSION: '0.33.0' })
    expect(result.code).toBe(1)
    expect(result.output).toMatch(/SCIPIO_CHECKSUM is not set: set the repository variable SCIPIO_CHECKSUM/)
    const wrong = await node(['preflight'], { SCIPIO_CHECKSUM: 'abc' })
    expect(wrong.output).toMatch(/not a SHA-256/)
  })

  it('a check fails, naming what differs, when the action did something else', async () => {
    const dir = tmp('ws-')
    const result = await node(['check', 'consumer', '--dir', dir, '--reference', dir], {
      E2E_OUTPUTS: JSON.stringify({
        'cache-hit': 'false',
        restored: '[]',
        built: '["Logging"]',
        uploaded: '[]',
        'miss-reasons': '{"swift-log":"x"}',
      }),
    })
    expect(result.code).toBe(1)
    expect(result.output).toMatch(/FAIL cache-hit: got "false", wanted "true"/)
    expect(result.output).toMatch(/FAIL nothing was built: got \["Logging"\], wanted \[\]/)
  })

  it('bump moves exactly one pin in Package.swift and Package.resolved, and refuses a package it did not expect', async () => {
    const dir = tmp('bump-')
    fs.cpSync(path.join(root, 'e2e/Dependencies'), dir, { recursive: true })
    expect((await node(['bump', dir])).code).toBe(0)
    const { identity, from, to } = e2e.expected.bump
    const manifest = fs.readFileSync(path.join(dir, 'Package.swift'), 'utf8')
    expect(manifest).toContain(`/${identity}.git", exact: "${to.version}"`)
    expect(manifest.replace(to.version, from.version)).toBe(
      fs.readFileSync(path.join(root, 'e2e/Dependencies/Package.swift'), 'utf8'),
    )
    const before = JSON.parse(fs.readFileSync(path.join(root, 'e2e/Dependencies/Package.resolved'), 'utf8'))
    const after = JSON.parse(fs.readFileSync(path.join(dir, 'Package.resolved'), 'utf8'))
    expect(after.pins.filter((p: { identity: string }) => p.identity !== identity)).toEqual(
      before.pins.filter((p: { identity: string }) => p.identity !== identity),
    )
    expect(after.pins.find((p: { identity: string }) => p.identity === identity).state).toEqual({
      revision: to.revision,
      version: to.version,
    })
    expect((await node(['bump', dir])).output).toMatch(/does not pin swift-log at exactly 1\.6\.1/)
  })
})

describe('e2e/Dependencies', () => {
  const dir = path.join(root, 'e2e/Dependencies')
  const manifest = fs.readFileSync(path.join(dir, 'Package.swift'), 'utf8')
  const resolved = JSON.parse(fs.readFileSync(path.join(dir, 'Package.resolved'), 'utf8')) as {
    pins: { identity: string; location: string; state: { revision: string; version: string } }[]
  }
  const double = JSON.parse(fs.readFileSync(path.join(dir, 'scipio-test-double.json'), 'utf8')) as {
    packages: Record<string, { targets: { name: string }[] }>
  }

  it('pins every dependency exactly, at the version and a full revision in Package.resolved', () => {
    const declared = [...manifest.matchAll(/\.package\(url: "([^"]+)", exact: "([^"]+)"\)/g)].map((m) => ({
      location: m[1],
      version: m[2],
    }))
    expect(declared.length).toBe(3)
    expect(
      resolved.pins
        .map((p) => ({ location: p.location, version: p.state.version }))
        .sort((a, b) => a.location.localeCompare(b.location)),
    ).toEqual(declared.sort((a, b) => a.location!.localeCompare(b.location!)))
    for (const pin of resolved.pins) expect(pin.state.revision).toMatch(/^[0-9a-f]{40}$/)
  })

  it('the expectations and the Scipio double agree on the targets each package yields', () => {
    const fromDouble = Object.fromEntries(
      Object.entries(double.packages).map(([id, p]) => [id, p.targets.map((t) => t.name)]),
    )
    expect(fromDouble).toEqual(e2e.expected.targets)
    expect(Object.keys(e2e.expected.targets).sort()).toEqual(resolved.pins.map((p) => p.identity).sort())
    expect(e2e.expected.bump.from).toEqual(resolved.pins.find((p) => p.identity === e2e.expected.bump.identity)!.state)
  })
})
