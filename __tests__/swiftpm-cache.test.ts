import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CacheService } from '../src/scipio/cache-service.js'
import type { Log } from '../src/log.js'
import {
  readSwiftpmCacheEnabled,
  restoreSwiftpmCache,
  saveSwiftpmCache,
  swiftpmCacheKeys,
  swiftpmCachePaths,
} from '../src/scipio/swiftpm-cache.js'
import { runAction } from './helpers/action.js'
import { exampleWorkspace } from './helpers/workspace.js'
import { closedPort, startBundleServer, type BundleServer } from './helpers/bundle-server.js'

function recordingLog(): Log & { lines: string[] } {
  const lines: string[] = []
  return {
    lines,
    info: (m) => lines.push(`info: ${m}`),
    warning: (m) => lines.push(`warning: ${m}`),
    debug: () => {},
    group: (_name, fn) => fn(),
  }
}

function fakeCache(hit?: (primary: string, restoreKeys: string[]) => string | undefined) {
  const calls: { op: 'restore' | 'save'; paths: string[]; key: string }[] = []
  const cache: CacheService = {
    available: () => true,
    restore: async (paths, primaryKey, restoreKeys = []) => {
      calls.push({ op: 'restore', paths, key: primaryKey })
      return hit?.(primaryKey, restoreKeys)
    },
    save: async (paths, key) => {
      calls.push({ op: 'save', paths, key })
      return true
    },
  }
  return { cache, calls }
}

async function packageWith(
  resolved: string,
  buildEntries: string[] = [],
): Promise<{ dir: string; resolvedFile: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'swiftpm-'))
  const resolvedFile = path.join(dir, 'Package.resolved')
  await fs.writeFile(resolvedFile, resolved)
  for (const entry of buildEntries) await fs.mkdir(path.join(dir, '.build', entry), { recursive: true })
  return { dir, resolvedFile }
}

describe('SwiftPM resolution cache', () => {
  it('keys by format, OS, arch and the SHA-256 of Package.resolved, with the prefix as restore key', () => {
    const a = swiftpmCacheKeys(Buffer.from('{"pins":[]}'), 'darwin', 'arm64')
    expect(a.primary).toMatch(/^scipio-s3-cache-swiftpm-v1-darwin-arm64-[0-9a-f]{64}$/)
    expect(a.restoreKeys).toEqual(['scipio-s3-cache-swiftpm-v1-darwin-arm64-'])
    expect(swiftpmCacheKeys(Buffer.from('{"pins":[]}'), 'darwin', 'arm64')).toEqual(a)
    expect(swiftpmCacheKeys(Buffer.from('{"pins":[1]}'), 'darwin', 'arm64').primary).not.toBe(a.primary)
    expect(swiftpmCacheKeys(Buffer.from('{"pins":[]}'), 'darwin', 'x64').primary).not.toBe(a.primary)
  })

  it("caches SwiftPM's state under the package's .build, not Scipio's build folder", () => {
    expect(swiftpmCachePaths('/w/Deps')).toEqual([
      '/w/Deps/.build/repositories',
      '/w/Deps/.build/checkouts',
      '/w/Deps/.build/artifacts',
      '/w/Deps/.build/workspace-state.json',
    ])
  })

  it('reads cache-swiftpm: on by default, false turns it off, anything else is an input error', () => {
    expect(readSwiftpmCacheEnabled(() => '')).toBe(true)
    expect(readSwiftpmCacheEnabled(() => 'false')).toBe(false)
    expect(() => readSwiftpmCacheEnabled(() => 'maybe')).toThrow("Input 'cache-swiftpm': 'maybe' is not a boolean")
  })

  it('after a miss, saves under the primary key with the same paths it restored', async () => {
    const pkg = await packageWith('{"pins":[]}', ['checkouts', 'repositories'])
    const { cache, calls } = fakeCache()
    const log = recordingLog()
    const state = await restoreSwiftpmCache(pkg.dir, pkg.resolvedFile, cache, log)
    expect(state).toBeDefined()
    expect(await saveSwiftpmCache(state!, true, cache, log)).toBe(true)
    expect(calls.map((c) => c.op)).toEqual(['restore', 'save'])
    expect(calls[1]!.paths).toEqual(calls[0]!.paths)
    expect(calls[1]!.key).toBe(calls[0]!.key)
  })

  it('after an exact hit, does not save again', async () => {
    const pkg = await packageWith('{"pins":[]}', ['checkouts'])
    const { cache, calls } = fakeCache((primary) => primary)
    const state = await restoreSwiftpmCache(pkg.dir, pkg.resolvedFile, cache, recordingLog())
    expect(await saveSwiftpmCache(state!, true, cache, recordingLog())).toBe(false)
    expect(calls.map((c) => c.op)).toEqual(['restore'])
  })

  it('after a partial hit (a restore key), saves the new state', async () => {
    const pkg = await packageWith('{"pins":[2]}', ['checkouts'])
    const { cache, calls } = fakeCache((_primary, restoreKeys) => `${restoreKeys[0]}older`)
    const log = recordingLog()
    const state = await restoreSwiftpmCache(pkg.dir, pkg.resolvedFile, cache, log)
    expect(log.lines.join('\n')).toContain('SwiftPM resolution cache: partly restored')
    expect(await saveSwiftpmCache(state!, true, cache, log)).toBe(true)
    expect(calls.map((c) => c.op)).toEqual(['restore', 'save'])
  })

  it('does not save after a failed build, or when SwiftPM left nothing', async () => {
    const built = await packageWith('{"pins":[]}', ['checkouts'])
    const { cache, calls } = fakeCache()
    const state = await restoreSwiftpmCache(built.dir, built.resolvedFile, cache, recordingLog())
    expect(await saveSwiftpmCache(state!, false, cache, recordingLog())).toBe(false)

    const empty = await packageWith('{"pins":[]}')
    const log = recordingLog()
    const emptyState = await restoreSwiftpmCache(empty.dir, empty.resolvedFile, cache, log)
    expect(await saveSwiftpmCache(emptyState!, true, cache, log)).toBe(false)
    expect(log.lines.join('\n')).toContain(
      'not saved: none of repositories, checkouts, artifacts, workspace-state.json exists',
    )
    expect(calls.filter((c) => c.op === 'save')).toEqual([])
  })

  it('without the cache service, neither restores nor saves', async () => {
    const pkg = await packageWith('{"pins":[]}', ['checkouts'])
    const { cache, calls } = fakeCache()
    const missing = { ...cache, available: () => false }
    const state = await restoreSwiftpmCache(pkg.dir, pkg.resolvedFile, missing, recordingLog())
    expect(state?.unavailable).toBe(true)
    expect(await saveSwiftpmCache(state!, true, missing, recordingLog())).toBe(false)
    expect(calls).toEqual([])
  })

  it('an unreadable resolved file is a warning, not a failure', async () => {
    const { cache, calls } = fakeCache()
    const log = recordingLog()
    expect(await restoreSwiftpmCache('/nowhere', '/nowhere/Package.resolved', cache, log)).toBeUndefined()
    expect(log.lines.join('\n')).toContain(
      'warning: SwiftPM resolution cache skipped: cannot read /nowhere/Package.resolved',
    )
    expect(calls).toEqual([])
  })
})

describe('cache-swiftpm through dist/index.js', () => {
  let server: BundleServer
  beforeAll(async () => {
    server = await startBundleServer({}) // nothing stored: every lookup is a 404, so Scipio builds everything
  })
  afterAll(async () => {
    await server?.close()
  })

  const consumer = async (extra: Record<string, string> = {}) => ({
    'public-url': `${server.url}/store`,
    'package-directory': await exampleWorkspace(),
    ...extra,
  })

  it('is on by default; without the cache service on a runner it warns once and the step succeeds', async () => {
    const run = await runAction(await consumer(), { GITHUB_ACTIONS: 'true' })
    expect(run.code, run.stdout).toBe(0)
    expect(run.stdout.match(/::warning::GitHub's cache service is not available/g)).toHaveLength(1)
    expect(run.summary).toContain('SwiftPM resolution cache: not available.')
  })

  it('when the cache service does not answer, restore and save are warnings and the step succeeds', async () => {
    const inputs = await consumer()
    await fs.mkdir(path.join(inputs['package-directory'], '.build/checkouts/swift-collections'), { recursive: true })
    const port = await closedPort()
    const run = await runAction(inputs, {
      GITHUB_ACTIONS: 'true',
      ACTIONS_CACHE_URL: `http://127.0.0.1:${port}/`,
      ACTIONS_RUNTIME_TOKEN: 'test-token',
    })
    expect(run.code, run.stdout).toBe(0)
    expect(run.stdout).toMatch(/::warning::Failed to restore: /)
    expect(run.stdout).toMatch(/::warning::(Failed to save|Could not save)/)
    expect(run.outputs['built-count']).toBe('7')
    expect(run.stdout).toMatch(/SwiftPM resolution cache: missed \(scipio-s3-cache-swiftpm-v1-linux-\w+-[0-9a-f]{64}\)/)
    expect(run.summary).toContain('SwiftPM resolution cache: missed.')
  })

  it("cache-swiftpm: false leaves SwiftPM's state alone", async () => {
    const run = await runAction(await consumer({ 'cache-swiftpm': 'false' }), { GITHUB_ACTIONS: 'true' })
    expect(run.code, run.stdout).toBe(0)
    expect(run.stdout).not.toContain('SwiftPM resolution cache')
    expect(run.summary).not.toContain('SwiftPM')
  })

  it('a bad value fails the step with an annotation naming the input', async () => {
    const run = await runAction(await consumer({ 'cache-swiftpm': 'maybe' }))
    expect(run.code).toBe(1)
    expect(run.stdout).toContain(
      "::error title=Input 'cache-swiftpm'::Input 'cache-swiftpm': 'maybe' is not a boolean; use true or false.",
    )
  })
})
