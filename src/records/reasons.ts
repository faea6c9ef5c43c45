import type { Explanation, MissReason } from '../explain/explain.js'
import type { RestoredTarget, RestoreOutcome } from '../restore/outcome.js'
import type { MissReasonCode, RecordedMiss } from './record.js'

/**
 * A run's misses in the insights' words (records/record.ts `missReasons`), from what the restore and the
 * explanation already found (restore/restore.ts, restore/choose.ts, explain/explain.ts); nothing is asked again.
 *
 * - A package with no usable index takes its explanation's kind: no pin record → not produced yet (pin moved when
 *   the restore saw a dependent stored for the package's earlier version); stored for this pin with other inputs
 *   → Xcode changed when Xcode or clang differ, else inputs changed; stored with these exact inputs → expired (its
 *   index is gone), or unreadable when reading the index failed; no explanation → unreadable when the index read
 *   failed, else not produced yet (the command line's restore reads no pin records).
 * - A framework whose entry fits no dependency picked → dependency moved; whose archive is gone (404) → expired;
 *   anything else (damaged bytes, a fault, the time limit, a format this runner lacks) → unreadable.
 */

/** The packages whose own pin the restore saw move: a dependent's entry names their earlier version. */
function movedPackages(outcome: RestoreOutcome): Set<string> {
  const moved = new Set<string>()
  for (const t of outcome.targets) {
    // choose.ts spells a moved pin "<identity> <from> → <to>" or "<identity> is now <to>".
    const m = t.cause ? /^(\S+) (?:.+ → |is now )/.exec(t.cause) : null
    if (m) moved.add(m[1]!)
  }
  return moved
}

/** Whether reading the package's index failed (a fault, not a 404): restore.ts notes it as `<identity>: …`. */
function indexUnreadable(outcome: RestoreOutcome, identity: string): boolean {
  return outcome.problems.some((p) => p.startsWith(`${identity}: `))
}

export function packageReason(
  identity: string,
  outcome: RestoreOutcome,
  explained: MissReason | undefined,
  moved: ReadonlySet<string>,
): MissReasonCode {
  switch (explained?.kind) {
    case 'not-stored':
      return moved.has(identity) ? 'pin-moved' : 'not-produced-yet'
    case 'inputs-differ':
      return explained.xcodeChanged ? 'xcode-changed' : 'inputs-changed'
    case 'index-lost':
      return indexUnreadable(outcome, identity) ? 'unreadable' : 'expired'
    case 'unexplained':
      return 'unreadable'
    default:
      if (indexUnreadable(outcome, identity)) return 'unreadable'
      return moved.has(identity) ? 'pin-moved' : 'not-produced-yet'
  }
}

export function targetReason(target: RestoredTarget): MissReasonCode {
  if (target.cause !== undefined) return 'dependency-moved'
  if (target.miss === 'absent') return 'expired'
  return 'unreadable'
}

/** Every miss of a restore, packages first, each list by name. */
export function classifyMisses(outcome: RestoreOutcome, explanation: Explanation | undefined): RecordedMiss[] {
  const moved = movedPackages(outcome)
  const byPackage = new Map(
    (explanation?.reasons ?? []).filter((r) => r.kind !== 'targets').map((r) => [r.package, r] as const),
  )
  const packages = [...outcome.packagesMissing].sort().map((identity) => ({
    package: identity,
    reason: packageReason(identity, outcome, byPackage.get(identity), moved),
  }))
  const targets = outcome.targets
    .filter((t) => t.result === 'missed')
    .sort((a, b) => (a.targetName < b.targetName ? -1 : a.targetName > b.targetName ? 1 : 0))
    .map((t) => ({ target: t.targetName, reason: targetReason(t) }))
  return [...packages, ...targets]
}

/** How many misses each reason has. */
export function countReasons(misses: readonly RecordedMiss[]): Partial<Record<MissReasonCode, number>> {
  const out: Partial<Record<MissReasonCode, number>> = {}
  for (const m of misses) out[m.reason] = (out[m.reason] ?? 0) + 1
  return out
}
