import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: the double is plain JavaScript
import { encodeVersionFile, versionFileDocument } from '../scipio-test-double/version-file.mjs'
import { parseVersionFile } from '../src/keys/frameworks.js'
import {
  exampleTargets,
  exampleWorkspace,
  graphFixture,
  graphTargets,
  graphWorkspace,
  readDoubleLog,
  runScipioDouble,
} from './helpers/workspace.js'
import { root } from './helpers/s3-server.js'
import { snapshotTree } from './helpers/tree.js'

const sample = path.join(root, '__fixtures__/version-file-sample.json')
const notes = path.resolve(root, '../shared/scipio-notes.md')

const sampleInput = {
  targetName: 'MyTarget',
  pin: { revision: '0123456789abcdef0123456789abcdef01234567', version: '1.2.3' },
  buildOptions: {
    configuration: 'release',
    libraryEvolution: false,
    frameworkType: 'dynamic',
    embedDebugSymbols: false,
    sdks: ['iOSSimulator', 'iOS'],
  },
  clangVersion: 'clang-1600.0.26.6',
  xcodeVersion: '16.2',
  xcodeBuildVersion: '16C5032a',
  scipioVersion: '<git commit of the Scipio build>',
  dependencyChecksums: [{ checksum: "<sha256 hex of the dependency's key>", targetName: 'Base' }],
}

describe('Scipio test double', () => {
  it("writes VersionFiles byte for byte in Scipio 0.33's format", async () => {
    const expected = await fs.readFile(sample, 'utf8')
    expect(encodeVersionFile(versionFileDocument(sampleInput))).toBe(expected)
    expect(expected.endsWith('}')).toBe(true) // no trailing newline
  })

  it.skipIf(!existsSync(notes))('keeps the fixture equal to the sample in shared/scipio-notes.md', async () => {
    const text = await fs.readFile(notes, 'utf8')
    const block = /Example \(values invented\):\n\n((?: {4}.*\n|\n)+)/.exec(text)![1]!
    const fromNotes = block
      .split('\n')
      .map((l) => l.slice(4))
      .join('\n')
      .trim()
    expect(fromNotes).toBe(await fs.readFile(sample, 'utf8'))
  })

  it("escapes '/' and leaves out absent fields as Swift's JSONEncoder does", () => {
    const text = encodeVersionFile({
      localPackageCanonicalLocation: '/Users/me/Pkg',
      pin: { revision: 'abc', version: undefined },
    })
    expect(text).toBe(
      '{\n  "localPackageCanonicalLocation" : "\\/Users\\/me\\/Pkg",\n  "pin" : {\n    "revision" : "abc"\n  }\n}',
    )
  })

  it('builds every target once, then skips the valid ones and rebuilds the one whose VersionFile differs', async () => {
    const ws = await exampleWorkspace()
    const out = path.join(ws, 'XCFrameworks')
    const log = path.join(ws, 'double.log')
    const env = { SCIPIO_TEST_DOUBLE_LOG: log }
    const args = ['prepare', ws, '--output', out, '--framework-cache-policy', 'project']
    await runScipioDouble(args, env)
    const first = await readDoubleLog(log)
    expect(
      first
        .filter((e) => e.event === 'built')
        .map((e) => e.target)
        .sort(),
    ).toEqual(exampleTargets)
    const tree = await snapshotTree(path.join(out, 'APNGKit.xcframework'))
    expect(tree['macos-arm64_x86_64/APNGKit.framework/Versions/Current']).toBe('link -> A')
    expect(tree['ios-arm64/APNGKit.framework/APNGKit']).toMatch(/^file 755 /)
    expect(tree['ios-arm64/dSYMs']).toBe('dir 755')

    const version = await fs.readFile(path.join(out, '.APNGKit.version'))
    const parsed = parseVersionFile(version)!
    expect(parsed.scipioKey).toBe(createHash('sha256').update(version).digest('hex'))
    expect(parsed.pin.version).toBe('2.3.0')
    expect(JSON.parse(version.toString()).dependencyCacheKeyChecksums[0].targetName).toBe('Delegate')

    await fs.writeFile(path.join(out, '.Logging.version'), '{}')
    await fs.writeFile(log, '')
    await runScipioDouble(args, env)
    const second = await readDoubleLog(log)
    expect(second.filter((e) => e.event === 'built').map((e) => e.target)).toEqual(['Logging'])
    expect(second.filter((e) => e.event === 'skipped')).toHaveLength(6)
    await fs.rm(ws, { recursive: true, force: true })
  })

  it("keys as Scipio 0.33 does: each dependency's checksum is the SHA-256 of its VersionFile, sorted, a bump cascades", async () => {
    const graph = await graphFixture('kingfisher-logging')
    const build = async (versions: Record<string, string>) => {
      const ws = await graphWorkspace(graph, versions)
      await runScipioDouble(['prepare', ws])
      const out = path.join(ws, 'XCFrameworks')
      const read = (target: string) => fs.readFile(path.join(out, `.${target}.version`))
      return { ws, read }
    }
    const before = await build({})
    const sha = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex')
    const apngkit = JSON.parse((await before.read('APNGKit')).toString()) as Record<string, unknown>
    expect(apngkit.dependencyCacheKeyChecksums).toEqual([
      { checksum: sha(await before.read('Delegate')), targetName: 'Delegate' },
      { checksum: sha(await before.read('OrderedCollections')), targetName: 'OrderedCollections' },
    ])
    // A leaf's VersionFile has no such field at all.
    expect((await before.read('Delegate')).toString()).not.toContain('dependencyCacheKeyChecksums')
    // Bumping swift-log changes Kingfisher's key, not its pin; nothing else moves.
    const after = await build({ 'swift-log': '1.6.2' })
    const changed: string[] = []
    for (const target of graphTargets(graph))
      if (!(await before.read(target)).equals(await after.read(target))) changed.push(target)
    expect(changed).toEqual(['Kingfisher', 'Logging'])
    expect(parseVersionFile(await after.read('Kingfisher'))!.pin).toEqual(
      parseVersionFile(await before.read('Kingfisher'))!.pin,
    )
    for (const ws of [before.ws, after.ws]) await fs.rm(ws, { recursive: true, force: true })
  })

  it('a target whose dependency has no key (not pinned) gets none either: built every time, no VersionFile', async () => {
    const graph = await graphFixture('kingfisher-logging')
    graph.packages.kingfisher!.targets[0]!.dependencies = ['Logging', 'RootTarget']
    const ws = await graphWorkspace(graph)
    const log = path.join(ws, 'double.log')
    for (let run = 0; run < 2; run++) await runScipioDouble(['prepare', ws], { SCIPIO_TEST_DOUBLE_LOG: log })
    const events = (await readDoubleLog(log)).filter((e) => e.target === 'Kingfisher').map((e) => e.event)
    expect(events).toEqual(['built', 'built'])
    const names = await fs.readdir(path.join(ws, 'XCFrameworks'))
    expect(names).toContain('Kingfisher.xcframework')
    expect(names).not.toContain('.Kingfisher.version')
    await fs.rm(ws, { recursive: true, force: true })
  })

  it('still writes the targets that succeeded when one fails, then exits non-zero', async () => {
    const ws = await exampleWorkspace()
    const out = await fs.mkdtemp(path.join(os.tmpdir(), 'out-'))
    await expect(
      runScipioDouble(['prepare', ws, '--output', out], { SCIPIO_TEST_DOUBLE_FAIL: 'Kingfisher' }),
    ).rejects.toMatchObject({ code: 1 })
    const names = await fs.readdir(out)
    expect(names).toContain('Logging.xcframework')
    expect(names).not.toContain('Kingfisher.xcframework')
    expect(names).not.toContain('.Kingfisher.version')
  })
})
