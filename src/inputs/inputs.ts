import * as core from '@actions/core'
import * as path from 'node:path'
import { Inputs } from '../constants.js'
import { InputError } from '../errors.js'
import { readScope } from './scope.js'

export type Configuration = 'debug' | 'release'
export type FrameworkType = 'dynamic' | 'static' | 'mergeable'

export interface BuildOptions {
  configuration: Configuration
  frameworkType: FrameworkType
  supportSimulators: boolean
  embedDebugSymbols: boolean
  libraryEvolution: boolean
  extraArgs: string[]
}

export interface S3Settings {
  kind: 's3'
  bucket: string
  region: string
  endpoint?: string
  forcePathStyle: boolean
  /** Absent: the AWS SDK's default provider chain (environment, OIDC web identity, profile, instance role). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
}

export interface PublicUrlSettings {
  kind: 'public-url'
  baseUrl: string
}

export type StorageSettings = S3Settings | PublicUrlSettings

export interface Config {
  consume: boolean
  produce: boolean
  storage: StorageSettings
  shouldPublish: boolean
  prefix: string
  packageDirectory: string
  outputDirectory: string
  /** Absent: looked up where SwiftPM and Xcode put it. */
  resolvedFile?: string
  build: BuildOptions
  /** Absent: `scipio` from PATH. */
  scipioPath?: string
  keySalt: string
  concurrency: number
  /** A consumer that cannot restore everything fails instead of building. */
  failOnCacheMiss: boolean
  /** Cache errors fail the step instead of warning. */
  strict: boolean
  /** Upload even when the event may run untrusted code (pull requests). */
  allowUntrustedUpload: boolean
  stallTimeoutMs: number
  cacheTimeoutMs: number
  /** Also store and adopt scipio-s3-storage's `.aar` objects (producer). */
  scipioS3StorageObjects: boolean
  /** The scope this run reads first and writes into (inputs/scope.ts); absent: the shared cache only. */
  scope?: string
  /** Write one run record at the end of the run (records/), for `scipio-s3-cache insights`. */
  recordRuns: boolean
}

/**
 * Reads one input; `getInput` trims and returns '' when unset. `commandLine` marks the command line's reader of its
 * flags, where a few inputs accept more (a scope of any name: inputs/scope.ts).
 */
export type InputReader = ((name: string) => string) & { readonly commandLine?: true }

export const actionInputReader: InputReader = (name) => core.getInput(name)

/** A reader whose `mode` is fixed: the restore and save sub-actions have no `mode` input. */
export function withMode(read: InputReader, mode: 'consumer' | 'producer'): InputReader {
  return Object.assign(
    (name: string) => (name === Inputs.Mode ? mode : read(name)),
    read.commandLine ? { commandLine: true as const } : {},
  )
}

/** Marks every secret input before anything else can print it. */
export function maskSecrets(read: InputReader): void {
  for (const name of [Inputs.AccessKeyId, Inputs.SecretAccessKey, Inputs.SessionToken]) {
    const value = read(name)
    if (value) core.setSecret(value)
  }
}

export function readBoolean(read: InputReader, name: string, fallback: boolean): boolean {
  const raw = read(name)
  if (raw === '') return fallback
  const value = raw.toLowerCase()
  if (['true', 'yes', '1', 'on'].includes(value)) return true
  if (['false', 'no', '0', 'off'].includes(value)) return false
  throw new InputError(name, `'${raw}' is not a boolean; use true or false.`)
}

export function readChoice<T extends string>(read: InputReader, name: string, choices: readonly T[], fallback: T): T {
  const raw = read(name)
  if (raw === '') return fallback
  const match = choices.find((c) => c === raw.toLowerCase())
  if (match === undefined) throw new InputError(name, `'${raw}' is not one of ${choices.join(', ')}.`)
  return match
}

export function readPositiveInt(read: InputReader, name: string, fallback: number, max: number): number {
  const raw = read(name)
  if (raw === '') return fallback
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new InputError(name, `'${raw}' is not a whole number from 1 to ${max}.`)
  }
  return Number(raw)
}

export function readPositiveNumber(read: InputReader, name: string, fallback: number, max: number): number {
  const raw = read(name)
  if (raw === '') return fallback
  if (!/^\d+(\.\d+)?$/.test(raw) || Number(raw) <= 0 || Number(raw) > max) {
    throw new InputError(name, `'${raw}' is not a number above 0 and at most ${max}.`)
  }
  return Number(raw)
}

export function readMode(read: InputReader): { consume: boolean; produce: boolean } {
  const raw = read(Inputs.Mode) || 'consumer'
  const parts = raw
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((p) => p.toLowerCase())
  const unknown = parts.filter((p) => p !== 'consumer' && p !== 'producer')
  if (parts.length === 0 || unknown.length > 0) {
    throw new InputError(Inputs.Mode, `'${raw}' is not valid; use consumer, producer, or consumer,producer.`)
  }
  return { consume: parts.includes('consumer'), produce: parts.includes('producer') }
}

// S3 bucket naming rules (general purpose buckets), checked before any request is made.
const bucketPattern = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/
export function validateBucket(bucket: string): void {
  if (!bucketPattern.test(bucket) || bucket.includes('..') || /^\d+\.\d+\.\d+\.\d+$/.test(bucket)) {
    throw new InputError(
      Inputs.Bucket,
      `'${bucket}' is not a valid S3 bucket name (3-63 characters: lowercase letters, digits, '.' and '-', starting and ending with a letter or digit).`,
    )
  }
}

const regionPattern = /^[a-z]{2}(-[a-z0-9]+)+-\d+$/
export function validateRegion(region: string, hasEndpoint: boolean): void {
  // S3-compatible stores use free-form region names (MinIO "us-east-1", R2 "auto").
  if (hasEndpoint ? !/^[A-Za-z0-9-]+$/.test(region) : !regionPattern.test(region)) {
    throw new InputError(
      Inputs.Region,
      `'${region}' is not a valid AWS region (for example us-east-1 or ap-northeast-1).`,
    )
  }
}

export function readUrl(read: InputReader, name: string): string | undefined {
  const raw = read(name)
  if (raw === '') return undefined
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new InputError(name, `'${raw}' is not a URL; give an http:// or https:// address.`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InputError(name, `'${raw}' must start with http:// or https://.`)
  }
  if (url.username || url.password) throw new InputError(name, 'must not contain a user name or password.')
  return raw.replace(/\/+$/, '')
}

/** Splits extra-args like a shell would for plain words and quotes, without running a shell. */
export function splitArgs(raw: string, name: string): string[] {
  const args: string[] = []
  let current = ''
  let quote: string | undefined
  let started = false
  for (const ch of raw) {
    if (quote) {
      if (ch === quote) quote = undefined
      else current += ch
    } else if (ch === '"' || ch === "'") {
      quote = ch
      started = true
    } else if (/\s/.test(ch)) {
      if (started) args.push(current)
      current = ''
      started = false
    } else {
      current += ch
      started = true
    }
  }
  if (quote) throw new InputError(name, 'has an unclosed quote.')
  if (started) args.push(current)
  return args
}

function readStorage(read: InputReader, produce: boolean): StorageSettings {
  const bucket = read(Inputs.Bucket)
  const publicUrl = readUrl(read, Inputs.PublicUrl)
  const endpoint = readUrl(read, Inputs.Endpoint)
  const accessKeyId = read(Inputs.AccessKeyId)
  const secretAccessKey = read(Inputs.SecretAccessKey)
  const sessionToken = read(Inputs.SessionToken)
  const forcePathStyle = readBoolean(read, Inputs.ForcePathStyle, false)

  if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
    const missing = accessKeyId ? Inputs.SecretAccessKey : Inputs.AccessKeyId
    throw new InputError(
      missing,
      `is empty while its pair is set; give both ${Inputs.AccessKeyId} and ${Inputs.SecretAccessKey}, or neither.`,
    )
  }
  if (sessionToken && !accessKeyId) {
    throw new InputError(Inputs.SessionToken, `needs ${Inputs.AccessKeyId} and ${Inputs.SecretAccessKey} too.`)
  }
  if (!bucket) {
    if (produce) {
      throw new InputError(
        Inputs.Bucket,
        `is required when mode includes producer: uploading needs a bucket and credentials (${Inputs.PublicUrl} is read-only).`,
      )
    }
    if (!publicUrl)
      throw new InputError(Inputs.Bucket, `is required (or give ${Inputs.PublicUrl} for anonymous read-only access).`)
    if (accessKeyId) throw new InputError(Inputs.Bucket, `is required when credentials are given.`)
    return { kind: 'public-url', baseUrl: publicUrl }
  }
  validateBucket(bucket)
  // One rule: a run that only consumes reads through public-url unless it has credentials (key inputs or AWS_*
  // variables). The region is then never used, so it is not required.
  if (!produce && publicUrl && !accessKeyId && !hasAmbientAwsCredentials()) {
    if (read(Inputs.Region)) validateRegion(read(Inputs.Region), endpoint !== undefined)
    return { kind: 'public-url', baseUrl: publicUrl }
  }
  const region = read(Inputs.Region) || (endpoint ? 'us-east-1' : '')
  if (!region)
    throw new InputError(
      Inputs.Region,
      `is required with ${Inputs.Bucket} (the bucket's AWS region, for example us-east-1).`,
    )
  validateRegion(region, endpoint !== undefined)

  return {
    kind: 's3',
    bucket,
    region,
    forcePathStyle,
    ...(endpoint ? { endpoint } : {}),
    ...(accessKeyId
      ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } }
      : {}),
  }
}

/** Whether the environment names AWS credentials (configure-aws-credentials, OIDC, a profile). */
export function hasAmbientAwsCredentials(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(
    env.AWS_ACCESS_KEY_ID ||
    env.AWS_WEB_IDENTITY_TOKEN_FILE ||
    env.AWS_PROFILE ||
    env.AWS_CONTAINER_CREDENTIALS_FULL_URI ||
    env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI,
  )
}

/** A miss can only fail a run that restores: in a producer-only run the input would do nothing, so it is refused. */
function readFailOnCacheMiss(read: InputReader, consume: boolean): boolean {
  const fail = readBoolean(read, Inputs.FailOnCacheMiss, false)
  if (fail && !consume) {
    throw new InputError(
      Inputs.FailOnCacheMiss,
      `applies only when mode includes consumer (a producer-only run restores nothing); remove it, or use 'mode: consumer,producer'.`,
    )
  }
  return fail
}

function readPrefix(read: InputReader): string {
  const raw = read(Inputs.Prefix).replace(/^\/+|\/+$/g, '')
  if (raw.split('/').some((part) => part === '' || part === '.' || part === '..') && raw !== '') {
    throw new InputError(Inputs.Prefix, `'${raw}' has an empty, '.' or '..' path segment.`)
  }
  return raw
}

export function readConfig(
  read: InputReader,
  workspace: string = process.env.GITHUB_WORKSPACE || process.cwd(),
): Config {
  const { consume, produce } = readMode(read)
  const storage = readStorage(read, produce)
  const packageDirectory = path.resolve(workspace, read(Inputs.PackageDirectory) || '.')
  const outputDirectory = path.resolve(
    workspace,
    read(Inputs.OutputDirectory) || path.join(packageDirectory, 'XCFrameworks'),
  )
  const resolvedFile = read(Inputs.ResolvedFile)
  const scipioPath = read(Inputs.ScipioPath)
  const scope = readScope(read)
  const scipioS3StorageObjects = readBoolean(read, Inputs.ScipioS3StorageObjects, false)
  if (scope !== undefined && produce && scipioS3StorageObjects) {
    throw new InputError(
      Inputs.ScipioS3StorageObjects,
      `writes scipio-s3-storage's objects into the shared cache, which a run with '${Inputs.Scope}' never writes. ` +
        `Set it only in the producer that writes the shared cache (without '${Inputs.Scope}').`,
    )
  }
  return {
    consume,
    produce,
    storage,
    shouldPublish: readBoolean(read, Inputs.ShouldPublish, false),
    prefix: readPrefix(read),
    packageDirectory,
    outputDirectory,
    ...(resolvedFile ? { resolvedFile: path.resolve(workspace, resolvedFile) } : {}),
    build: {
      configuration: readChoice(read, Inputs.Configuration, ['debug', 'release'] as const, 'release'),
      frameworkType: readChoice(read, Inputs.FrameworkType, ['dynamic', 'static', 'mergeable'] as const, 'dynamic'),
      supportSimulators: readBoolean(read, Inputs.SupportSimulators, false),
      embedDebugSymbols: readBoolean(read, Inputs.EmbedDebugSymbols, false),
      libraryEvolution: readBoolean(read, Inputs.LibraryEvolution, false),
      extraArgs: splitArgs(read(Inputs.ExtraArgs), Inputs.ExtraArgs),
    },
    ...(scipioPath ? { scipioPath: path.resolve(workspace, scipioPath) } : {}),
    keySalt: read(Inputs.KeySalt),
    concurrency: readPositiveInt(read, Inputs.Concurrency, 8, 64),
    failOnCacheMiss: readFailOnCacheMiss(read, consume),
    strict: readBoolean(read, Inputs.Strict, false),
    allowUntrustedUpload: readBoolean(read, Inputs.AllowUntrustedUpload, false),
    stallTimeoutMs: readPositiveNumber(read, Inputs.StallTimeoutSeconds, 60, 3600) * 1000,
    cacheTimeoutMs: readPositiveNumber(read, Inputs.CacheTimeoutMinutes, 30, 360) * 60_000,
    scipioS3StorageObjects,
    ...(scope !== undefined ? { scope } : {}),
    recordRuns: readBoolean(read, Inputs.RecordRuns, true),
  }
}
