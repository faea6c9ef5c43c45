import * as tc from '@actions/tool-cache'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import type { CacheService } from './cache-service.js'
import { Env, Inputs } from '../constants.js'
import { errorMessage, InputError, ProjectError } from '../errors.js'
import type { InputReader } from '../inputs/inputs.js'
import type { Log } from '../log.js'
import { sha256File } from '../keys/toolchain.js'

/**
 * Installs Scipio from its GitHub release's artifact bundle, the asset `nest install giginet/Scipio` uses:
 * `scipio-<version>.artifactbundle.zip`, holding `scipio.artifactbundle/info.json` and one binary per variant
 * (`scipio-<version>-macos/<triple>/bin/scipio`). The zip's SHA-256 is what Scipio's release notes list as
 * "Artifact bundle checksum". Installed bundles go to the runner's tool cache (same runner) and the zip to
 * GitHub's Actions cache (later runners).
 */

export interface ScipioInstallOptions {
  version: string
  /** Lowercase hex SHA-256 of the bundle zip; absent: not verified (a warning says so). */
  checksum?: string
}

export interface ScipioInstall {
  path: string
  version: string
  source: 'tool cache' | 'Actions cache' | 'download'
}

const defaultDownloadBase = 'https://github.com/giginet/Scipio/releases/download'
const toolName = 'scipio'
/** Written into the installed bundle: the SHA-256 of the zip it came from. */
const markerFile = '.scipio-s3-cache-bundle.json'

export function readScipioInstall(read: InputReader): ScipioInstallOptions | undefined {
  const version = read(Inputs.ScipioVersion)
  const checksum = read(Inputs.ScipioChecksum).toLowerCase()
  if (!version) {
    if (checksum)
      throw new InputError(
        Inputs.ScipioChecksum,
        `needs '${Inputs.ScipioVersion}' (the release the checksum belongs to).`,
      )
    return undefined
  }
  if (/^v\d/.test(version)) {
    throw new InputError(
      Inputs.ScipioVersion,
      `'${version}': Scipio's release tags have no 'v'; use '${version.slice(1)}'.`,
    )
  }
  if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
    throw new InputError(Inputs.ScipioVersion, `'${version}' is not a Scipio release version; give one like 0.33.0.`)
  }
  if (checksum && !/^[0-9a-f]{64}$/.test(checksum)) {
    throw new InputError(Inputs.ScipioChecksum, `'${checksum}' is not a SHA-256 (64 hexadecimal digits).`)
  }
  return { version, ...(checksum ? { checksum } : {}) }
}

export function bundleFileName(version: string): string {
  return `scipio-${version}.artifactbundle.zip`
}

export function bundleUrl(version: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = (env[Env.ScipioDownloadUrl] || defaultDownloadBase).replace(/\/+$/, '')
  return `${base}/${version}/${bundleFileName(version)}`
}

/** The triples an artifact bundle names for this machine (SwiftPM's unversioned target triples). */
export function hostTriples(platform: NodeJS.Platform = process.platform, arch: string = process.arch): string[] {
  if (platform === 'darwin') return [`${arch === 'arm64' ? 'arm64' : 'x86_64'}-apple-macosx`]
  if (platform === 'linux') {
    const cpu = arch === 'arm64' ? 'aarch64' : 'x86_64'
    return [`${cpu}-unknown-linux-gnu`, `${cpu}-swift-linux-musl`]
  }
  return []
}

/** Key of the bundle zip in the Actions cache; a pinned checksum gets its own entry, so only verified zips share it. */
export function actionsCacheKey(
  options: ScipioInstallOptions,
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): string {
  return `scipio-s3-cache-scipio-v1-${options.version}-${platform}-${arch}-${options.checksum?.slice(0, 16) ?? 'unpinned'}`
}

interface Variant {
  path: string
  supportedTriples: string[]
}

/** The binary's path inside the bundle for one of `triples`, from the bundle's info.json. */
export function selectVariant(info: unknown, triples: string[], where: string): string {
  const artifacts = (info as { artifacts?: Record<string, { variants?: Variant[] }> } | null)?.artifacts
  const variants = artifacts?.[toolName]?.variants
  if (!Array.isArray(variants))
    throw new ProjectError(
      `${where} has no '${toolName}' artifact with variants: this is not Scipio's artifact bundle.`,
    )
  const match = variants.find(
    (v) => Array.isArray(v.supportedTriples) && v.supportedTriples.some((t) => triples.includes(t)),
  )
  if (!match) {
    const offered = variants.flatMap((v) => v.supportedTriples ?? []).join(', ')
    throw new ProjectError(
      `${where} has no Scipio binary for ${triples.join(' or ') || process.platform} (it has ${offered || 'none'}). Scipio runs on macOS.`,
    )
  }
  const relative = path.normalize(String(match.path))
  if (path.isAbsolute(relative) || relative.split(path.sep).includes('..')) {
    throw new ProjectError(`${where} names a binary outside the bundle ('${match.path}').`)
  }
  return relative
}

/** The bundle root (the folder with info.json): the extracted folder itself, or its one `*.artifactbundle` child. */
async function bundleRoot(extracted: string): Promise<string> {
  const entries = await fs.readdir(extracted, { withFileTypes: true })
  if (entries.some((e) => e.isFile() && e.name === 'info.json')) return extracted
  const bundles = entries.filter((e) => e.isDirectory() && e.name.endsWith('.artifactbundle'))
  if (bundles.length !== 1)
    throw new ProjectError(
      `The downloaded archive holds ${bundles.length} '.artifactbundle' folders, not one: it is not Scipio's artifact bundle.`,
    )
  return path.join(extracted, bundles[0]!.name)
}

async function binaryIn(root: string, triples: string[]): Promise<string> {
  const infoFile = path.join(root, 'info.json')
  let info: unknown
  try {
    info = JSON.parse(await fs.readFile(infoFile, 'utf8'))
  } catch (error) {
    throw new ProjectError(`Cannot read the artifact bundle's info.json: ${errorMessage(error)}`)
  }
  const binary = path.join(root, selectVariant(info, triples, "The artifact bundle's info.json"))
  const stat = await fs.stat(binary).catch(() => undefined)
  if (!stat?.isFile())
    throw new ProjectError(
      `The artifact bundle's info.json names ${path.relative(root, binary)}, which the bundle does not hold.`,
    )
  await fs.chmod(binary, 0o755)
  return binary
}

async function readMarker(dir: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await fs.readFile(path.join(dir, markerFile), 'utf8')) as { sha256?: string }).sha256
  } catch {
    return undefined
  }
}

/** tool-cache needs the runner's folders; outside a runner (a local run) they go under the temporary folder. */
function ensureRunnerFolders(env: NodeJS.ProcessEnv): void {
  env.RUNNER_TOOL_CACHE ||= path.join(os.tmpdir(), 'scipio-s3-cache', 'tool-cache')
  env.RUNNER_TEMP ||= path.join(os.tmpdir(), 'scipio-s3-cache', 'temp')
}

async function download(url: string, dest: string, options: ScipioInstallOptions): Promise<void> {
  try {
    await tc.downloadTool(url, dest)
  } catch (error) {
    if (error instanceof tc.HTTPError && error.httpStatusCode === 404) {
      throw new InputError(
        Inputs.ScipioVersion,
        `Scipio ${options.version} has no artifact bundle at ${url}; check that the release exists.`,
      )
    }
    throw new ProjectError(`Downloading Scipio ${options.version} from ${url} failed: ${errorMessage(error)}`)
  }
}

export interface InstallDeps {
  cache: CacheService
  log: Log
  env?: NodeJS.ProcessEnv
  platform?: NodeJS.Platform
  arch?: string
}

export async function installScipio(options: ScipioInstallOptions, deps: InstallDeps): Promise<ScipioInstall> {
  const { cache, log, env = process.env, platform = process.platform, arch = process.arch } = deps
  ensureRunnerFolders(env)
  const { version } = options
  const triples = hostTriples(platform, arch)

  const cached = tc.find(toolName, version, arch)
  if (cached) {
    const sha = await readMarker(cached)
    if (!options.checksum || sha === options.checksum) {
      return { path: await binaryIn(cached, triples), version, source: 'tool cache' }
    }
    log.warning(
      `The tool cache's Scipio ${version} came from a bundle with SHA-256 ${sha ?? 'unknown'}, not '${Inputs.ScipioChecksum}'; installing it again.`,
      { input: Inputs.ScipioChecksum },
    )
  }

  const work = path.join(env.RUNNER_TEMP!, 'scipio-s3-cache', `scipio-${version}`)
  await fs.rm(work, { recursive: true, force: true })
  const zip = path.join(work, bundleFileName(version))
  const key = actionsCacheKey(options, platform, arch)

  let source: ScipioInstall['source'] = 'Actions cache'
  let sha: string | undefined
  if (await cache.restore([zip], key)) {
    sha = await sha256File(zip).catch(() => undefined)
    if (sha === undefined || (options.checksum && sha !== options.checksum)) {
      log.warning(
        `The Actions cache's Scipio ${version} bundle (${key}) does not match '${Inputs.ScipioChecksum}'; downloading it again.`,
        { input: Inputs.ScipioChecksum },
      )
      await fs.rm(zip, { force: true })
      sha = undefined
    }
  }
  if (sha === undefined) {
    source = 'download'
    const url = bundleUrl(version, env)
    log.info(`Downloading Scipio ${version} from ${url}`)
    await download(url, zip, options)
    sha = await sha256File(zip)
    if (options.checksum && sha !== options.checksum) {
      throw new InputError(
        Inputs.ScipioChecksum,
        `the artifact bundle at ${url} has SHA-256 ${sha}, not ${options.checksum}. Check the value against Scipio ${version}'s release notes ("Artifact bundle checksum"); the bundle was not installed.`,
      )
    }
    if (!options.checksum) {
      log.warning(
        `Scipio ${version} was installed unverified: set '${Inputs.ScipioChecksum}: ${sha}' to pin this bundle (compare it with the release notes' "Artifact bundle checksum").`,
        {
          input: Inputs.ScipioChecksum,
        },
      )
    }
  }

  const root = await bundleRoot(await tc.extractZip(zip, path.join(work, 'extracted')))
  await binaryIn(root, triples)
  await fs.writeFile(path.join(root, markerFile), JSON.stringify({ sha256: sha, version }))
  const installed = await tc.cacheDir(root, toolName, version, arch)
  if (source === 'download') await cache.save([zip], key)
  return { path: await binaryIn(installed, triples), version, source }
}

/** The scipio to run: `scipio-path` wins; else the installed `scipio-version`; else undefined (PATH). */
export async function scipioForRun(
  scipioPath: string | undefined,
  options: ScipioInstallOptions | undefined,
  deps: InstallDeps,
): Promise<{ path?: string; install?: ScipioInstall }> {
  if (scipioPath) {
    if (options)
      deps.log.info(
        `'${Inputs.ScipioPath}' is set, so Scipio ${options.version} ('${Inputs.ScipioVersion}') is not installed.`,
      )
    return { path: scipioPath }
  }
  if (!options) return {}
  const install = await installScipio(options, deps)
  deps.log.info(`Scipio ${install.version} from the ${install.source}: ${install.path}`)
  return { path: install.path, install }
}
