import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { actionsCacheService, type CacheService } from '../scipio/cache-service.js'
import { Inputs } from '../constants.js'
import { ProjectError } from '../errors.js'
import { readScipioInstall, scipioForRun, type ScipioInstall } from '../scipio/install.js'
import { maskSecrets, readConfig, type Config, type InputReader } from '../inputs/inputs.js'
import { planKeys, type KeyPlan } from '../keys/keys.js'
import { scopeLayout, type Layout } from '../bucket/layout.js'
import type { Log } from '../log.js'
import { findResolvedFile, readResolvedFile, type ResolvedFile } from '../keys/resolved.js'
import { registerSecret } from '../secrets.js'
import { readSwiftpmCacheEnabled } from '../scipio/swiftpm-cache.js'
import { createStorage, type Storage } from '../storage/index.js'
import { detectToolchain, type Toolchain } from '../keys/toolchain.js'

/** Everything a stage needs, worked out before the first network call. */
export interface RunSetup {
  config: Config
  resolved: ResolvedFile
  toolchain: Toolchain
  plan: KeyPlan
  storage: Storage
  /** Present when this run installed (or found installed) `scipio-version`. */
  scipioInstall?: ScipioInstall
  /** GitHub's Actions cache (Scipio download, SwiftPM resolution); faults are warnings. */
  cache: CacheService
  /** `cache-swiftpm`: cache SwiftPM's resolution state around the build. */
  cacheSwiftpm: boolean
  /** With `scope`: the scope's layout, read before the shared cache and the only one written. */
  scope?: Layout
}

/** Must run before anything can print: masks every secret input in the log and in our own texts. */
export function protectSecrets(read: InputReader): void {
  maskSecrets(read)
  for (const name of [Inputs.AccessKeyId, Inputs.SecretAccessKey, Inputs.SessionToken]) registerSecret(read(name))
}

async function readManifest(config: Config): Promise<Buffer> {
  const file = path.join(config.packageDirectory, 'Package.swift')
  try {
    return await fs.readFile(file)
  } catch {
    throw new ProjectError(
      `${file} does not exist: '${Inputs.PackageDirectory}' must name the Scipio dependencies package (the folder with Package.swift).`,
      file,
    )
  }
}

export async function setUp(
  read: InputReader,
  log: Log,
  cache: CacheService = actionsCacheService(log),
): Promise<RunSetup> {
  const config = readConfig(read)
  const scipioRelease = readScipioInstall(read)
  const cacheSwiftpm = readSwiftpmCacheEnabled(read)
  const resolvedPath = config.resolvedFile ?? (await findResolvedFile(config.packageDirectory))
  const resolved = await readResolvedFile(resolvedPath)
  const manifest = await readManifest(config)
  const scipio = await scipioForRun(config.scipioPath, scipioRelease, { cache, log })
  const toolchain = await detectToolchain(scipio.path)
  const plan = planKeys(config.prefix, resolved.pins, manifest, config.build, toolchain, config.keySalt)
  const storage = createStorage(config.storage, config.stallTimeoutMs)
  log.info(
    `${resolved.pins.length} pinned packages in ${path.relative(process.cwd(), resolvedPath) || resolvedPath}; ` +
      `Xcode ${toolchain.xcodeVersion} (${toolchain.xcodeBuildVersion}), ${toolchain.clangVersion}, Scipio at ${toolchain.scipioPath}; cache at ${storage.description}`,
  )
  for (const pkg of plan.packages) log.debug(`package key of ${pkg.pin.identity}: ${pkg.packageKey} (${pkg.indexKey})`)
  log.debug(`set key: ${plan.setKey} (${plan.completeKey})`)
  const scope = config.scope === undefined ? undefined : scopeLayout(config.prefix, config.scope, plan)
  if (scope)
    log.info(
      `Scope '${scope.scope}': reading ${scope.prefix}/ before the shared cache` +
        (config.produce ? `; uploads go there only.` : '.'),
    )
  return {
    config,
    resolved,
    toolchain,
    plan,
    storage,
    cache,
    cacheSwiftpm,
    ...(scope ? { scope } : {}),
    ...(scipio.install ? { scipioInstall: scipio.install } : {}),
  }
}
