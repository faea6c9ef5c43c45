import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { root } from './helpers/s3-server.js'

/**
 * The command line as an npm package: `npm pack` makes a tarball that holds only what the CLI needs, and it
 * installs into an empty folder without fetching anything (the bundle in dist/cli/ carries its dependencies),
 * then `scipio-s3-cache --help` runs on this Node.js (`npm test` runs the suite on 22 and on 24).
 */

const run = promisify(execFile)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
/** This Node.js first on PATH, so that npm and the installed bin's `#!/usr/bin/env node` run on it. */
const env = {
  ...process.env,
  PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`,
  npm_config_update_notifier: 'false',
  npm_config_fund: 'false',
  npm_config_audit: 'false',
}

interface PackResult {
  filename: string
  files: { path: string; mode: number }[]
}

let work: string
let packed: PackResult

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'npm-pack-'))
  const { stdout } = await run(npm, ['pack', '--json', '--pack-destination', work], { cwd: root, env })
  packed = (JSON.parse(stdout) as PackResult[])[0]!
}, 120_000)

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true })
})

describe('npm pack', () => {
  it('holds only the bundled command line (and its extraction worker), the README, LICENSE and CHANGELOG', () => {
    const files = packed.files.map((f) => f.path).sort()
    expect(files.filter((f) => !f.startsWith('dist/cli/') && !f.startsWith('dist/extract-worker/'))).toEqual([
      'CHANGELOG.md',
      'LICENSE',
      'README.md',
      'package.json',
    ])
    expect(files).toContain('dist/cli/index.js')
    expect(files).toContain('dist/extract-worker/index.js')
    expect(packed.files.find((f) => f.path === 'dist/cli/index.js')!.mode & 0o111).not.toBe(0)
  })

  it('package.json can be published and installs no dependencies: dist/cli/ bundles them', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>
    expect(pkg.private).toBeUndefined()
    expect(pkg.dependencies).toBeUndefined()
    expect(pkg.bin).toEqual({ 'scipio-s3-cache': 'dist/cli/index.js' })
  })

  it('installs into an empty folder offline and runs scipio-s3-cache --help on this Node.js', async () => {
    const project = path.join(work, 'empty')
    fs.mkdirSync(project)
    await run(
      npm,
      [
        'install',
        '--offline',
        '--no-audit',
        '--no-fund',
        '--cache',
        path.join(work, 'npm-cache'),
        path.join(work, packed.filename),
      ],
      { cwd: project, env },
    )
    const installed = fs.readdirSync(path.join(project, 'node_modules')).filter((n) => !n.startsWith('.'))
    expect(installed).toEqual(['scipio-s3-cache'])
    const { stdout } = await run(path.join(project, 'node_modules/.bin/scipio-s3-cache'), ['--help'], {
      cwd: project,
      env,
    })
    expect(stdout).toMatch(/^Usage: scipio-s3-cache <command>/m)
    for (const command of ['restore', 'save', 'status', 'prune'])
      expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'))
    const status = await run(path.join(project, 'node_modules/.bin/scipio-s3-cache'), ['status', '--help'], {
      cwd: project,
      env,
    })
    expect(status.stdout).toContain('--bucket')
  }, 120_000)
})
