import { existsSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { planKeys } from '../src/keys/keys.js'
import { findResolvedFile, readResolvedFile, type Pin } from '../src/keys/resolved.js'
import { runAction, s3TestInputs, type ActionRun } from './helpers/action.js'
import { root } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { isRunsRequest } from './helpers/records.js'
import { consumerCopy, doubleWorkspace } from './helpers/workspace.js'
import { releaseBuild, xcode162Toolchain } from '../__fixtures__/keys.js'

/**
 * Package.resolved files from public projects (../shared/realworld-corpus/resolved, sources in its SOURCES.md):
 * every one parses, and the two shapes that let two pins claim one framework (registry pins sharing a version,
 * two identities at one revision) round-trip with each framework restored exactly once.
 */

const corpus = path.resolve(root, '../shared/realworld-corpus/resolved')
const present = existsSync(corpus)
if (!present && process.env.CI) throw new Error(`${corpus} is missing: CI must place shared/ beside the clone`)

interface CorpusEntry {
  file: string
  path: string
  version: number
  pins: number
}

const build = releaseBuild
const toolchain = xcode162Toolchain

async function entries(): Promise<CorpusEntry[]> {
  return JSON.parse(await fs.readFile(path.join(corpus, 'index.json'), 'utf8')) as CorpusEntry[]
}

/** A seeded Fisher-Yates shuffle: each seed a different, repeatable order. */
function shuffle<T>(items: T[], seed: number): T[] {
  const out = [...items]
  let state = seed
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1103515245 + 12345) % 2 ** 31
    const j = state % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

/** The folder a user would point `package-directory` at, for the file's place in its repository. */
function packageFolderOf(repoPath: string): string {
  const parts = repoPath.split('/')
  const container = parts.findIndex((p) => p.endsWith('.xcodeproj') || p.endsWith('.xcworkspace'))
  return (container >= 0 ? parts.slice(0, container) : parts.slice(0, -1)).join('/')
}

describe.skipIf(!present)('real Package.resolved files', async () => {
  const list = present ? await entries() : []

  it('lists every corpus file in its index', async () => {
    const files = (await fs.readdir(corpus)).filter((f) => f.endsWith('.resolved')).sort()
    expect(list.map((e) => e.file).sort()).toEqual(files)
    expect(new Set(list.map((e) => e.version))).toEqual(new Set([1, 2, 3]))
  })

  it.each(list.map((e) => [e.file, e] as const))(
    '%s: found where SwiftPM or Xcode keeps it, parsed whole, keys independent of pin order',
    async (_, entry) => {
      const repo = await fs.mkdtemp(path.join(os.tmpdir(), 'corpus-'))
      await fs.mkdir(path.dirname(path.join(repo, entry.path)), { recursive: true })
      await fs.copyFile(path.join(corpus, entry.file), path.join(repo, entry.path))
      const found = await findResolvedFile(path.join(repo, packageFolderOf(entry.path)))
      expect(found).toBe(path.join(repo, entry.path))
      const resolved = await readResolvedFile(found)
      expect(resolved.formatVersion).toBe(entry.version)
      expect(resolved.pins).toHaveLength(entry.pins)
      for (const pin of resolved.pins)
        expect(pin.revision ?? (pin.kind === 'registry' ? pin.version : undefined)).toBeTruthy()

      const manifest = Buffer.from('// Package.swift')
      const plan = planKeys('p', resolved.pins, manifest, build, toolchain, '')
      const byIdentity = (pins: Pin[]) =>
        Object.fromEntries(
          planKeys('p', pins, manifest, build, toolchain, '').packages.map((p) => [p.pin.identity, p.packageKey]),
        )
      const keys = byIdentity(resolved.pins)
      expect(new Set(Object.values(keys)).size).toBe(resolved.pins.length)
      for (const seed of [1, 2, 3, 4, 5]) {
        const pins = shuffle(resolved.pins, seed)
        expect(byIdentity(pins)).toEqual(keys)
        expect(planKeys('p', pins, manifest, build, toolchain, '').setKey).toBe(plan.setKey)
      }
      await fs.rm(repo, { recursive: true, force: true })
    },
  )

  it('keeps branch and registry pins as they are', async () => {
    const branchy = await readResolvedFile(path.join(corpus, 'CodeEditApp__CodeEdit__v1.resolved'))
    expect(branchy.pins.filter((p) => p.branch).length).toBe(25)
    const registry = await readResolvedFile(path.join(corpus, 'tuist__registry-tests__v2.resolved'))
    const noRevision = registry.pins.filter((p) => !p.revision)
    expect(noRevision).toHaveLength(58)
    expect(noRevision.every((p) => p.kind === 'registry' && /^\d+\.\d+\.\d+/.test(p.version ?? ''))).toBe(true)
  })
})

// --- Round trips through dist/index.js -------------------------------------------------------------------

const bucket = 'realworld'
const store = useStore([bucket], { when: () => present })

/** A target name per package, as a Swift module name would be spelt. */
function targetOf(identity: string): string {
  return identity
    .split(/[^0-9A-Za-z]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('')
}

function list(run: ActionRun, name: string): string[] {
  return JSON.parse(run.outputs[name] ?? 'null') as string[]
}

function warnings(run: ActionRun): string[] {
  return run.stdout.split('\n').filter((l) => l.startsWith('::warning'))
}

async function roundTrip(prefix: string, resolvedText: string, graph: string[], consumers: number): Promise<void> {
  const targets = graph.map(targetOf).sort()
  const inputs = (ws: string, mode: string) =>
    s3TestInputs(store.proxy.endpoint, bucket, { mode, prefix, 'package-directory': ws, strict: 'true' })
  const producer = await doubleWorkspace(
    resolvedText,
    Object.fromEntries(
      graph.map((identity) => [identity, { targets: [{ name: targetOf(identity), binarySize: 4096 }] }]),
    ),
  )

  const first = await runAction(inputs(producer, 'consumer,producer'))
  expect(first.code, first.stdout).toBe(0)
  expect(warnings(first)).toEqual([])
  expect(list(first, 'built').sort()).toEqual(targets)
  expect(list(first, 'uploaded').sort()).toEqual(targets)
  expect(first.outputs['uploaded-count']).toBe(String(targets.length))

  for (let i = 0; i < consumers; i++) {
    const run = await runAction(inputs(await consumerCopy(producer), 'consumer'))
    expect(run.code, run.stdout).toBe(0)
    expect(warnings(run)).toEqual([])
    expect(list(run, 'restored')).toHaveLength(targets.length)
    expect(list(run, 'restored').sort()).toEqual(targets)
    expect(run.outputs['restored-count']).toBe(String(targets.length))
    expect(list(run, 'built')).toEqual([])
  }

  store.proxy.requests.length = 0
  const again = await runAction(inputs(producer, 'consumer,producer'))
  expect(again.code, again.stdout).toBe(0)
  expect(warnings(again)).toEqual([])
  expect(store.proxy.requests.filter((r) => (r.method === 'PUT' || r.method === 'POST') && !isRunsRequest(r))).toEqual(
    [],
  )
  expect(again.outputs['uploaded-count']).toBe('0')
}

describe.skipIf(!present)('round trips on real files where two pins claim one framework', () => {
  it('registry pins that share versions (tuist/registry-tests v3): each framework restored once, a no-op producer writes nothing', async () => {
    const text = await fs.readFile(path.join(corpus, 'tuist__registry-tests__v3.resolved'), 'utf8')
    const pins = (await readResolvedFile(path.join(corpus, 'tuist__registry-tests__v3.resolved'))).pins
    const versions = pins.filter((p) => !p.revision).map((p) => p.version)
    expect(new Set(versions).size).toBeLessThan(versions.length) // the shape under test is really there
    await roundTrip(
      'registry',
      text,
      pins.map((p) => p.identity),
      6,
    )
  })

  it('two identities pinned at one revision (a fork beside its origin): each framework restored once, a no-op producer writes nothing', async () => {
    const file = path.join(corpus, 'giginet__Scipio__v2.resolved')
    const doc = JSON.parse(await fs.readFile(file, 'utf8')) as {
      pins: { identity: string; location: string; state: { revision: string } }[]
    }
    const origin = doc.pins.find((p) => p.identity === 'swift-log')!
    doc.pins.push({
      ...origin,
      identity: 'swift-log-fork',
      location: 'https://github.com/example-org/swift-log-fork.git',
    })
    const identities = doc.pins.map((p) => p.identity)
    // The fork is pinned but the build does not need it, as SwiftPM allows no two packages declaring one target.
    await roundTrip(
      'fork',
      JSON.stringify(doc, null, 2),
      identities.filter((i) => i !== 'swift-log-fork'),
      6,
    )
  })
})
