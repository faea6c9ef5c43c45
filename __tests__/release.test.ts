import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: the release script is plain JavaScript
import { majorTag, notesForTag, releaseNotes, versionOfTag } from '../scripts/release.mjs'
import { root } from './helpers/s3-server.js'

const run = promisify(execFile)

const changelog = [
  '# Changelog',
  '',
  '## [Unreleased]',
  '',
  '- Something not released yet.',
  '',
  '## [1.1.0] - 2026-12-01',
  '',
  '### Added',
  '',
  '- `restore` learned to fly.',
  '',
  '## [1.0.0] - 2026-11-30',
  '',
  'The first release.',
  '',
  '[1.1.0]: https://example.com/v1.1.0',
  '[1.0.0]: https://example.com/v1.0.0',
  '',
].join('\n')

describe('scripts/release.mjs', () => {
  it("extracts one version's section of CHANGELOG.md, without its heading, up to the next section or the link list", () => {
    expect(releaseNotes(changelog, '1.1.0')).toBe('### Added\n\n- `restore` learned to fly.')
    expect(releaseNotes(changelog, '1.0.0')).toBe('The first release.')
  })

  it('refuses a version with no section, an undated section and an empty one', () => {
    expect(() => releaseNotes(changelog, '2.0.0')).toThrow("CHANGELOG.md has no section '## [2.0.0] - YYYY-MM-DD'")
    expect(() => releaseNotes('## [1.2.0] - Unreleased\n\n- x\n', '1.2.0')).toThrow(/not dated \('Unreleased'\)/)
    expect(() => releaseNotes('## [1.2.0]\n\n- x\n', '1.2.0')).toThrow(/not dated \('no date'\)/)
    expect(() => releaseNotes('## [1.2.0] - 2026-12-02\n\n## [1.1.0] - 2026-12-01\n- y\n', '1.2.0')).toThrow(
      /section of 1\.2\.0 is empty/,
    )
  })

  it('takes release tags vX.Y.Z only, and needs package.json to carry the same version', () => {
    expect(versionOfTag('v1.1.0')).toBe('1.1.0')
    for (const tag of ['1.1.0', 'v1.1', 'v1.1.0-rc.1', 'v1', ''])
      expect(() => versionOfTag(tag)).toThrow(/is not a release tag/)
    expect(notesForTag('v1.1.0', { changelog, packageVersion: '1.1.0' })).toContain('learned to fly')
    expect(() => notesForTag('v1.1.0', { changelog, packageVersion: '1.0.0' })).toThrow(
      /package.json's version is 1\.0\.0, the tag says 1\.1\.0/,
    )
  })

  it('moves the major tag to the latest release of that major only', () => {
    expect(majorTag('v1.2.0', ['v1.0.0', 'v1.1.3', 'v2.0.0', 'v1.2.0'])).toBe('v1')
    expect(majorTag('v1.1.4', ['v1.0.0', 'v1.2.0', 'v1.1.3'])).toBeUndefined()
    expect(majorTag('v1.2.0', ['v1.2.1'])).toBeUndefined()
    expect(majorTag('v2.0.0', ['v1', 'v1.9.9', 'not-a-tag'])).toBe('v2')
  })

  it('the command line prints the notes and the major tag, and fails with an error annotation', async () => {
    const script = path.join(root, 'scripts/release.mjs')
    expect((await run(process.execPath, [script, 'major', 'v3.4.5', 'v3.4.4'])).stdout).toBe('v3\n')
    expect((await run(process.execPath, [script, 'major', 'v3.4.5', 'v3.5.0'])).stdout).toBe('')
    const failed = await run(process.execPath, [script, 'notes', 'v0.0.1']).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    )
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(/^::error::package.json's version is /)
  })
})

describe('CHANGELOG.md', () => {
  const text = fs.readFileSync(path.join(root, 'CHANGELOG.md'), 'utf8')
  const version = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version

  it("follows Keep a Changelog, with an Unreleased section and one for package.json's version", () => {
    expect(text).toMatch(/^# Changelog$/m)
    expect(text).toContain('https://keepachangelog.com/')
    expect(text).toMatch(/^## \[Unreleased\]$/m)
    // Dated when the release is cut (docs/development.md); until then the extraction refuses it.
    const heading = new RegExp(
      `^## \\[${version.replace(/\./g, '\\.')}\\] - (\\d{4}-\\d{2}-\\d{2}|Unreleased)$`,
      'm',
    ).exec(text)
    expect(heading, `a '## [${version}] - ...' heading`).not.toBeNull()
    const body = releaseNotes(text.replace(heading![0], `## [${version}] - 2000-01-01`), version)
    expect(body.length).toBeGreaterThan(200)
  })
})
