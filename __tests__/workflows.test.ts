import { validateWorkflow } from '@action-validator/core'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { readActionFile } from './helpers/docs.js'
import { root } from './helpers/s3-server.js'

/**
 * The repository's own workflows (.github/workflows/) and dependabot.yml, checked offline: valid against the
 * workflow schema, every `uses: ./` step with inputs and outputs action.yml declares, and every third-party
 * action pinned the same way everywhere (a full commit SHA, with its version in a comment).
 */

const workflowDir = path.join(root, '.github/workflows')
const workflowFiles = fs
  .readdirSync(workflowDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort()
const read = (file: string) => fs.readFileSync(path.join(workflowDir, file), 'utf8')

interface Step {
  id?: string
  name?: string
  uses?: string
  run?: string
  with?: Record<string, unknown>
}
interface Job {
  'runs-on': unknown
  steps: Step[]
  strategy?: { matrix?: Record<string, unknown> }
}
interface Workflow {
  on: Record<string, unknown>
  jobs: Record<string, Job>
}
const workflow = (file: string) => parse(read(file)) as Workflow
const steps = (file: string) => Object.values(workflow(file).jobs).flatMap((j) => j.steps)
const runs = (file: string) => steps(file).flatMap((s) => (s.run ? [s.run.trim()] : []))

export interface Pin {
  file: string
  line: number
  action: string
  sha: string
  version: string
}

/** Every `uses:` of a third-party action in `texts` (file → YAML text); problems for those not pinned as the rule says. */
export function checkPins(texts: Record<string, string>): { pins: Pin[]; problems: string[] } {
  const pins: Pin[] = []
  const problems: string[] = []
  for (const [file, text] of Object.entries(texts)) {
    for (const [i, line] of text.split('\n').entries()) {
      const m = /^\s*(?:-\s+)?uses:\s*['"]?([^\s'"#]+)['"]?\s*(#.*)?$/.exec(line)
      if (!m) continue
      const uses = m[1]!
      if (uses.startsWith('./')) continue
      const where = `${file}:${i + 1}`
      const pinned = /^([\w.-]+\/[\w.-]+)(\/[\w./-]+)?@([0-9a-f]{40})$/.exec(uses)
      const comment = /^#\s*(v\d+\.\d+\.\d+)\s*$/.exec(m[2] ?? '')
      if (uses.startsWith('docker://')) problems.push(`${where}: ${uses}: docker actions are not used here`)
      else if (!pinned) problems.push(`${where}: ${uses} is not pinned to a full 40-hex commit SHA`)
      else if (!comment) problems.push(`${where}: ${uses} has no '# vX.Y.Z' comment naming its version`)
      else pins.push({ file, line: i + 1, action: pinned[1]!, sha: pinned[3]!, version: comment[1]! })
    }
  }
  const byAction = new Map<string, Set<string>>()
  for (const p of pins) byAction.set(p.action, (byAction.get(p.action) ?? new Set()).add(`${p.sha} # ${p.version}`))
  for (const [action, ways] of byAction)
    if (ways.size > 1) problems.push(`${action} is pinned in ${ways.size} ways: ${[...ways].sort().join(', ')}`)
  return { pins, problems }
}

/**
 * Each `uses: owner/name@vN` of the examples (file → text) whose action `pins` also pin, where N is below the pin's
 * major: an example older than what the repository's own workflows run (and Dependabot keeps current).
 */
export function staleExamples(texts: Record<string, string>, pins: Pin[]): string[] {
  const pinned = new Map(pins.map((p) => [p.action, Number(/^v(\d+)/.exec(p.version)![1])]))
  const stale: string[] = []
  for (const [file, text] of Object.entries(texts)) {
    for (const [i, line] of text.split('\n').entries()) {
      const m = /^\s*(?:-\s+)?uses:\s*['"]?([\w.-]+\/[\w.-]+)(?:\/[\w./-]+)?@v(\d+)\b/.exec(line)
      if (!m) continue
      const major = pinned.get(m[1]!)
      if (major !== undefined && Number(m[2]) < major)
        stale.push(`${file}:${i + 1}: ${m[1]}@v${m[2]} is older than v${major}, pinned in .github/workflows`)
    }
  }
  return stale
}

describe('.github/workflows', () => {
  it('holds CI, the macOS end-to-end run, the release and CodeQL', () => {
    expect(workflowFiles).toEqual(['ci.yml', 'codeql.yml', 'e2e-macos.yml', 'release.yml'])
  })

  it.each(workflowFiles)('%s is a valid workflow', (file) => {
    expect(validateWorkflow(read(file)).errors).toEqual([])
  })

  it('the validator rejects a broken workflow (so the check above can fail)', () => {
    expect(
      validateWorkflow('on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n').errors.length,
    ).toBeGreaterThan(0)
  })

  it.each(workflowFiles)(
    '%s gives uses: ./ only inputs action.yml declares, and reads only outputs it declares',
    (file) => {
      const action = readActionFile('action.yml')
      const text = read(file)
      for (const step of steps(file).filter((s) => s.uses === './')) {
        for (const key of Object.keys(step.with ?? {}))
          expect(
            action.inputs.map((i) => i.name),
            `${file}: ${key}`,
          ).toContain(key)
        if (!step.id) continue
        for (const m of text.matchAll(new RegExp(`steps\\.${step.id}\\.outputs\\.([\\w-]+)`, 'g')))
          expect(action.outputs.map((o) => o.name)).toContain(m[1])
      }
    },
  )

  it('pins every third-party action to a full commit SHA with its version in a comment, the same way in every file', () => {
    const { pins, problems } = checkPins(Object.fromEntries(workflowFiles.map((f) => [f, read(f)])))
    expect(problems).toEqual([])
    expect([...new Set(pins.map((p) => p.action))].sort()).toEqual([
      'actions/checkout',
      'actions/setup-node',
      'github/codeql-action',
    ])
  })

  it('the examples (docs/workflows/, the README, docs/) use no older major of an action than the pins here', () => {
    const { pins } = checkPins(Object.fromEntries(workflowFiles.map((f) => [f, read(f)])))
    const examples = [
      ...fs.readdirSync(path.join(root, 'docs/workflows')).map((f) => `docs/workflows/${f}`),
      'README.md',
      ...fs
        .readdirSync(path.join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ]
    const texts = Object.fromEntries(examples.map((f) => [f, fs.readFileSync(path.join(root, f), 'utf8')]))
    expect(Object.values(texts).join('\n')).toMatch(/uses: actions\/checkout@v\d+/)
    expect(staleExamples(texts, pins)).toEqual([])
  })

  it('the examples check finds an older major, and leaves newer ones, SHAs and unpinned actions alone', () => {
    const pins: Pin[] = [
      { file: 'ci.yml', line: 1, action: 'actions/checkout', sha: 'a'.repeat(40), version: 'v7.0.1' },
    ]
    const example = [
      '      - uses: actions/checkout@v4',
      '      - uses: actions/checkout@v7',
      '      - uses: actions/checkout@v8',
      `      - uses: actions/checkout@${'b'.repeat(40)}`,
      '      - uses: aws-actions/configure-aws-credentials@v1',
    ].join('\n')
    expect(staleExamples({ 'x.yml': example }, pins)).toEqual([
      'x.yml:1: actions/checkout@v4 is older than v7, pinned in .github/workflows',
    ])
  })

  it('the pinning check finds tags, short SHAs, missing comments and two pins of one action', () => {
    const sha = 'a'.repeat(40)
    const { problems } = checkPins({
      'a.yml': [
        '      - uses: actions/checkout@v4',
        `      - uses: actions/setup-node@${sha.slice(0, 7)} # v7.0.0`,
        `      - uses: actions/cache@${sha}`,
        `      - uses: o/r/sub@${sha} # v1.0.0`,
        '      - uses: ./',
      ].join('\n'),
      'b.yml': `    steps:\n      - uses: o/r/other@${'b'.repeat(40)} # v1.0.1\n`,
    })
    expect(problems).toEqual([
      'a.yml:1: actions/checkout@v4 is not pinned to a full 40-hex commit SHA',
      `a.yml:2: actions/setup-node@${sha.slice(0, 7)} is not pinned to a full 40-hex commit SHA`,
      `a.yml:3: actions/cache@${sha} has no '# vX.Y.Z' comment naming its version`,
      `o/r is pinned in 2 ways: ${sha} # v1.0.0, ${'b'.repeat(40)} # v1.0.1`,
    ])
  })
})

describe('ci.yml does what .ci/run does', () => {
  const ci = workflow('ci.yml')

  it('on pushes to main and on pull requests, on ubuntu-latest', () => {
    expect(Object.keys(ci.on).sort()).toEqual(['pull_request', 'push'])
    for (const job of Object.values(ci.jobs)) expect(job['runs-on']).toBe('ubuntu-latest')
  })

  it('installs, type-checks, lints, checks dist/ and validates the action files', () => {
    expect(runs('ci.yml')).toEqual(
      expect.arrayContaining([
        'npm ci --no-audit --no-fund',
        'npm run typecheck',
        'npm run lint',
        'npm run format:check',
        'bash scripts/check-dist.sh',
        'node scripts/validate-action.mjs',
      ]),
    )
    expect(fs.readFileSync(path.join(root, '.ci/run'), 'utf8')).toMatch(/^bash scripts\/check-dist\.sh$/m)
  })

  it('runs the tests on Node.js 22 and 24', () => {
    expect(ci.jobs.test!.strategy!.matrix!.node).toEqual([22, 24])
    expect(runs('ci.yml')).toContain('npm test -- --node ${{ matrix.node }}')
  })
})

describe('e2e-macos.yml', () => {
  const e2e = workflow('e2e-macos.yml')
  const job = e2e.jobs.e2e!

  it('runs on images GitHub still offers (macos-15, macos-26), each with an Xcode Scipio supports', () => {
    expect(job['runs-on']).toBe('${{ matrix.os }}')
    const matrix = job.strategy!.matrix!.include as { os: string; xcode: string }[]
    expect(matrix).toEqual([
      { os: 'macos-15', xcode: '16.4' },
      { os: 'macos-26', xcode: '26.4' },
    ])
  })

  it('installs the real Scipio in every action step, through scipio-version and scipio-checksum', () => {
    const actionSteps = job.steps.filter((s) => s.uses === './')
    expect(actionSteps.length).toBe(5)
    for (const step of actionSteps) {
      expect(step.with!['scipio-version'], step.name).toBe('${{ env.SCIPIO_VERSION }}')
      expect(step.with!['scipio-checksum'], step.name).toBe('${{ env.SCIPIO_CHECKSUM }}')
      expect(step.with!['scipio-path'], step.name).toBeUndefined()
    }
  })

  it('every run step calls scripts/e2e/e2e.mjs (or installs the packages it needs)', () => {
    for (const command of runs('e2e-macos.yml'))
      expect(command).toMatch(/^(node scripts\/e2e\/e2e\.mjs [\w-]+( .*)?|npm ci --no-audit --no-fund)$/)
  })
})

describe('release.yml', () => {
  const release = workflow('release.yml')

  it('runs on release tags vX.Y.Z only', () => {
    expect(release.on).toEqual({ push: { tags: ['v[0-9]+.[0-9]+.[0-9]+'] } })
  })

  it('checks dist/, creates the release with the notes from CHANGELOG.md, then moves the major tag', () => {
    const commands = runs('release.yml')
    const at = (pattern: RegExp) => commands.findIndex((c) => pattern.test(c))
    const order = [
      /^bash scripts\/check-dist\.sh$/,
      /^node scripts\/release\.mjs notes /,
      /^gh release create .*--notes-file/,
      /scripts\/release\.mjs major [\s\S]*git push --force origin/,
    ]
    const positions = order.map(at)
    expect(
      positions.every((p) => p >= 0),
      JSON.stringify(positions),
    ).toBe(true)
    expect([...positions].sort((a, b) => a - b)).toEqual(positions)
  })
})

describe('.github/dependabot.yml', () => {
  const text = fs.readFileSync(path.join(root, '.github/dependabot.yml'), 'utf8')
  const config = parse(text) as {
    version: number
    updates: { 'package-ecosystem': string; directory: string; schedule: { interval: string } }[]
  }

  it("is a version 2 configuration that updates the npm packages and the workflows' actions", () => {
    expect(config.version).toBe(2)
    expect(config.updates.map((u) => u['package-ecosystem']).sort()).toEqual(['github-actions', 'npm'])
    for (const update of config.updates) {
      expect(
        Object.keys(update).every((k) =>
          [
            'package-ecosystem',
            'directory',
            'schedule',
            'groups',
            'open-pull-requests-limit',
            'labels',
            'ignore',
          ].includes(k),
        ),
        JSON.stringify(update),
      ).toBe(true)
      expect(update.directory).toBe('/')
      expect(['daily', 'weekly', 'monthly']).toContain(update.schedule.interval)
    }
  })
})
