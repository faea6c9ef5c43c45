import type { DependencyKey, IndexEntry, PackageIndex } from '../bucket/cache-index.js'
import type { PackagePlan } from '../keys/keys.js'

/**
 * Which stored entry to restore for each target, as Scipio 0.33 will judge it: a target's key holds the keys of
 * its direct dependencies (`dependencyCacheKeyChecksums`), so an entry is worth downloading only when the keys it
 * was built against are the keys of the entries picked for those dependencies. Leaves first: a dependency's key
 * is known once an entry is picked for it (whether or not its download then succeeds: Scipio rebuilds a failed
 * one under the same key), or, when no index lists it at all and its package's pin did not move, from the key the
 * dependent recorded (Chooser.fits). A pure function of the parsed indexes, so any number of index sources compose.
 */

export interface IndexSource {
  pkg: PackagePlan
  index: PackageIndex
}

export interface PickedEntry {
  pkg: PackagePlan
  entry: IndexEntry
}

export interface DependencyMiss {
  pkg: PackagePlan
  /** The most recent entry of the target: what a restore that ignored dependencies would have downloaded. */
  entry: IndexEntry
  /** "its dependency Logging changed (swift-log 1.6.1 → 1.6.2)" */
  reason: string
  /** The change at the bottom of the cascade, shared by every target it made miss ("swift-log 1.6.1 → 1.6.2"). */
  cause: string
}

export interface Choice {
  picked: PickedEntry[]
  missed: DependencyMiss[]
}

type Decision =
  | { state: 'picked'; pkg: PackagePlan; entry: IndexEntry }
  /**
   * `via`: the direct dependency through which `cause` reached the target (absent: nothing lists the target, or a
   * cycle). `unlisted`: no index of this build lists the target at all.
   */
  | { state: 'missed'; cause: string; via?: string; unlisted?: true }
  | { state: 'waiting' }

const waiting: Decision = { state: 'waiting' }

function versionOf(pkg: PackagePlan): string {
  return pkg.pin.version ?? pkg.pin.revision?.slice(0, 10) ?? pkg.pin.branch ?? 'unpinned'
}

/** "swift-log 1.6.1 → 1.6.2", or what is known of the change when the stored side did not record its version. */
function changeOf(stored: DependencyKey, now: { pkg: PackagePlan }): string {
  const identity = now.pkg.pin.identity
  const to = versionOf(now.pkg)
  if (stored.version === undefined) return `${identity} is now ${to}`
  if (stored.version === to && (stored.package === undefined || stored.package === identity))
    return `${identity} ${to} built against other dependencies`
  const from = stored.package && stored.package !== identity ? `${stored.package} ${stored.version}` : stored.version
  return `${identity} ${from} → ${to}`
}

class Chooser {
  /** Each target name's entries, from the first source (in plan order) that lists it. */
  private readonly owners = new Map<string, { pkg: PackagePlan; entries: IndexEntry[] }>()
  private readonly decisions = new Map<string, Decision>()
  /** Packages of the build with an index among the sources. */
  private readonly indexed = new Set<string>()
  /**
   * The key taken for a dependency that no index lists (its package's index is lost) from the entry of a dependent
   * that recorded it: every later dependent must have been built against the same key.
   */
  private readonly assumed = new Map<string, string>()

  constructor(
    sources: readonly IndexSource[],
    /** Every source is in: a dependency none of them lists has no entry at all. */
    private readonly complete: boolean,
    /** Every package of the build, for the version a dependency's package has now when it has no index. */
    private readonly packages: readonly PackagePlan[],
  ) {
    for (const { pkg, index } of sources) {
      this.indexed.add(pkg.packageKey)
      const mine = new Map<string, IndexEntry[]>()
      for (const entry of index.targets) {
        if (this.owners.has(entry.targetName) && !mine.has(entry.targetName)) continue
        const list = mine.get(entry.targetName) ?? []
        list.push(entry)
        mine.set(entry.targetName, list)
      }
      for (const [name, entries] of mine) this.owners.set(name, { pkg, entries })
    }
  }

  targets(): string[] {
    return [...this.owners.keys()]
  }

  owner(name: string) {
    return this.owners.get(name)
  }

  decide(name: string, stack: readonly string[] = []): Decision {
    const known = this.decisions.get(name)
    if (known) return known
    const decision = this.decideNow(name, stack)
    if (decision.state !== 'waiting') this.decisions.set(name, decision)
    return decision
  }

  private decideNow(name: string, stack: readonly string[]): Decision {
    const owner = this.owners.get(name)
    if (!owner)
      return this.complete ? { state: 'missed', cause: `${name} is not in the cache`, unlisted: true } : waiting
    if (stack.includes(name)) return { state: 'missed', cause: `a dependency cycle at ${name}` }
    const withKeys = owner.entries.filter((e) => e.dependencyCacheKeyChecksums !== undefined)
    const names = new Set(withKeys.flatMap((e) => e.dependencyCacheKeyChecksums!.map((d) => d.targetName)))
    const deps = new Map<string, Decision>()
    for (const dep of names) deps.set(dep, this.decide(dep, [...stack, name]))
    if ([...deps.values()].some((d) => d.state === 'waiting')) return waiting
    const consistent = withKeys.find((e) =>
      e.dependencyCacheKeyChecksums!.every((d) => this.fits(d, deps.get(d.targetName)!)),
    )
    if (consistent) {
      for (const d of consistent.dependencyCacheKeyChecksums!)
        if (deps.get(d.targetName)!.state === 'missed') this.assumed.set(d.targetName, d.checksum)
      return { state: 'picked', pkg: owner.pkg, entry: consistent }
    }
    // Entries of releases that did not record dependency keys: chosen as before them, Scipio being the judge.
    const unknown = owner.entries.find((e) => e.dependencyCacheKeyChecksums === undefined)
    if (unknown) return { state: 'picked', pkg: owner.pkg, entry: unknown }
    return { state: 'missed', ...this.causeOf(withKeys[0]!, deps) }
  }

  /**
   * Whether an entry built against `stored` fits the dependency's decision: the key of the entry picked for it,
   * or, for a dependency that no index lists, the key the entry recorded when the dependency's package has no
   * index and its pin did not move (a producer stopped before writing that index, or it expired). Scipio then
   * builds the dependency under that same key, since the pin, the toolchain and the options (the dependent's
   * package key) are the ones the entry was built with; where that guess is wrong (a dependency of the dependency
   * moved, a tag was moved), Scipio computes another key for the dependent and rebuilds it: a lost index costs a
   * rebuild at worst, never a wrong binary.
   */
  private fits(stored: DependencyKey, dep: Decision): boolean {
    if (dep.state === 'picked') return dep.entry.scipioKey === stored.checksum
    if (dep.state !== 'missed' || !dep.unlisted) return false
    const now = this.packages.find((p) => p.pin.identity === stored.package)
    const unmoved = now !== undefined && stored.version !== undefined && stored.version === versionOf(now)
    const agreed = this.assumed.get(stored.targetName) ?? stored.checksum
    return unmoved && !this.indexed.has(now.packageKey) && agreed === stored.checksum
  }

  /** Why the most recent entry does not fit: its first dependency whose key differs, down to the root change. */
  private causeOf(entry: IndexEntry, deps: Map<string, Decision>): { cause: string; via: string } {
    for (const stored of entry.dependencyCacheKeyChecksums!) {
      const dep = deps.get(stored.targetName)!
      if (dep.state === 'picked' && dep.entry.scipioKey !== stored.checksum)
        return { cause: changeOf(stored, dep), via: stored.targetName }
      if (dep.state !== 'missed') continue
      if (dep.via !== undefined) return { cause: dep.cause, via: stored.targetName }
      // Nothing lists the dependency: its package has no index for the version this build has, if it moved.
      const now = this.packages.find((p) => p.pin.identity === stored.package)
      const moved = now && stored.version !== undefined && stored.version !== versionOf(now)
      return { cause: moved ? changeOf(stored, { pkg: now }) : dep.cause, via: stored.targetName }
    }
    return { cause: 'its dependencies changed', via: entry.dependencyCacheKeyChecksums![0]?.targetName ?? '' }
  }
}

function reasonOf(decision: Extract<Decision, { state: 'missed' }>): string {
  return decision.cause === `${decision.via} is not in the cache`
    ? `its dependency ${decision.via} is not in the cache`
    : `its dependency ${decision.via} changed (${decision.cause})`
}

/**
 * The entry to restore for each target the sources list, and the targets that must be built because no entry
 * fits the dependencies picked. With `complete` false more sources may come (later in plan order): a target
 * waiting for a dependency that no source lists yet is in neither list; every decision made is final.
 */
export function chooseEntries(
  sources: readonly IndexSource[],
  complete = true,
  packages: readonly PackagePlan[] = sources.map((s) => s.pkg),
): Choice {
  const chooser = new Chooser(sources, complete, packages)
  const picked: PickedEntry[] = []
  const missed: DependencyMiss[] = []
  for (const name of chooser.targets()) {
    const decision = chooser.decide(name)
    if (decision.state === 'picked') picked.push({ pkg: decision.pkg, entry: decision.entry })
    else if (decision.state === 'missed') {
      const owner = chooser.owner(name)!
      missed.push({
        pkg: owner.pkg,
        entry: owner.entries[0]!,
        reason: reasonOf(decision),
        cause: decision.cause,
      })
    }
  }
  return { picked, missed }
}
