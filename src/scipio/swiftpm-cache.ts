import { sha256Hex } from '../keys/keys.js'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import type { CacheService } from './cache-service.js'
import { Inputs } from '../constants.js'
import { errorMessage } from '../errors.js'
import { readBoolean, type InputReader } from '../inputs/inputs.js'
import type { Log } from '../log.js'

/**
 * Caches SwiftPM's resolution state in GitHub's Actions cache. Scipio (0.33) runs `swift package resolve`,
 * `show-dependencies` and `dump-package` on the dependencies package with SwiftPM's default scratch folder,
 * `<package>/.build`, so every run clones each dependency again even when every framework was restored.
 * With `.build/repositories` (bare clones), `.build/checkouts`, `.build/artifacts` (binary targets) and
 * `.build/workspace-state.json` in place, resolving a Package.resolved that has not changed fetches nothing.
 * Scipio's own build folder `.build/scipio` (DerivedData) is left out: it is build output, large, and the
 * frameworks themselves come from S3. SwiftPM's shared cache (~/Library/Caches/org.swift.swiftpm) is left
 * out too: it holds the same clones as `.build/repositories`, which SwiftPM uses first.
 */

/** Bump to drop every entry an older release wrote. */
const keyFormat = 'v1'

export function readSwiftpmCacheEnabled(read: InputReader): boolean {
  return readBoolean(read, Inputs.CacheSwiftpm, true)
}

export function swiftpmCachePaths(packageDirectory: string): string[] {
  const build = path.join(packageDirectory, '.build')
  return ['repositories', 'checkouts', 'artifacts', 'workspace-state.json'].map((entry) => path.join(build, entry))
}

export interface SwiftpmCacheKeys {
  primary: string
  /** Any earlier state of the same platform: SwiftPM then fetches only what changed. */
  restoreKeys: string[]
}

export function swiftpmCacheKeys(
  resolvedBytes: Buffer,
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): SwiftpmCacheKeys {
  const prefix = `scipio-s3-cache-swiftpm-${keyFormat}-${platform}-${arch}-`
  return { primary: prefix + sha256Hex(resolvedBytes), restoreKeys: [prefix] }
}

export interface SwiftpmCacheState {
  keys: SwiftpmCacheKeys
  paths: string[]
  /** The key restored: the primary key (exact), a restore-key match (partial), or undefined. */
  restoredKey?: string
  /** The Actions cache service is missing: nothing was restored and nothing will be saved. */
  unavailable?: boolean
}

export type SwiftpmCacheResult = 'off' | 'not available' | 'restored' | 'partly restored' | 'missed'

export function swiftpmCacheResult(state: SwiftpmCacheState | undefined): SwiftpmCacheResult {
  if (!state) return 'off'
  if (state.unavailable) return 'not available'
  if (state.restoredKey === state.keys.primary) return 'restored'
  return state.restoredKey ? 'partly restored' : 'missed'
}

/** Restores before the build; never throws (a fault is a warning and the build resolves from scratch). */
export async function restoreSwiftpmCache(
  packageDirectory: string,
  resolvedFile: string,
  cache: CacheService,
  log: Log,
): Promise<SwiftpmCacheState | undefined> {
  let keys: SwiftpmCacheKeys
  try {
    keys = swiftpmCacheKeys(await fs.readFile(resolvedFile))
  } catch (error) {
    log.warning(`SwiftPM resolution cache skipped: cannot read ${resolvedFile}: ${errorMessage(error)}`, {
      file: resolvedFile,
    })
    return undefined
  }
  const paths = swiftpmCachePaths(packageDirectory)
  if (!cache.available()) return { keys, paths, unavailable: true }
  const restoredKey = await cache.restore(paths, keys.primary, keys.restoreKeys)
  const state: SwiftpmCacheState = { keys, paths, ...(restoredKey ? { restoredKey } : {}) }
  log.info(`SwiftPM resolution cache: ${swiftpmCacheResult(state)} (${keys.primary}).`)
  return state
}

/** Saves after a successful build, unless the exact entry was restored (entries are immutable) or nothing is there. */
export async function saveSwiftpmCache(
  state: SwiftpmCacheState,
  buildSucceeded: boolean,
  cache: CacheService,
  log: Log,
): Promise<boolean> {
  if (state.unavailable || state.restoredKey === state.keys.primary) return false
  if (!buildSucceeded) {
    log.info('SwiftPM resolution cache not saved: the build failed, so the resolution state may be incomplete.')
    return false
  }
  const present = await Promise.all(
    state.paths.map((p) =>
      fs.stat(p).then(
        () => true,
        () => false,
      ),
    ),
  )
  if (!present.includes(true)) {
    log.info(
      `SwiftPM resolution cache not saved: none of ${state.paths.map((p) => path.basename(p)).join(', ')} exists under .build.`,
    )
    return false
  }
  // The same path list as the restore: the Actions cache keys entries by it too. Missing ones are skipped.
  const saved = await cache.save(state.paths, state.keys.primary)
  if (saved) log.info(`SwiftPM resolution cache saved as ${state.keys.primary}.`)
  return saved
}
