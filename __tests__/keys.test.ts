import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { canonicalJson, indexObjectKey, packageKey, planKeys, scipioKey, setKey } from '../src/keys/keys.js'
import { archiveObjectKey } from '../src/bucket/layout.js'
import { parseResolved, type Pin } from '../src/keys/resolved.js'
import { root } from './helpers/s3-server.js'
import { releaseBuild, xcode162Toolchain } from '../__fixtures__/keys.js'

const build = releaseBuild
const toolchain = xcode162Toolchain
const manifest = Buffer.from('// Package.swift')

async function pinsOf(name: string): Promise<Pin[]> {
  return parseResolved(await fs.readFile(path.join(root, '__fixtures__/resolved', name), 'utf8'), name).pins
}

function keysByIdentity(pins: Pin[], b = build, t = toolchain, salt = ''): Record<string, string> {
  return Object.fromEntries(pins.map((p) => [p.identity, packageKey(p, b, t, salt)]))
}

function shuffled<T>(items: T[]): T[] {
  return [...items].reverse()
}

describe('keys', () => {
  it.each(['v1.json', 'v2.json', 'v3.json'])('%s: pin order does not matter', async (name) => {
    const pins = await pinsOf(name)
    expect(keysByIdentity(shuffled(pins))).toEqual(keysByIdentity(pins))
    expect(setKey(manifest, shuffled(pins), build, toolchain, '')).toBe(setKey(manifest, pins, build, toolchain, ''))
  })

  it.each(['v1.json', 'v2.json', 'v3.json'])('%s: every package has its own key', async (name) => {
    const keys = Object.values(keysByIdentity(await pinsOf(name)))
    expect(new Set(keys).size).toBe(keys.length)
    for (const k of keys) expect(k).toMatch(/^[0-9a-f]{64}$/)
  })

  it('changes only the changed package when a pin changes', async () => {
    const pins = await pinsOf('v3.json')
    const before = keysByIdentity(pins)
    for (const field of ['revision', 'version', 'branch', 'location', 'kind'] as const) {
      const changed = pins.map((p) => (p.identity === 'swift-log' ? { ...p, [field]: `${p[field] ?? ''}x` } : p))
      const after = keysByIdentity(changed)
      expect(after['swift-log'], field).not.toBe(before['swift-log'])
      for (const id of Object.keys(before).filter((i) => i !== 'swift-log')) expect(after[id]).toBe(before[id])
      expect(setKey(manifest, changed, build, toolchain, '')).not.toBe(setKey(manifest, pins, build, toolchain, ''))
    }
  })

  it('changes every key when a build option, the toolchain or the salt changes', async () => {
    const pins = await pinsOf('v2.json')
    const base = keysByIdentity(pins)
    const variants: [string, Record<string, string>][] = [
      ['configuration', keysByIdentity(pins, { ...build, configuration: 'debug' })],
      ['frameworkType', keysByIdentity(pins, { ...build, frameworkType: 'static' })],
      ['supportSimulators', keysByIdentity(pins, { ...build, supportSimulators: true })],
      ['embedDebugSymbols', keysByIdentity(pins, { ...build, embedDebugSymbols: true })],
      ['libraryEvolution', keysByIdentity(pins, { ...build, libraryEvolution: true })],
      ['extraArgs', keysByIdentity(pins, { ...build, extraArgs: ['--verbose'] })],
      ['xcodeVersion', keysByIdentity(pins, build, { ...toolchain, xcodeVersion: '16.3' })],
      ['xcodeBuildVersion', keysByIdentity(pins, build, { ...toolchain, xcodeBuildVersion: '16E140' })],
      ['clangVersion', keysByIdentity(pins, build, { ...toolchain, clangVersion: 'clang-1700.0.13.3' })],
      ['scipio binary', keysByIdentity(pins, build, { ...toolchain, scipioSha256: 'b'.repeat(64) })],
      ['salt', keysByIdentity(pins, build, toolchain, 'v2')],
    ]
    const seen = new Set(Object.values(base))
    for (const [name, keys] of variants) {
      for (const id of Object.keys(base)) {
        expect(keys[id], `${name} ${id}`).not.toBe(base[id])
        expect(seen.has(keys[id]!), `${name} ${id} collides`).toBe(false)
        seen.add(keys[id]!)
      }
    }
  })

  it('does not depend on where Scipio is installed, only on its bytes', async () => {
    const [pin] = await pinsOf('v3.json')
    expect(packageKey(pin!, build, { ...toolchain, scipioPath: '/elsewhere/scipio' }, '')).toBe(
      packageKey(pin!, build, toolchain, ''),
    )
  })

  it('changes the set key when the manifest changes', async () => {
    const pins = await pinsOf('v3.json')
    expect(setKey(Buffer.from('other'), pins, build, toolchain, '')).not.toBe(
      setKey(manifest, pins, build, toolchain, ''),
    )
  })

  it('writes canonical JSON with sorted keys at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}',
    )
  })

  it('lays objects out as <prefix>/<TargetName>/<scipio key>.<format>', async () => {
    const key = scipioKey(Buffer.from('{}'))
    expect(key).toBe('44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a')
    expect(archiveObjectKey('team/ios', 'APNGKit', key, 'tar.zst')).toBe(`team/ios/APNGKit/${key}.tar.zst`)
    expect(archiveObjectKey('', 'APNGKit', key, 'tar.gz')).toBe(`APNGKit/${key}.tar.gz`)
    const plan = planKeys('p', await pinsOf('v3.json'), manifest, build, toolchain, '')
    expect(plan.packages[0]!.indexKey).toBe(indexObjectKey('p', plan.packages[0]!.packageKey))
    expect(plan.packages[0]!.indexKey).toMatch(/^p\/\.scipio-s3-cache\/packages\/[0-9a-f]{64}\.json$/)
    expect(plan.completeKey).toMatch(/^p\/\.scipio-s3-cache\/complete\/[0-9a-f]{64}\.json$/)
  })
})
