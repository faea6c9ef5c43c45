import { execFile } from 'node:child_process'
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
