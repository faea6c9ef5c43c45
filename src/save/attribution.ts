import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import type { PackageIndex } from '../bucket/cache-index.js'
import type { LocalFramework } from '../keys/frameworks.js'
import { isRecord } from '../json.js'
import type { KeyPlan, PackagePlan } from '../keys/keys.js'

/**
 * Which package a built framework belongs to. A VersionFile names its pin (revision, version) but not its
 * package, so two pins can claim one framework: registry pins (a version, no revision) that share a version,
 * or two identities pinned at one revision (a fork and its origin, one repository under two URLs). A framework
 * is indexed under one package only; where nothing tells which, it is not indexed at all.
 */

/** The pins whose state matches the framework's VersionFile: usually one, sometimes several. */
export function pinCandidates(framework: LocalFramework, plan: KeyPlan): PackagePlan[] {
  const { revision, version } = framework.pin
  if (revision) return plan.packages.filter((p) => p.pin.revision === revision)
  if (version) return plan.packages.filter((p) => !p.pin.revision && p.pin.version === version)
  return []
}

const targetDeclaration =
  /\.(?:target|executableTarget|binaryTarget|systemLibrary|macro)\s*\(\s*name\s*:\s*"((?:[^"\\]|\\.)+)"/g

/** Target names a manifest declares with a string literal (`.target(name: "X"`): what a text can tell. */
export function targetsDeclaredIn(manifest: string): Set<string> {
  return new Set([...manifest.matchAll(targetDeclaration)].map((m) => m[1]!))
}

/** Where SwiftPM keeps a dependency's sources, from one `dependencies` record of its workspace state. */
function checkoutFolder(buildFolder: string, record: unknown): { identity: string; folder: string } | undefined {
  if (!isRecord(record) || !isRecord(record.packageRef) || !isRecord(record.state)) return undefined
  const { identity } = record.packageRef
  const { subpath } = record
  if (typeof identity !== 'string' || typeof subpath !== 'string' || subpath.split('/').includes('..')) return undefined
  if (record.state.name === 'sourceControlCheckout' || record.state.name === 'checkout') {
    return { identity: identity.toLowerCase(), folder: path.join(buildFolder, 'checkouts', subpath) }
  }
  if (record.state.name === 'registryDownload') {
    return { identity: identity.toLowerCase(), folder: path.join(buildFolder, 'registry', 'downloads', subpath) }
  }
  return undefined
}

async function manifestsIn(folder: string): Promise<string> {
  const names = await fs.readdir(folder).catch(() => [] as string[])
  const manifests = names.filter((n) => n === 'Package.swift' || /^Package@swift-[\d.]+\.swift$/.test(n))
  const texts = await Promise.all(manifests.map((n) => fs.readFile(path.join(folder, n), 'utf8').catch(() => '')))
  return texts.join('\n')
}

/**
 * The targets each resolved dependency declares, read from the checkouts SwiftPM made when Scipio resolved the
 * package (`<package>/.build/workspace-state.json`). Packages whose manifest names no target are left out:
 * no evidence either way. Empty when the package was never resolved here.
 */
export async function declaredTargets(packageDirectory: string): Promise<Map<string, Set<string>>> {
  const buildFolder = path.join(packageDirectory, '.build')
  const declared = new Map<string, Set<string>>()
  let state: unknown
  try {
    state = JSON.parse(await fs.readFile(path.join(buildFolder, 'workspace-state.json'), 'utf8'))
  } catch {
    return declared
  }
  const records =
    isRecord(state) && isRecord(state.object) && Array.isArray(state.object.dependencies)
      ? state.object.dependencies
      : []
  await Promise.all(
    records.map(async (record) => {
      const checkout = checkoutFolder(buildFolder, record)
      if (!checkout) return
      const targets = targetsDeclaredIn(await manifestsIn(checkout.folder))
      if (targets.size > 0) declared.set(checkout.identity, targets)
    }),
  )
  return declared
}

export interface Evidence {
  /** identity → targets its manifest declares (see declaredTargets); asked only when two pins claim a framework. */
  declared(): Promise<Map<string, Set<string>>>
  /** The package's index already in the cache, if any. */
  previousIndex(pkg: PackagePlan): Promise<PackageIndex | undefined>
}

export interface Attribution {
  /** targetName → the one package it is indexed under. */
  owners: Map<string, PackagePlan>
  /** Frameworks no pin accounts for (local or root packages). */
  unmatched: string[]
  /** Frameworks several pins could own and nothing tells apart: indexed under none. */
  ambiguous: { targetName: string; candidates: PackagePlan[] }[]
}

function onlyOne<T>(items: T[]): T | undefined {
  return items.length === 1 ? items[0] : undefined
}

async function ownerOf(
  framework: LocalFramework,
  candidates: PackagePlan[],
  evidence: Evidence,
): Promise<PackagePlan[]> {
  const declared = await evidence.declared()
  const claiming = candidates.filter((c) => declared.get(c.pin.identity)?.has(framework.targetName))
  if (claiming.length === 1) return claiming
  const remaining = claiming.length > 1 ? claiming : candidates
  const listed = await Promise.all(
    remaining.map(
      async (c) =>
        (await evidence.previousIndex(c))?.targets.some((t) => t.targetName === framework.targetName) ?? false,
    ),
  )
  const inIndex = remaining.filter((_, i) => listed[i])
  return inIndex.length === 1 ? inIndex : remaining
}

export async function attribute(frameworks: LocalFramework[], plan: KeyPlan, evidence: Evidence): Promise<Attribution> {
  const owners = new Map<string, PackagePlan>()
  const unmatched: string[] = []
  const ambiguous: Attribution['ambiguous'] = []
  for (const framework of frameworks) {
    const candidates = pinCandidates(framework, plan)
    const owner = onlyOne(candidates.length > 1 ? await ownerOf(framework, candidates, evidence) : candidates)
    if (owner) owners.set(framework.targetName, owner)
    else if (candidates.length === 0) unmatched.push(framework.targetName)
    else ambiguous.push({ targetName: framework.targetName, candidates })
  }
  return { owners, unmatched: unmatched.sort(), ambiguous }
}

/** The warning for a framework left out of every index, naming the pins it could belong to. */
export function ambiguityWarning({ targetName, candidates }: Attribution['ambiguous'][number]): string {
  const pins = candidates.map(
    (c) => `${c.pin.identity} (${c.pin.revision ? `revision ${c.pin.revision}` : `version ${c.pin.version}`})`,
  )
  return (
    `${targetName} is not uploaded: its VersionFile matches the pins of ${pins.join(' and ')}, and neither SwiftPM's checkouts ` +
    `(.build/workspace-state.json) nor an index in the cache tells which package it belongs to. It will be built where it is needed.`
  )
}
