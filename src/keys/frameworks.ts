import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { isRecord } from '../json.js'
import { scipioKey } from './keys.js'

/** Scipio names a framework after its target with every character outside [0-9A-Za-z] replaced by '_'. */
export function frameworkName(targetName: string): string {
  const name = targetName.replace(/[^0-9A-Za-z]/g, '_')
  return /^[0-9]/.test(name) ? `_${name}` : name
}

export function frameworkFolder(targetName: string): string {
  return `${frameworkName(targetName)}.xcframework`
}

/** Scipio writes `.<TargetName>.version` (raw target name) beside each framework. */
export function versionFileName(targetName: string): string {
  return `.${targetName}.version`
}

/** Target names end up in object keys and file names: refuse anything that could address another place. */
export function isSafeTargetName(name: string): boolean {
  return name.length > 0 && name.length <= 200 && !/[/\\\0]/.test(name) && name !== '.' && name !== '..'
}

export interface VersionPin {
  revision?: string
  version?: string
  branch?: string
}

/** One of a VersionFile's `dependencyCacheKeyChecksums`: a direct dependency and its Scipio key. */
export interface DependencyChecksum {
  targetName: string
  checksum: string
}

/** A framework Scipio left in the output folder, with its VersionFile. */
export interface LocalFramework {
  targetName: string
  scipioKey: string
  pin: VersionPin
  /** Its VersionFile's `dependencyCacheKeyChecksums` (Scipio 0.33+), in the file's order (absent: none). */
  dependencies?: DependencyChecksum[]
  localPackageCanonicalLocation?: string
  /** inode and mtimes of the framework folder and VersionFile: tells a rebuilt framework from a kept one. */
  identity: string
}

function readPin(value: unknown): VersionPin {
  const pin: VersionPin = {}
  if (!isRecord(value)) return pin
  for (const key of ['revision', 'version', 'branch'] as const) {
    const v = value[key]
    if (typeof v === 'string') pin[key] = v
  }
  return pin
}

const hex64 = /^[0-9a-f]{64}$/

/** `dependencyCacheKeyChecksums` as Scipio writes it; undefined when a member is not one it could write. */
export function readDependencyChecksums(value: unknown): DependencyChecksum[] | undefined {
  if (value === undefined) return []
  if (!Array.isArray(value)) return undefined
  const out: DependencyChecksum[] = []
  for (const item of value) {
    if (!isRecord(item) || typeof item.targetName !== 'string' || !isSafeTargetName(item.targetName)) return undefined
    if (typeof item.checksum !== 'string' || !hex64.test(item.checksum)) return undefined
    out.push({ targetName: item.targetName, checksum: item.checksum })
  }
  return out
}

/** Reads one VersionFile; undefined when it is not one Scipio could have written. */
export function parseVersionFile(bytes: Buffer): Omit<LocalFramework, 'identity'> | undefined {
  let doc: unknown
  try {
    doc = JSON.parse(bytes.toString('utf8'))
  } catch {
    return undefined
  }
  if (!isRecord(doc)) return undefined
  if (typeof doc.targetName !== 'string' || !isSafeTargetName(doc.targetName)) return undefined
  const dependencies = readDependencyChecksums(doc.dependencyCacheKeyChecksums)
  if (!dependencies) return undefined
  const result: Omit<LocalFramework, 'identity'> = {
    targetName: doc.targetName,
    scipioKey: scipioKey(bytes),
    pin: readPin(doc.pin),
  }
  if (dependencies.length > 0) result.dependencies = dependencies
  if (typeof doc.localPackageCanonicalLocation === 'string') {
    result.localPackageCanonicalLocation = doc.localPackageCanonicalLocation
  }
  return result
}

/** Every framework in the output folder that has a VersionFile naming it. */
export async function scanOutput(outputDirectory: string): Promise<Map<string, LocalFramework>> {
  const found = new Map<string, LocalFramework>()
  let names: string[]
  try {
    names = await fs.readdir(outputDirectory)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return found
    throw e
  }
  for (const name of names.sort()) {
    if (!name.startsWith('.') || !name.endsWith('.version')) continue
    const file = path.join(outputDirectory, name)
    const stat = await fs.lstat(file)
    if (!stat.isFile()) continue
    const parsed = parseVersionFile(await fs.readFile(file))
    if (!parsed || versionFileName(parsed.targetName) !== name) continue
    const folder = await fs.lstat(path.join(outputDirectory, frameworkFolder(parsed.targetName))).catch(() => undefined)
    if (!folder?.isDirectory()) continue
    found.set(parsed.targetName, { ...parsed, identity: `${folder.ino}:${folder.mtimeMs}:${stat.mtimeMs}` })
  }
  return found
}
