import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  indexDocument,
  listsAll,
  MaxContextsPerTarget,
  mergeIndex,
  newIndex,
  parseIndex,
  type DependencyKey,
  type IndexEntry,
  type PackageIndex,
} from '../src/bucket/cache-index.js'
import { contentObjectKey } from '../src/bucket/layout.js'
import { Formats } from '../src/constants.js'
import type { PackagePlan } from '../src/keys/keys.js'
import { layerIndexes } from '../src/bucket/layers.js'
import { chooseEntries, type IndexSource } from '../src/restore/choose.js'
import { root } from './helpers/s3-server.js'

/**
 * The dependency-aware choice (issue 24): which stored entry each target restores, given the keys of the
 * entries picked for its dependencies; and the package index keeping several dependency contexts per target.
 */

const prefix = 'p'
const sha = (text: string) => createHash('sha256').update(text).digest('hex')
const now = new Date('2026-01-01T00:00:00Z')

function pkg(identity: string, version: string): PackagePlan {
  const revision = createHash('sha1').update(`${identity}@${version}`).digest('hex')
  return {
    pin: { identity, kind: 'remoteSourceControl', location: `https://example.com/${identity}`, revision, version },
    packageKey: sha(`${identity}@${version}`),
    indexKey: `p/.scipio-s3-cache/packages/${sha(`${identity}@${version}`)}.json`,
  }
}

/** An entry whose Scipio key stands for `label` (a target built in one context). */
function entry(targetName: string, label: string, dependencies?: DependencyKey[]): IndexEntry {
  const scipioKey = sha(label)
  const bytes = sha(`${label} bytes`)
  return {
    targetName,
    scipioKey,
    format: 'tar.zst',
    key: contentObjectKey(prefix, targetName, scipioKey, bytes, 'tar.zst'),
    size: 100,
    sha256: bytes,
    ...(dependencies ? { dependencyCacheKeyChecksums: dependencies } : {}),
  }
}

const dep = (target: IndexEntry, identity: string, version: string): DependencyKey => ({
  targetName: target.targetName,
  checksum: target.scipioKey,
  package: identity,
  version,
})

function source(plan: PackagePlan, targets: IndexEntry[]): IndexSource {
  const index = newIndex(plan.packageKey, plan.pin, [], now)
  return { pkg: plan, index: { ...index, targets } }
}

const log161 = pkg('swift-log', '1.6.1')
const log162 = pkg('swift-log', '1.6.2')
const kingfisher = pkg('kingfisher', '8.1.3')
const logging161 = entry('Logging', 'Logging 1.6.1', [])
const logging162 = entry('Logging', 'Logging 1.6.2', [])
const kfOn161 = entry('Kingfisher', 'Kingfisher on 1.6.1', [dep(logging161, 'swift-log', '1.6.1')])
const kfOn162 = entry('Kingfisher', 'Kingfisher on 1.6.2', [dep(logging162, 'swift-log', '1.6.2')])
const picked = (sources: IndexSource[], complete = true) =>
  chooseEntries(sources, complete)
    .picked.map((p) => p.entry.scipioKey)
    .sort()

describe('chooseEntries', () => {
  it("over a scope's index layered on the shared one: the scope's entry where it fits, else the shared cache's context", () => {
    const shared = source(kingfisher, [kfOn161]).index
    const logs = source(log161, [logging161])
    // The pull request's scope stored Kingfisher built against swift-log 1.6.2; this run is back on 1.6.1.
    const scope = { ...shared, targets: [kfOn162] }
    const layered = layerIndexes([scope, shared])!
    expect(layered.targets.map((t) => t.scipioKey)).toEqual([kfOn162.scipioKey, kfOn161.scipioKey])
    expect(picked([logs, { pkg: kingfisher, index: layered }])).toEqual(
      [logging161.scipioKey, kfOn161.scipioKey].sort(),
    )
    // Both fit: the scope's comes first and wins; an archive listed in both layers is kept once.
    const both = layerIndexes([{ ...shared, targets: [kfOn161] }, shared])!
    expect(both.targets).toEqual([kfOn161])
  })

  it('picks, per target, the entry built against the entries picked for its dependencies, whatever their order', () => {
    // The most recent context (first) is 1.6.2's; this build has 1.6.1.
    const sources = [source(kingfisher, [kfOn162, kfOn161]), source(log161, [logging161])]
    expect(picked(sources)).toEqual([kfOn161.scipioKey, logging161.scipioKey].sort())
    expect(chooseEntries(sources).missed).toEqual([])
  })

  it('a dependent whose dependency changed is a miss without a download, naming the dependency and how', () => {
    const choice = chooseEntries([source(kingfisher, [kfOn161]), source(log162, [logging162])])
    expect(choice.picked.map((p) => p.entry.targetName)).toEqual(['Logging'])
    expect(choice.missed).toEqual([
      expect.objectContaining({
        reason: 'its dependency Logging changed (swift-log 1.6.1 → 1.6.2)',
        cause: 'swift-log 1.6.1 → 1.6.2',
      }),
    ])
  })

  it('a dependency whose package has no index: the dependent misses when the package moved, with the move', () => {
    const moved = chooseEntries([source(kingfisher, [kfOn161])], true, [kingfisher, log162])
    expect(moved.missed.map((m) => m.reason)).toEqual(['its dependency Logging changed (swift-log 1.6.1 → 1.6.2)'])
  })

  it('a lost index whose pin did not move costs only its own build: the dependent is judged by its recorded key', () => {
    // swift-log 1.6.1's index is lost (a producer stopped before writing it, or it expired); this build has 1.6.1.
    const lost = chooseEntries([source(kingfisher, [kfOn162, kfOn161])], true, [kingfisher, log161])
    expect(lost.picked.map((p) => p.entry)).toEqual([kfOn161])
    expect(lost.missed).toEqual([])
    // An entry that does not say which package and version it was built against is not guessed at.
    const unlabelled = { targetName: 'Logging', checksum: logging161.scipioKey }
    const old = entry('Kingfisher', 'Kingfisher, unlabelled', [unlabelled])
    const unknown = chooseEntries([source(kingfisher, [old])], true, [kingfisher, log161])
    expect(unknown.missed.map((m) => m.reason)).toEqual(['its dependency Logging is not in the cache'])
    // The package has an index that lacks the target: no guess either.
    const lacking = chooseEntries([source(kingfisher, [kfOn161]), source(log161, [])], true, [kingfisher, log161])
    expect(lacking.missed.map((m) => m.reason)).toEqual(['its dependency Logging is not in the cache'])
  })

  it('dependents of a lost index agree on one key for it: a second key for the same dependency is not guessed', () => {
    const ui = pkg('logging-ui', '1.0.0')
    const otherLogging = { ...dep(logging161, 'swift-log', '1.6.1'), checksum: sha('Logging 1.6.1, another build') }
    const uiOnOther = entry('LoggingUI', 'LoggingUI on another Logging', [otherLogging])
    const choice = chooseEntries([source(kingfisher, [kfOn161]), source(ui, [uiOnOther])], true, [
      kingfisher,
      log161,
      ui,
    ])
    expect(choice.picked.map((p) => p.entry.targetName)).toEqual(['Kingfisher'])
    expect(choice.missed.map((m) => [m.entry.targetName, m.reason])).toEqual([
      ['LoggingUI', 'its dependency Logging is not in the cache'],
    ])
  })

  it('the cascade reaches dependents of dependents, each naming its own dependency and the root change', () => {
    const ui = pkg('logging-ui', '1.0.0')
    const uiOn161 = entry('LoggingUI', 'LoggingUI on KF on 1.6.1', [dep(kfOn161, 'kingfisher', '8.1.3')])
    const choice = chooseEntries([source(kingfisher, [kfOn161]), source(log162, [logging162]), source(ui, [uiOn161])])
    expect(choice.missed.map((m) => [m.entry.targetName, m.reason, m.cause])).toEqual([
      ['Kingfisher', 'its dependency Logging changed (swift-log 1.6.1 → 1.6.2)', 'swift-log 1.6.1 → 1.6.2'],
      ['LoggingUI', 'its dependency Kingfisher changed (swift-log 1.6.1 → 1.6.2)', 'swift-log 1.6.1 → 1.6.2'],
    ])
  })

  it('an entry of an older release (no dependency keys) is picked only when no entry with keys fits', () => {
    const old = entry('Kingfisher', 'Kingfisher, old release')
    expect(picked([source(kingfisher, [old]), source(log162, [logging162])])).toContain(old.scipioKey)
    expect(picked([source(kingfisher, [old, kfOn162]), source(log162, [logging162])])).toContain(kfOn162.scipioKey)
  })

  it('with indexes still to come, a target waits for a dependency none lists yet; decisions made are final', () => {
    const partial = chooseEntries([source(kingfisher, [kfOn161, kfOn162])], false)
    expect(partial).toEqual({ picked: [], missed: [] })
    const leaf = chooseEntries([source(log162, [logging162])], false)
    expect(leaf.picked.map((p) => p.entry)).toEqual([logging162])
  })

  it('the first package (in Package.resolved order) that lists a target owns it', () => {
    const other = pkg('fork-of-swift-log', '9.9.9')
    const forked = entry('Logging', 'Logging fork', [])
    expect(picked([source(log161, [logging161]), source(other, [forked])])).toEqual([logging161.scipioKey])
  })
})

describe('several dependency contexts per target in a package index', () => {
  const ours = (e: IndexEntry) => newIndex(kingfisher.packageKey, kingfisher.pin, [e], now)
  const contexts = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      entry('Kingfisher', `Kingfisher on Logging ${i}`, [
        { targetName: 'Logging', checksum: sha(`Logging ${i}`), package: 'swift-log', version: `1.6.${i}` },
      ]),
    )

  it("a producer's merge keeps the other contexts' entries, its own first, at most MaxContextsPerTarget", () => {
    const [a, b, c, d, e] = contexts(5)
    let stored: PackageIndex | undefined
    for (const next of [a!, b!, c!, d!, e!]) stored = mergeIndex(stored, ours(next)) ?? stored
    expect(stored!.targets.map((t) => t.scipioKey)).toEqual([e, d, c, b].map((t) => t!.scipioKey))
    expect(MaxContextsPerTarget).toBe(4)
    // A context already stored needs no write.
    expect(mergeIndex(stored, ours(c!))).toBeUndefined()
  })

  it('the stored form keeps one entry per target in `targets` (what earlier releases read), the rest in `contexts`', () => {
    const [a, b] = contexts(2)
    const merged = mergeIndex(mergeIndex(undefined, ours(a!)), ours(b!))!
    const document = JSON.parse(JSON.stringify(indexDocument(merged))) as Record<string, IndexEntry[]>
    expect(document.targets!.map((t) => t.scipioKey)).toEqual([b!.scipioKey])
    expect(document.contexts!.map((t) => t.scipioKey)).toEqual([a!.scipioKey])
    const read = parseIndex({ ...document, schema: Formats.index }, prefix, kingfisher.packageKey)
    expect(read.targets).toEqual(merged.targets)
  })

  it('an entry of an older release gains the dependency keys once, from a producer with the same key', () => {
    const [a] = contexts(1)
    const { dependencyCacheKeyChecksums, ...old } = a!
    const stored = mergeIndex(undefined, ours(old))!
    expect(listsAll(stored, [a!])).toBe(false)
    const merged = mergeIndex(stored, ours(a!))!
    expect(merged.targets).toEqual([{ ...old, dependencyCacheKeyChecksums }])
  })

  it('docs/how-it-works.md states the bound the merge keeps', () => {
    const page = fs.readFileSync(path.join(root, 'docs/how-it-works.md'), 'utf8').replace(/\s+/g, ' ')
    expect(page).toContain(`A package index keeps up to ${MaxContextsPerTarget} entries per target`)
    expect(page).toContain(`up to ${MaxContextsPerTarget} per target`)
  })
})
