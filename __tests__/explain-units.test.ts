import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { perTargetBuildMs } from '../src/bucket/build-time.js'
import { avoidedBuildText, formatDuration } from '../src/report/time-saved.js'
import { newIndex, parseIndex, sameTargets, type IndexEntry } from '../src/bucket/cache-index.js'
import {
  differences,
  explainPackage,
  groupLine,
  groupReasons,
  nothingHitWarning,
  type Explanation,
} from '../src/explain/explain.js'
import { sha256Hex, type PackagePlan } from '../src/keys/keys.js'
import { archiveObjectKey } from '../src/bucket/layout.js'
import {
  describeKeyInputs,
  parsePinRecord,
  pinRecordLimits,
  publicLocation,
  withEntry,
  type KeyDescription,
  type PinRecord,
} from '../src/bucket/pin-record.js'
import type { Pin } from '../src/keys/resolved.js'
import type { RestoreOutcome, RestoredTarget } from '../src/restore/outcome.js'
import { getJson, type Storage } from '../src/storage/index.js'
import type { Toolchain } from '../src/keys/toolchain.js'
import { releaseBuild, xcode162Toolchain } from '../__fixtures__/keys.js'

const pin: Pin = {
  identity: 'swift-collections',
  kind: 'remoteSourceControl',
  location: 'https://github.com/apple/swift-collections.git',
  revision: 'a'.repeat(40),
  version: '1.1.4',
}
const build = releaseBuild
const toolchain: Toolchain = { ...xcode162Toolchain, scipioSha256: 'b'.repeat(64), scipioPath: '/x/scipio' }
const now = describeKeyInputs(pin, build, toolchain, '')
const pkg: PackagePlan = { pin, packageKey: 'c'.repeat(64), indexKey: 'k' }

function record(entries: unknown[]): unknown {
  return {
    schema: 'scipio-s3-cache/pin-record/v1',
    pin: { identity: pin.identity, revision: pin.revision, version: pin.version },
    entries,
  }
}
const entry = (description: KeyDescription, packageKey = 'd'.repeat(64), storedAt = '2026-11-01T00:00:00.000Z') => ({
  packageKey,
  storedAt,
  description,
})

describe('pin records', () => {
  it('describe a key without the salt, the extra arguments or credentials in the package URL', () => {
    const secretPin = {
      ...pin,
      location: 'https://x-access-token:ghp_SECRET@github.com/org/private.git?token=abc#frag',
    }
    const d = describeKeyInputs(secretPin, { ...build, extraArgs: ['--token', 'hunter2'] }, toolchain, 'my-salt')
    const text = JSON.stringify(d)
    for (const secret of ['ghp_SECRET', 'x-access-token', 'token=abc', 'hunter2', 'my-salt'])
      expect(text).not.toContain(secret)
    expect(d.location).toBe('https://github.com/org/private.git')
    expect(d.saltSha256).toBe(sha256Hex('my-salt'))
    expect(publicLocation('git@github.com:org/repo.git')).toBe('git@github.com:org/repo.git')
  })

  it('parse a record of this pin and refuse one of another pin, format or shape', () => {
    expect(parsePinRecord(record([entry(now)]), pin).entries).toHaveLength(1)
    expect(() => parsePinRecord({ ...(record([]) as object), schema: 'other' }, pin)).toThrow(/format/)
    expect(() => parsePinRecord(record([entry(now)]), { ...pin, version: '1.1.5' })).toThrow(/another pin/)
    expect(() => parsePinRecord({ ...(record([]) as object), entries: 'many' }, pin)).toThrow(/not a list/)
    expect(() => parsePinRecord(record([{ packageKey: 7 }]), pin)).toThrow(/none of its entries/)
  })

  it('skip entries with wrong types or control characters, and read at most the bound', () => {
    const injected = entry({ ...now, xcodeVersion: '16.2\n::error::x' }, 'e'.repeat(64))
    const wrongType = { ...entry(now, 'f'.repeat(64)), description: { ...now, supportSimulators: 'yes' } }
    const quoted = entry({ ...now, location: "https://x/'$(id)'.git" }, '9'.repeat(64))
    const parsed = parsePinRecord(record([injected, wrongType, quoted, entry(now)]), pin)
    expect(parsed.entries.map((e) => e.packageKey)).toEqual(['d'.repeat(64)])
    const many = Array.from({ length: 50 }, (_, i) => entry(now, i.toString(16).padStart(64, '0')))
    expect(parsePinRecord(record(many), pin).entries).toHaveLength(pinRecordLimits.entries)
  })

  it('gain an entry only when something changed, newest first, bounded', () => {
    const first = withEntry(undefined, pin, 'a'.repeat(64), now, new Date('2026-11-01T00:00:00Z'))!
    expect(first.entries).toHaveLength(1)
    expect(withEntry(first, pin, 'a'.repeat(64), now, new Date('2026-11-02T00:00:00Z'))).toBeUndefined()
    let r: PinRecord = first
    for (let i = 0; i < 12; i++)
      r = withEntry(
        r,
        pin,
        i.toString(16).padStart(64, '1'),
        { ...now, xcodeVersion: `17.${i}` },
        new Date(Date.UTC(2026, 11, i + 2)),
      )!
    expect(r.entries).toHaveLength(pinRecordLimits.entries)
    expect(r.entries[0]!.description.xcodeVersion).toBe('17.11')
  })

  it('are refused unparsed when larger than the bound', async () => {
    let read = false
    const body = new Readable({
      read() {
        read = true
        this.push(null)
      },
    })
    const storage = { get: async () => ({ body, size: pinRecordLimits.bytes + 1 }) } as unknown as Storage
    await expect(getJson(storage, 'k', undefined, pinRecordLimits.bytes)).rejects.toThrow(/larger than 65536 bytes/)
    expect(read).toBe(false)
  })
})

describe('reasons', () => {
  it('name each differing input with both values', () => {
    expect(
      differences({ ...now, xcodeVersion: '16.4', xcodeBuildVersion: '16F6', clangVersion: 'clang-1700' }, now),
    ).toEqual([
      'stored for Xcode 16.4 (16F6), this runner has Xcode 16.2 (16C5032a): select Xcode 16.4 or run a producer with 16.2',
    ])
    expect(differences({ ...now, xcodeBuildVersion: '16C5031c' }, now)[0]).toContain(
      'select Xcode 16.2 (16C5031c) or run a producer with 16.2 (16C5032a)',
    )
    expect(differences({ ...now, clangVersion: 'clang-1600.0.30' }, now)[0]).toMatch(
      /^stored with clang-1600.0.30, this runner has clang-1600.0.26.6/,
    )
    expect(differences({ ...now, configuration: 'debug', libraryEvolution: true }, now)).toEqual([
      'stored with configuration debug, this run asks for release',
      'stored with library-evolution true, this run asks for false',
    ])
    expect(differences({ ...now, scipioSha256: 'e'.repeat(64) }, now)[0]).toContain(
      'another Scipio binary (SHA-256 eeeeeeeeeeee), this run uses bbbbbbbbbbbb',
    )
    expect(differences({ ...now, saltSha256: sha256Hex('x') }, now)).toEqual([
      'stored with a key-salt, this run sets none',
    ])
    expect(differences(now, { ...now, saltSha256: sha256Hex('x') })).toEqual([
      'stored without a key-salt, this run sets one',
    ])
    expect(differences({ ...now, extraArgsSha256: 'e'.repeat(64) }, now)).toEqual([
      'stored with other extra-args (the record keeps only their SHA-256)',
    ])
    expect(differences(now, now)).toEqual([])
  })

  it('compare with the closest entry, and tell a lost index from a pin never stored', () => {
    const far = entry(
      { ...now, xcodeVersion: '15.4', configuration: 'debug' },
      'd'.repeat(64),
      '2026-11-05T00:00:00.000Z',
    )
    const near = entry({ ...now, configuration: 'debug' }, 'e'.repeat(64), '2026-10-01T00:00:00.000Z')
    const found = { state: 'found' as const, record: parsePinRecord(record([far, near]), pin) }
    expect(explainPackage(pkg, found, now)).toMatchObject({
      kind: 'inputs-differ',
      text: 'stored with configuration debug, this run asks for release',
    })
    expect(explainPackage(pkg, { state: 'absent' }, now)).toMatchObject({
      kind: 'not-stored',
      label: 'swift-collections 1.1.4',
    })
    const own = { state: 'found' as const, record: parsePinRecord(record([entry(now, pkg.packageKey)]), pin) }
    expect(explainPackage(pkg, own, now).kind).toBe('index-lost')
    expect(explainPackage(pkg, { state: 'unusable', problem: 'x' }, now).kind).toBe('unexplained')
  })

  it('group identical reasons, largest group first', () => {
    const r = (p: string, text: string) => ({ package: p, label: p, kind: 'inputs-differ' as const, text })
    const groups = groupReasons([r('a', 'X'), r('b', 'Y'), r('c', 'X')])
    expect(groups.map((g) => groupLine(g, 3))).toEqual(['2 packages (a, c): X', 'b: Y'])
    expect(groupLine(groupReasons([r('a', 'X'), r('b', 'X')])[0]!, 2)).toBe('all 2 packages: X')
  })

  it('warn loudly only when nothing came from a cache that answered', () => {
    const missed: RestoredTarget = { targetName: 'A', package: 'a', result: 'missed', bytes: 0, ms: 0 }
    const outcome = (targets: RestoredTarget[]): RestoreOutcome => ({
      indexes: new Map(),
      packagesMissing: ['a'],
      targets,
      complete: false,
      problems: [],
    })
    const why = (kind: 'not-stored' | 'inputs-differ', cacheAnswered = true): Explanation => ({
      cacheAnswered,
      reasons: [{ package: 'a', label: 'a 1.0', kind, text: 'T' }],
    })
    const needed = { count: 3, what: 'frameworks built' }
    expect(nothingHitWarning(outcome([missed]), why('inputs-differ'), 1, needed, false)).toContain(
      'Nothing came from the cache (3 frameworks built)',
    )
    expect(
      nothingHitWarning(outcome([{ ...missed, result: 'restored' }]), why('inputs-differ'), 1, needed, false),
    ).toBeUndefined()
    expect(nothingHitWarning(outcome([missed]), why('inputs-differ', false), 1, needed, false)).toBeUndefined()
    expect(nothingHitWarning(outcome([missed]), why('not-stored'), 1, needed, true)).toBeUndefined()
    expect(
      nothingHitWarning(
        { ...outcome([missed]), problems: ['a: not valid JSON'] },
        why('inputs-differ'),
        1,
        needed,
        false,
      ),
    ).toBeUndefined()
    expect(nothingHitWarning(outcome([missed]), why('not-stored'), 1, needed, false)).toContain('T')
  })
})

describe('build time per target', () => {
  const entryOf = (targetName: string, buildMs?: unknown) => ({
    targetName,
    scipioKey: '1'.repeat(64),
    format: 'tar.zst',
    key: archiveObjectKey('p', targetName, '1'.repeat(64), 'tar.zst'),
    size: 10,
    sha256: '2'.repeat(64),
    ...(buildMs === undefined ? {} : { buildMs }),
  })
  const index = (targets: unknown[]) => ({ schema: 'scipio-s3-cache/index/v1', packageKey: '3'.repeat(64), targets })

  it('is optional in an index, a bad value is dropped, and it never makes an index differ', () => {
    const parsed = parseIndex(
      index([entryOf('A', 1200), entryOf('B'), entryOf('C', -5), entryOf('D', 'x')]),
      'p',
      '3'.repeat(64),
    )
    expect(parsed.targets.map((t) => t.buildMs)).toEqual([1200, undefined, undefined, undefined])
    const without = parseIndex(index([entryOf('A')]), 'p', '3'.repeat(64))
    expect(
      sameTargets(without, newIndex('3'.repeat(64), pin, [{ ...without.targets[0]!, buildMs: 99 }], new Date())),
    ).toBe(true)
  })

  it('divides the build among the targets built, and a consumer adds up what it restored', () => {
    expect([...perTargetBuildMs(['A', 'B', 'C'], 90_000)]).toEqual([
      ['A', 30_000],
      ['B', 30_000],
      ['C', 30_000],
    ])
    expect(perTargetBuildMs([], 5).size).toBe(0)
    const t = (name: string, buildMs?: number): RestoredTarget => ({
      targetName: name,
      package: 'p',
      result: 'restored',
      bytes: 1,
      ms: 1,
      ...(buildMs === undefined ? {} : { entry: { ...(entryOf(name) as IndexEntry), buildMs } }),
    })
    const outcome: RestoreOutcome = {
      indexes: new Map(),
      packagesMissing: [],
      complete: true,
      problems: [],
      targets: [t('A', 1_200_000), t('B', 1_080_000), t('C')],
    }
    expect(avoidedBuildText(outcome, 21_000)).toBe(
      "3 frameworks restored in 21 s instead of about 38 min of Scipio builds (the producer's measurement: its Scipio build time divided among the targets it built; 1 restored frameworks have no recorded build time and are not counted).",
    )
    expect(avoidedBuildText({ ...outcome, targets: [t('C')] }, 1)).toBeUndefined()
    expect([400, 65_000, 3_900_000, 7_500_000].map(formatDuration)).toEqual(['0.4 s', '65 s', '65 min', '2 h 5 min'])
  })
})
