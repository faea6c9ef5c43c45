import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { ProjectError } from '../errors.js'
import { isRecord } from '../json.js'

/** One pinned dependency, as Package.resolved records it (all versions mapped to one shape). */
export interface Pin {
  identity: string
  kind: string
  location: string
  revision?: string
  version?: string
  branch?: string
}

export interface ResolvedFile {
  path: string
  formatVersion: number
  pins: Pin[]
}

type Json = Record<string, unknown>

function optionalString(obj: Json, key: string, where: string): string | undefined {
  const value = obj[key]
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string') throw new Error(`${where}: '${key}' must be a string`)
  return value
}

function requiredString(obj: Json, key: string, where: string): string {
  const value = optionalString(obj, key, where)
  if (!value) throw new Error(`${where}: '${key}' is missing`)
  return value
}

/** SwiftPM's v1 files have no identity; SwiftPM derives it from the last path component of the URL. */
export function identityFromLocation(location: string): string {
  const last = location.replace(/\/+$/, '').split(/[/:]/).pop() ?? location
  return last.replace(/\.git$/, '').toLowerCase()
}

function parseV1(doc: Json): Pin[] {
  const object = doc.object
  if (!isRecord(object) || !Array.isArray(object.pins)) throw new Error("version 1 file needs 'object.pins' as a list")
  return object.pins.map((raw, i) => {
    const where = `pin ${i + 1}`
    if (!isRecord(raw) || !isRecord(raw.state)) throw new Error(`${where}: needs 'state'`)
    const location = requiredString(raw, 'repositoryURL', where)
    return compact({
      identity: identityFromLocation(location),
      kind: 'remoteSourceControl',
      location,
      revision: requiredString(raw.state, 'revision', where),
      version: optionalString(raw.state, 'version', where),
      branch: optionalString(raw.state, 'branch', where),
    })
  })
}

function parseV2(doc: Json): Pin[] {
  if (!Array.isArray(doc.pins)) throw new Error("'pins' must be a list")
  return doc.pins.map((raw, i) => {
    const where = `pin ${i + 1}`
    if (!isRecord(raw) || !isRecord(raw.state)) throw new Error(`${where}: needs 'state'`)
    const identity = requiredString(raw, 'identity', where)
    const kind = requiredString(raw, 'kind', `${where} (${identity})`)
    const version = optionalString(raw.state, 'version', `${where} (${identity})`)
    const revision = optionalString(raw.state, 'revision', `${where} (${identity})`)
    // A registry pin has a version and no revision; every other kind has a revision.
    if (!revision && !(kind === 'registry' && version))
      throw new Error(`${where} (${identity}): 'state.revision' is missing`)
    return compact({
      identity: identity.toLowerCase(),
      kind,
      location:
        kind === 'registry'
          ? (optionalString(raw, 'location', where) ?? '')
          : requiredString(raw, 'location', `${where} (${identity})`),
      revision,
      version,
      branch: optionalString(raw.state, 'branch', `${where} (${identity})`),
    })
  })
}

function compact(pin: { [K in keyof Pin]: Pin[K] | undefined }): Pin {
  const out: Pin = { identity: pin.identity!, kind: pin.kind!, location: pin.location! }
  if (pin.revision) out.revision = pin.revision
  if (pin.version) out.version = pin.version
  if (pin.branch) out.branch = pin.branch
  return out
}

export function parseResolved(text: string, file: string): ResolvedFile {
  const fail = (why: string): never => {
    throw new ProjectError(
      `${file} is not a valid Package.resolved: ${why}. Run 'swift package resolve' (or resolve in Xcode) and commit the result.`,
      file,
    )
  }
  if (text.trim() === '') fail('the file is empty')
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    return fail(`not JSON (${(e as Error).message})`)
  }
  if (!isRecord(doc)) return fail('the top level is not a JSON object')
  const formatVersion = doc.version
  let pins: Pin[] = []
  try {
    if (formatVersion === 1) pins = parseV1(doc)
    else if (formatVersion === 2 || formatVersion === 3) pins = parseV2(doc)
    else fail(`unknown format version ${JSON.stringify(formatVersion)} (this action reads versions 1, 2 and 3)`)
  } catch (e) {
    if (e instanceof ProjectError) throw e
    fail((e as Error).message)
  }
  const seen = new Set<string>()
  for (const pin of pins) {
    if (seen.has(pin.identity)) fail(`the package '${pin.identity}' is pinned twice`)
    seen.add(pin.identity)
  }
  return { path: file, formatVersion: formatVersion as number, pins }
}

/** Where SwiftPM (next to Package.swift) and Xcode (inside a project or workspace) keep the file. */
export async function findResolvedFile(packageDirectory: string): Promise<string> {
  const candidates = [path.join(packageDirectory, 'Package.resolved')]
  const entries = await fs.readdir(packageDirectory).catch(() => [] as string[])
  for (const name of entries.sort()) {
    if (name.endsWith('.xcworkspace'))
      candidates.push(path.join(packageDirectory, name, 'xcshareddata/swiftpm/Package.resolved'))
    if (name.endsWith('.xcodeproj')) {
      candidates.push(path.join(packageDirectory, name, 'project.xcworkspace/xcshareddata/swiftpm/Package.resolved'))
    }
  }
  for (const candidate of candidates) {
    if (
      await fs.stat(candidate).then(
        (s) => s.isFile(),
        () => false,
      )
    )
      return candidate
  }
  throw new ProjectError(
    `No Package.resolved found in ${packageDirectory} (looked at ${candidates.map((c) => path.relative(packageDirectory, c)).join(', ')}). ` +
      `Resolve the package ('swift package resolve'), commit Package.resolved, or set the 'resolved-file' input.`,
  )
}

export async function readResolvedFile(file: string): Promise<ResolvedFile> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (e) {
    throw new ProjectError(
      `Cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}. Check the 'resolved-file' input.`,
      file,
    )
  }
  return parseResolved(text, file)
}
