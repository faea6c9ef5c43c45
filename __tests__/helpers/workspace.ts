import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { root } from './s3-server.js'

/**
 * Workspaces for the Scipio test double (scipio-test-double/): a dependencies package with its Package.resolved
 * and, for generated packages, the double's graph (`scipio-test-double.json`: which targets each pin builds).
 */

export const doubleBin = path.join(root, 'scipio-test-double/bin')

/** The targets the double builds for the example package (example/MyAppDependencies), sorted. */
export const exampleTargets: readonly string[] = [
  'APNGKit',
  'Delegate',
  'DequeModule',
  'InternalCollectionsUtilities',
  'Kingfisher',
  'Logging',
  'OrderedCollections',
]

/** A copy of the example dependencies package in a fresh folder. */
export async function exampleWorkspace(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'workspace-'))
  await fs.cp(path.join(root, 'example/MyAppDependencies'), dir, { recursive: true })
  return dir
}

export interface DoubleTarget {
  name: string
  binarySize: number
  /** Direct target dependencies: their keys go into this target's (`dependencyCacheKeyChecksums`). */
  dependencies?: string[]
}

/** A package's targets as the double builds them: `{ identity: { targets: [...] } }`. */
export type DoubleGraph = Record<string, { targets: DoubleTarget[] }>

/** A dependencies package with the example's manifest, `resolved` as Package.resolved and `graph` as what the double builds. */
export async function doubleWorkspace(resolved: string, graph: DoubleGraph, manifest?: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'double-ws-'))
  if (manifest === undefined)
    await fs.copyFile(path.join(root, 'example/MyAppDependencies/Package.swift'), path.join(dir, 'Package.swift'))
  else await fs.writeFile(path.join(dir, 'Package.swift'), manifest)
  await fs.writeFile(path.join(dir, 'Package.resolved'), resolved)
  await fs.writeFile(path.join(dir, 'scipio-test-double.json'), JSON.stringify({ packages: graph }))
  return dir
}

/** The same package in a fresh folder with no output and no SwiftPM state: a consumer's runner. */
export async function consumerCopy(workspace: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'double-consumer-'))
  for (const name of ['Package.swift', 'Package.resolved', 'scipio-test-double.json']) {
    await fs.copyFile(path.join(workspace, name), path.join(dir, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error
    })
  }
  return dir
}

/** The environment with the double first on PATH, plus `extra`. */
export function doubleEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: `${doubleBin}${path.delimiter}${process.env.PATH ?? ''}`, ...extra }
}

/** Runs the double as a user runs `scipio` (rejects with the exit code when it fails). */
export async function runScipioDouble(
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string }> {
  return promisify(execFile)(path.join(doubleBin, 'scipio'), args, { env: doubleEnv(extraEnv) })
}

export interface DoubleEvent {
  event: 'built' | 'skipped' | 'failed'
  target: string
}

/** What the double logged (SCIPIO_TEST_DOUBLE_LOG): one event per target per run. */
export async function readDoubleLog(file: string): Promise<DoubleEvent[]> {
  const text = await fs.readFile(file, 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as DoubleEvent)
}

/** A dependency graph in `__fixtures__/graphs/`: each package's location, version and targets with their dependencies. */
export interface GraphFixture {
  packages: Record<string, { location: string; version: string; targets: { name: string; dependencies?: string[] }[] }>
}

export async function graphFixture(name: string): Promise<GraphFixture> {
  return JSON.parse(await fs.readFile(path.join(root, '__fixtures__/graphs', `${name}.json`), 'utf8')) as GraphFixture
}

/**
 * A Package.resolved (v2) pinning each package of `graph` at its version, or at `versions[identity]`; its revision
 * is derived from the version unless `revisions[identity]` gives one (a tag moved to another commit).
 */
export function graphResolved(
  graph: GraphFixture,
  versions: Record<string, string> = {},
  revisions: Record<string, string> = {},
): string {
  const pins = Object.entries(graph.packages).map(([identity, p]) => {
    const version = versions[identity] ?? p.version
    const revision = revisions[identity] ?? createHash('sha1').update(`${identity}@${version}`).digest('hex')
    return { identity, kind: 'remoteSourceControl', location: p.location, state: { revision, version } }
  })
  return JSON.stringify({ pins, version: 2 }, null, 2)
}

/** What the double builds for `graph`: small frameworks, so that big trees stay quick. */
export function graphDouble(graph: GraphFixture, binarySize = 4096): DoubleGraph {
  return Object.fromEntries(
    Object.entries(graph.packages).map(([identity, p]) => [
      identity,
      { targets: p.targets.map((t) => ({ name: t.name, binarySize, dependencies: t.dependencies ?? [] })) },
    ]),
  )
}

/** A workspace for `graph` with `versions` (and `revisions`) pinned over the fixture's own. */
export function graphWorkspace(
  graph: GraphFixture,
  versions: Record<string, string> = {},
  revisions: Record<string, string> = {},
): Promise<string> {
  return doubleWorkspace(graphResolved(graph, versions, revisions), graphDouble(graph))
}

/** The targets of `identity` and every target that depends on one of them, directly or not, sorted. */
export function dependentsOf(graph: GraphFixture, identity: string): string[] {
  const targets = Object.values(graph.packages).flatMap((p) => p.targets)
  const changed = new Set(graph.packages[identity]!.targets.map((t) => t.name))
  for (let grew = true; grew;) {
    grew = false
    for (const t of targets) {
      if (!changed.has(t.name) && (t.dependencies ?? []).some((d) => changed.has(d))) {
        changed.add(t.name)
        grew = true
      }
    }
  }
  return [...changed].sort()
}

/** Every target of `graph`, sorted. */
export function graphTargets(graph: GraphFixture): string[] {
  return Object.values(graph.packages)
    .flatMap((p) => p.targets.map((t) => t.name))
    .sort()
}
