import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  ambiguityWarning,
  attribute,
  declaredTargets,
  targetsDeclaredIn,
  type Evidence,
} from '../src/save/attribution.js'
import type { IndexEntry, PackageIndex } from '../src/bucket/cache-index.js'
import type { LocalFramework } from '../src/keys/frameworks.js'
import type { KeyPlan, PackagePlan } from '../src/keys/keys.js'
import type { Log } from '../src/log.js'
import type { Pin } from '../src/keys/resolved.js'
import { onePerFramework } from '../src/restore/claims.js'

function plan(pins: Pin[]): KeyPlan {
  return {
    packages: pins.map((pin, i) => ({ pin, packageKey: `k${i}`, indexKey: `i${i}` })),
    setKey: 's',
    completeKey: 'c',
  }
}

const registry = (identity: string, version: string): Pin => ({ identity, kind: 'registry', location: '', version })
const scm = (identity: string, revision: string): Pin => ({
  identity,
  kind: 'remoteSourceControl',
  location: `https://example.com/${identity}.git`,
  revision,
})

function framework(targetName: string, pin: LocalFramework['pin']): LocalFramework {
  return { targetName, scipioKey: 'f'.repeat(64), pin, identity: '' }
}

function evidence(declared: Record<string, string[]> = {}, previous: Record<string, string[]> = {}): Evidence {
  return {
    declared: async () => new Map(Object.entries(declared).map(([k, v]) => [k, new Set(v)])),
    previousIndex: async (pkg: PackagePlan) =>
      previous[pkg.pin.identity]
        ? ({ targets: previous[pkg.pin.identity]!.map((targetName) => ({ targetName })) } as PackageIndex)
        : undefined,
  }
}

describe('attribution', () => {
  const shared = plan([registry('a.one', '1.1.0'), registry('b.two', '1.1.0'), scm('c', 'r1')])

  it('gives a framework the one pin that matches it', async () => {
    const result = await attribute([framework('C', { revision: 'r1' })], shared, evidence())
    expect(result.owners.get('C')?.pin.identity).toBe('c')
  })

  it('tells registry pins sharing a version apart by the targets their manifests declare', async () => {
    const result = await attribute(
      [framework('One', { version: '1.1.0' }), framework('Two', { version: '1.1.0' })],
      shared,
      evidence({ 'a.one': ['One'], 'b.two': ['Two'] }),
    )
    expect(result.owners.get('One')?.pin.identity).toBe('a.one')
    expect(result.owners.get('Two')?.pin.identity).toBe('b.two')
    expect(result.ambiguous).toEqual([])
  })

  it('falls back to the index already in the cache', async () => {
    const result = await attribute([framework('Two', { version: '1.1.0' })], shared, evidence({}, { 'b.two': ['Two'] }))
    expect(result.owners.get('Two')?.pin.identity).toBe('b.two')
  })

  it('indexes a framework under no package when nothing tells, and names both pins', async () => {
    // An index written by the old attribution listed it under both: that is no evidence either.
    const result = await attribute(
      [framework('One', { version: '1.1.0' })],
      shared,
      evidence({}, { 'a.one': ['One'], 'b.two': ['One'] }),
    )
    expect(result.owners.size).toBe(0)
    expect(result.ambiguous.map((a) => a.targetName)).toEqual(['One'])
    expect(ambiguityWarning(result.ambiguous[0]!)).toMatch(
      /One is not uploaded.*a\.one \(version 1\.1\.0\) and b\.two \(version 1\.1\.0\)/,
    )
  })

  it('leaves frameworks no pin accounts for unmatched', async () => {
    const result = await attribute([framework('Local', { revision: 'zzz' })], shared, evidence())
    expect(result.unmatched).toEqual(['Local'])
  })

  it('reads declared targets from SwiftPM workspace state (checkouts and registry downloads)', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'attribution-'))
    const write = async (rel: string, text: string) => {
      await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true })
      await fs.writeFile(path.join(dir, rel), text)
    }
    await write(
      '.build/checkouts/swift-log/Package.swift',
      'let package = Package(name: "swift-log", targets: [.target(name: "Logging"), .testTarget(name: "LoggingTests")])',
    )
    await write(
      '.build/registry/downloads/Alamofire/Alamofire/5.10.2/Package@swift-5.9.swift',
      'targets: [ .target(\n name: "Alamofire", path: "Source")]',
    )
    await write('.build/checkouts/evil/Package.swift', '.target(name: "Evil")')
    await write(
      '.build/workspace-state.json',
      JSON.stringify({
        object: {
          dependencies: [
            { packageRef: { identity: 'swift-log' }, state: { name: 'sourceControlCheckout' }, subpath: 'swift-log' },
            {
              packageRef: { identity: 'Alamofire.Alamofire' },
              state: { name: 'registryDownload', version: '5.10.2' },
              subpath: 'Alamofire/Alamofire/5.10.2',
            },
            {
              packageRef: { identity: 'evil' },
              state: { name: 'sourceControlCheckout' },
              subpath: '../checkouts/evil',
            },
            { packageRef: { identity: 'local' }, state: { name: 'fileSystem', path: '/x' }, subpath: 'local' },
          ],
        },
        version: 6,
      }),
    )
    const declared = await declaredTargets(dir)
    expect([...declared.keys()].sort()).toEqual(['alamofire.alamofire', 'swift-log'])
    expect([...declared.get('swift-log')!]).toEqual(['Logging'])
    expect([...declared.get('alamofire.alamofire')!]).toEqual(['Alamofire'])
    expect(await declaredTargets(path.join(dir, 'nowhere'))).toEqual(new Map())
    expect(targetsDeclaredIn('.binaryTarget(name: "Bin", url: "x"), .systemLibrary(name: "CZlib")')).toEqual(
      new Set(['Bin', 'CZlib']),
    )
  })
})

describe('one restore job per framework', () => {
  const warnings: string[] = []
  const log = { warning: (m: string) => warnings.push(m) } as unknown as Log
  const pkg = (identity: string) => ({ pin: scm(identity, 'r'), packageKey: identity, indexKey: identity })
  const entry = (targetName: string, key: string) =>
    ({
      targetName,
      scipioKey: key.repeat(64),
      format: 'tar.zst',
      key: `${targetName}/${key}`,
      size: 1,
      sha256: '0'.repeat(64),
    }) as IndexEntry

  it('keeps one job for a framework two indexes list, silently when they agree', () => {
    warnings.length = 0
    const jobs = onePerFramework(
      [
        { pkg: pkg('a'), entry: entry('X', 'a') },
        { pkg: pkg('b'), entry: entry('X', 'a') },
        { pkg: pkg('b'), entry: entry('Y', 'b') },
      ],
      log,
    )
    expect(jobs.map((j) => `${j.pkg.pin.identity}:${j.entry.targetName}`)).toEqual(['a:X', 'b:Y'])
    expect(warnings).toEqual([])
  })

  it('keeps the first of two different builds of one folder (also two target names Scipio spells alike) and says so', () => {
    warnings.length = 0
    const jobs = onePerFramework(
      [
        { pkg: pkg('a'), entry: entry('X-Y', 'a') },
        { pkg: pkg('b'), entry: entry('X_Y', 'b') },
      ],
      log,
    )
    expect(jobs).toHaveLength(1)
    expect(jobs[0]!.pkg.pin.identity).toBe('a')
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/X_Y\.xcframework is listed by the cache indexes of a .* and b/)
  })
})
