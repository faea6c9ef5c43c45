import * as exec from '@actions/exec'
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Inputs } from '../constants.js'
import { InputError, ProjectError } from '../errors.js'

/** What Scipio's own key depends on besides the package: Xcode, clang and the Scipio build. */
export interface Toolchain {
  xcodeVersion: string
  xcodeBuildVersion: string
  clangVersion: string
  /** Scipio has no --version; the SHA-256 of its executable identifies the build. */
  scipioSha256: string
  scipioPath: string
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    const stat = await fs.stat(file)
    if (!stat.isFile()) return false
    await fs.access(file, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

export async function which(command: string, searchPath: string = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, command)
    if (await isExecutable(candidate)) return candidate
  }
  return undefined
}

export async function locateScipio(
  scipioPath: string | undefined,
  platform: NodeJS.Platform = process.platform,
): Promise<string> {
  if (scipioPath) {
    if (await isExecutable(scipioPath)) return scipioPath
    throw new InputError(Inputs.ScipioPath, `'${scipioPath}' is not an executable file.`)
  }
  const found = await which('scipio')
  if (found) return found
  if (platform !== 'darwin') {
    throw new ProjectError(
      `Scipio was not found on PATH, and this runner is ${platform}: Scipio needs macOS and Xcode. ` +
        `Run this action on a macOS runner (runs-on: macos-15), or set '${Inputs.ScipioPath}'.`,
    )
  }
  throw new ProjectError(
    `Scipio was not found on PATH. Install it ('nest install giginet/Scipio') or set '${Inputs.ScipioPath}'.`,
  )
}

async function run(command: string, args: string[]): Promise<string> {
  const out = await exec.getExecOutput(command, args, { silent: true, ignoreReturnCode: true })
  if (out.exitCode !== 0) {
    throw new ProjectError(
      `'${command} ${args.join(' ')}' failed (exit ${out.exitCode}): ${out.stderr.trim() || out.stdout.trim()}`,
    )
  }
  return out.stdout
}

/** `xcodebuild -version` prints "Xcode 16.2" and "Build version 16C5032a". */
export function parseXcodeVersion(text: string): { xcodeVersion: string; xcodeBuildVersion: string } {
  const version = /^Xcode\s+(\S+)/m.exec(text)?.[1]
  const build = /^Build version\s+(\S+)/m.exec(text)?.[1]
  if (!version || !build)
    throw new ProjectError(`Cannot read the Xcode version from 'xcodebuild -version': ${JSON.stringify(text.trim())}`)
  return { xcodeVersion: version, xcodeBuildVersion: build }
}

/** `clang --version` prints "Apple clang version 16.0.0 (clang-1600.0.26.6)"; Scipio keeps the part in parentheses. */
export function parseClangVersion(text: string): string {
  const version = /Apple clang version \S+ \(([^)]+)\)/.exec(text)?.[1]
  if (!version)
    throw new ProjectError(`Cannot read the Apple clang version from 'clang --version': ${JSON.stringify(text.trim())}`)
  return version
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(file), hash)
  return hash.digest('hex')
}

export async function detectToolchain(scipioPath: string | undefined): Promise<Toolchain> {
  const scipio = await locateScipio(scipioPath)
  const xcrun = await which('xcrun')
  if (!xcrun) {
    throw new ProjectError(
      `'xcrun' was not found: Scipio needs Xcode. Run on a macOS runner with Xcode selected (xcode-select).`,
    )
  }
  const [xcode, clang, scipioSha256] = await Promise.all([
    run(xcrun, ['xcodebuild', '-version']),
    run(xcrun, ['clang', '--version']),
    sha256File(await fs.realpath(scipio)),
  ])
  return { ...parseXcodeVersion(xcode), clangVersion: parseClangVersion(clang), scipioSha256, scipioPath: scipio }
}
