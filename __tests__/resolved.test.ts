import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ProjectError } from '../src/errors.js'
import { findResolvedFile, identityFromLocation, parseResolved } from '../src/keys/resolved.js'
import { root } from './helpers/s3-server.js'

const fixture = (name: string) => fs.readFile(path.join(root, '__fixtures__/resolved', name), 'utf8')

describe('Package.resolved', () => {
  it('reads version 1 files, deriving identities from the URL', async () => {
    const file = parseResolved(await fixture('v1.json'), 'v1.json')
    expect(file.formatVersion).toBe(1)
    expect(file.pins).toEqual([
      {
        identity: 'apngkit',
        kind: 'remoteSourceControl',
        location: 'https://github.com/onevcat/APNGKit.git',
        revision: '1e4c1a7e6b9d0f2a3c5e7b9d1f3a5c7e9b1d3f5a',
        version: '2.3.0',
      },
      {
        identity: 'swift-log',
        kind: 'remoteSourceControl',
        location: 'https://github.com/apple/swift-log',
        revision: '5c9a1e3d7f9b1d3f5b7d9f1b3d5f7b9d1f3b5d7f',
        branch: 'main',
      },
    ])
  })

  it('reads version 2 files, registry pins included', async () => {
    const file = parseResolved(await fixture('v2.json'), 'v2.json')
    expect(file.pins.map((p) => p.identity)).toEqual(['apngkit', 'swift-log', 'mona.linkedlist'])
    expect(file.pins[2]).toEqual({ identity: 'mona.linkedlist', kind: 'registry', location: '', version: '1.0.0' })
  })

  it('reads version 3 files', async () => {
    const file = parseResolved(await fixture('v3.json'), 'v3.json')
    expect(file.formatVersion).toBe(3)
    expect(file.pins).toHaveLength(5)
    expect(file.pins[0]).toMatchObject({ identity: 'apngkit', version: '2.3.0' })
  })

  it('derives identities like SwiftPM', () => {
    expect(identityFromLocation('https://github.com/onevcat/APNGKit.git')).toBe('apngkit')
    expect(identityFromLocation('git@github.com:apple/swift-log.git')).toBe('swift-log')
  })

  it.each([
    ['empty', '', /empty/],
    ['not JSON', '{"pins": [', /not JSON/],
    ['unknown version', '{"pins": [], "version": 4}', /unknown format version 4/],
    ['no version', '{"pins": []}', /unknown format version undefined/],
    [
      'missing state',
      '{"pins": [{"identity": "a", "kind": "remoteSourceControl", "location": "x"}], "version": 2}',
      /needs 'state'/,
    ],
    [
      'missing revision',
      '{"pins": [{"identity": "a", "kind": "remoteSourceControl", "location": "x", "state": {"version": "1.0.0"}}], "version": 2}',
      /revision' is missing/,
    ],
    [
      'missing identity',
      '{"pins": [{"kind": "remoteSourceControl", "location": "x", "state": {"revision": "abc"}}], "version": 2}',
      /'identity' is missing/,
    ],
    [
      'duplicate identity',
      '{"pins": [{"identity": "a", "kind": "k", "location": "x", "state": {"revision": "1"}}, {"identity": "A", "kind": "k", "location": "y", "state": {"revision": "2"}}], "version": 2}',
      /pinned twice/,
    ],
    ['an array', '[]', /not a JSON object/],
  ])('refuses a file that is %s', (_name, text, message) => {
    expect(() => parseResolved(text, 'Package.resolved')).toThrow(ProjectError)
    expect(() => parseResolved(text, 'Package.resolved')).toThrow(message)
  })

  it('finds the file next to Package.swift, then inside an Xcode project', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'resolved-'))
    await expect(findResolvedFile(dir)).rejects.toThrow(/No Package.resolved found.*resolved-file/)
    const inProject = path.join(dir, 'App.xcodeproj/project.xcworkspace/xcshareddata/swiftpm/Package.resolved')
    await fs.mkdir(path.dirname(inProject), { recursive: true })
    await fs.writeFile(inProject, '{}')
    expect(await findResolvedFile(dir)).toBe(inProject)
    await fs.writeFile(path.join(dir, 'Package.resolved'), '{}')
    expect(await findResolvedFile(dir)).toBe(path.join(dir, 'Package.resolved'))
  })
})
