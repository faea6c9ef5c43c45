import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ServiceException,
  type ObjectCannedACL,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { Readable } from 'node:stream'
import { Inputs } from '../constants.js'
import { PreconditionFailedError, StorageError } from '../errors.js'
import type { S3Settings } from '../inputs/inputs.js'
import { redact } from '../secrets.js'
import type { GetFailure, PlainGet } from './plain-get.js'
import { RefusedReadError } from './refusals.js'
import type { DirectGets, ListedObject, PutOptions, Storage, StoredObject } from './storage.js'

export type Operation = 'GetObject' | 'HeadObject' | 'PutObject' | 'ListObjectsV2' | 'DeleteObjects'

const permissionFor: Record<Operation, string> = {
  GetObject: 's3:GetObject',
  HeadObject: 's3:GetObject',
  PutObject: 's3:PutObject',
  ListObjectsV2: 's3:ListBucket',
  DeleteObjects: 's3:DeleteObject',
}

const networkCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
])

/** Turns an SDK error into one sentence naming the bucket, the operation and the likely fix. */
export function describeS3Error(
  error: unknown,
  operation: Operation,
  settings: S3Settings,
  key: string,
  publicRead = false,
): StorageError {
  const where = `${operation} s3://${settings.bucket}/${key}`
  const e = error as S3ServiceException & { code?: string; $response?: { headers?: Record<string, string> } }
  const status = e?.$metadata?.httpStatusCode
  const name = e?.name ?? 'Error'
  const headers = e?.$response?.headers ?? {}
  const fail = (message: string, retryable = false) => new StorageError(redact(message), retryable, status, false)
  const fatal = (message: string) => new StorageError(redact(message), false, status, true)

  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(e?.message ?? '')) {
    return fatal(
      `${where}: no AWS credentials were found. Set the '${Inputs.AccessKeyId}' and '${Inputs.SecretAccessKey}' inputs, ` +
        `or run aws-actions/configure-aws-credentials before this step.`,
    )
  }
  if (name === 'AccessControlListNotSupported') {
    return fatal(
      `${where}: the bucket has ACLs disabled (Object Ownership "Bucket owner enforced"), so 'public-read' is rejected. ` +
        `Either set '${Inputs.ShouldPublish}: false' and grant public read with a bucket policy, or enable ACLs on the bucket.`,
    )
  }
  if (name === 'PermanentRedirect' || name === 'AuthorizationHeaderMalformed' || status === 301) {
    const region = headers['x-amz-bucket-region']
    return fatal(
      `${where}: the bucket is not in region '${settings.region}'` +
        (region
          ? `; it is in '${region}'. Set '${Inputs.Region}: ${region}'.`
          : `. Set '${Inputs.Region}' to the bucket's region.`),
    )
  }
  if (name === 'NoSuchBucket') {
    return fatal(
      `${where}: the bucket '${settings.bucket}' does not exist${settings.endpoint ? ` at ${settings.endpoint}` : ` in ${settings.region}`}. Check '${Inputs.Bucket}' and '${Inputs.Region}'.`,
    )
  }
  if (
    name === 'InvalidAccessKeyId' ||
    name === 'SignatureDoesNotMatch' ||
    name === 'ExpiredToken' ||
    name === 'InvalidToken'
  ) {
    return fatal(
      `${where}: the credentials were rejected (${name}). Check '${Inputs.AccessKeyId}', '${Inputs.SecretAccessKey}' and '${Inputs.SessionToken}', or that the role session has not expired.`,
    )
  }
  if ((name === 'AccessDenied' || status === 403) && (operation === 'GetObject' || operation === 'HeadObject')) {
    // Without s3:ListBucket, S3 answers a missing key this way too: a miss for this key (storage/refusals.ts).
    return new RefusedReadError(
      redact(where),
      `they need s3:GetObject on arn:aws:s3:::${settings.bucket}/*`,
      `S3 answers 403, not 404, for a missing key to credentials without s3:ListBucket on arn:aws:s3:::${settings.bucket}`,
    )
  }
  if (name === 'AccessDenied' || status === 403) {
    const permission =
      operation === 'PutObject' && publicRead ? 's3:PutObject and s3:PutObjectAcl' : permissionFor[operation]
    const resource =
      operation === 'ListObjectsV2' ? `arn:aws:s3:::${settings.bucket}` : `arn:aws:s3:::${settings.bucket}/*`
    return fatal(`${where}: access denied (403). The credentials need ${permission} on ${resource}.`)
  }
  const code = e?.code ?? (e as { cause?: { code?: string } })?.cause?.code
  if (code && networkCodes.has(code)) {
    const message = `${where}: cannot reach ${settings.endpoint ?? `S3 in ${settings.region}`} (${code}). Check '${Inputs.Endpoint}' and the runner's network.`
    // A refused or unresolvable endpoint is a setting; a reset mid-transfer is worth another try.
    return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT'
      ? fail(message, true)
      : new StorageError(redact(message), true, status, true)
  }
  if (name === 'AbortError') return fail(`${where}: aborted (the cache time limit was reached).`)
  if (name === 'TimeoutError' || name === 'RequestTimeout') return fail(`${where}: timed out.`, true)
  const retryable = status === undefined || status >= 500 || status === 429 || name === 'SlowDown'
  return fail(`${where} failed: ${name}${status ? ` (HTTP ${status})` : ''}: ${e?.message ?? String(error)}`, retryable)
}

function isNotFound(error: unknown): boolean {
  const e = error as S3ServiceException
  return (
    e?.name === 'NoSuchKey' ||
    e?.name === 'NotFound' ||
    (e?.$metadata?.httpStatusCode === 404 && e?.name !== 'NoSuchBucket')
  )
}

/** The store refused a conditional write because the object is not as the writer saw it (see PreconditionFailedError). */
function preconditionFailure(error: unknown, options: PutOptions, where: string): PreconditionFailedError | undefined {
  const e = error as S3ServiceException
  const status = e?.$metadata?.httpStatusCode
  const name = e?.name
  if (name === 'PreconditionFailed' || status === 412)
    return new PreconditionFailedError(`${where}: 412 PreconditionFailed`, 412)
  if (name === 'ConditionalRequestConflict' || status === 409)
    return new PreconditionFailedError(`${where}: 409 ConditionalRequestConflict`, 409)
  if (status === 304) return new PreconditionFailedError(`${where}: 304 Not Modified`, 304)
  if (options.ifMatch !== undefined && isNotFound(error))
    return new PreconditionFailedError(`${where}: 404 NoSuchKey`, 404)
  return undefined
}

/** An older S3-compatible server that does not know the conditional headers and says so (501, or 400 NotImplemented). */
function conditionsNotImplemented(error: unknown): boolean {
  const e = error as S3ServiceException
  return e?.name === 'NotImplemented' || e?.$metadata?.httpStatusCode === 501
}

function isConditional(options: PutOptions): boolean {
  return options.ifNoneMatch !== undefined || options.ifMatch !== undefined
}

const MiB = 1024 * 1024
/**
 * An upload holds about (queueSize + 1) parts in memory, and `concurrency` uploads run at once: 16 MiB x 4
 * peaked at 670-730 MB RSS for 8 uploads (bench, cold save). 5 MiB (S3's minimum part) x 2 bounds it near
 * 8 x 15 MiB; the parallelism comes from the concurrent archives.
 */
const uploadPartSize = 5 * MiB
const uploadQueueSize = 2
/** S3's limit for one PUT. */
const singlePutLimit = 5 * 1024 ** 3

/** Sockets per host: above the SDK's 50, so a restore's 64 small downloads in flight never queue for one. */
const maxSockets = 96

/** The SDK's own attempts of each request (its standard retry mode), inside each of the action's attempts. */
export const sdkMaxAttempts = 5

/** One client configuration for every S3 operation (the cache itself and the CLI's housekeeping). */
export function createS3Client(settings: S3Settings, idleTimeoutMs = 60_000): S3Client {
  // Many S3-compatible servers store aws-chunked bodies with trailing checksums corrupted; send plain bodies there.
  const checksums = settings.endpoint ? ('WHEN_REQUIRED' as const) : ('WHEN_SUPPORTED' as const)
  return new S3Client({
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    maxAttempts: sdkMaxAttempts,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
    // socketTimeout is an idle timeout: a long transfer is fine as long as bytes keep moving.
    // Keep-alive sockets, enough for a restore's small downloads in flight at once (restore/in-flight.ts).
    requestHandler: {
      connectionTimeout: 10_000,
      socketTimeout: idleTimeoutMs,
      httpAgent: { keepAlive: true, maxSockets },
      httpsAgent: { keepAlive: true, maxSockets },
    },
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
  })
}

/** The keys from `from` through `through`, both included. */
export interface KeyRange {
  from: string
  through: string
}

/** S3's order of keys: by their UTF-8 bytes (JavaScript's `<` compares UTF-16 units, which differs past U+FFFF). */
export function keyOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

export interface ListOptions {
  /** Keys per ListObjectsV2 page (S3 caps it at 1000). */
  pageSize?: number
  /** Only the keys in this range: listed from just before its first key, stopping after its last. */
  range?: KeyRange
  /** Only the keys after this one (S3's StartAfter): what sorts before it is never sent. */
  startAfter?: string
  signal?: AbortSignal
}

/**
 * Every object whose key starts with `prefix` (and, with `range`, lies in it), with its ETag, following
 * continuation tokens page by page: the cache's one listing of its prefix and prune's ranged listings.
 */
export async function listObjects(
  client: S3Client,
  settings: S3Settings,
  prefix: string,
  { pageSize = 1000, range, startAfter, signal }: ListOptions = {},
): Promise<ListedObject[]> {
  const objects: ListedObject[] = []
  let token: string | undefined
  let past = false
  do {
    let page
    try {
      page = await client.send(
        new ListObjectsV2Command({
          Bucket: settings.bucket,
          MaxKeys: pageSize,
          ...(prefix ? { Prefix: prefix } : {}),
          ...(token ? { ContinuationToken: token } : {}),
          // Any key before the first one will do: S3 lists what follows it, in key order.
          ...(range && !token ? { StartAfter: range.from.slice(0, -1) } : {}),
          ...(startAfter && !range && !token ? { StartAfter: startAfter } : {}),
        }),
        signal ? { abortSignal: signal } : {},
      )
    } catch (error) {
      throw describeS3Error(error, 'ListObjectsV2', settings, prefix)
    }
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined || (range && keyOrder(o.Key, range.from) < 0)) continue
      if (range && keyOrder(o.Key, range.through) > 0) {
        past = true
        break
      }
      objects.push({
        key: o.Key,
        size: o.Size ?? 0,
        lastModified: o.LastModified ?? new Date(0),
        ...(o.ETag ? { etag: o.ETag } : {}),
      })
      // The range's last key: no further page is needed to see where it ends.
      if (range && o.Key === range.through) {
        past = true
        break
      }
    }
    token = page.IsTruncated && !past ? page.NextContinuationToken : undefined
  } while (token)
  return objects
}

/** Internal: the store does not implement conditional writes; put() falls back to a plain write. */
class NotImplementedError extends Error {
  constructor(override readonly cause: unknown) {
    super('conditional writes are not implemented by this store')
  }
}

export class S3Storage implements Storage {
  readonly writable = true
  readonly description: string
  conditionsIgnored = false
  private readonly client: S3Client

  constructor(
    private readonly settings: S3Settings,
    /** A request with no bytes moving for this long fails (and is retried). */
    idleTimeoutMs = 60_000,
  ) {
    this.description = `s3://${settings.bucket}${settings.endpoint ? ` at ${settings.endpoint}` : ` (${settings.region})`}`
    this.client = createS3Client(settings, idleTimeoutMs)
  }

  private bucketKey(key: string) {
    return { Bucket: this.settings.bucket, Key: key }
  }

  /**
   * Archive downloads from the extraction threads: the SDK signs each GET here (a URL valid for 15 minutes,
   * from the moment the restore is ready to send it), the thread sends it with Node's own client. A failure
   * becomes the same sentence as get()'s.
   */
  readonly direct: DirectGets = {
    request: async (key: string): Promise<PlainGet> => {
      try {
        const url = await getSignedUrl(this.client, new GetObjectCommand(this.bucketKey(key)), { expiresIn: 900 })
        return { url, headers: {} }
      } catch (error) {
        throw describeS3Error(error, 'GetObject', this.settings, key)
      }
    },
    explain: (key: string, failure: GetFailure): StorageError | undefined => {
      if (failure.kind === 'network')
        return describeS3Error(
          Object.assign(new Error(failure.message), { code: failure.code }),
          'GetObject',
          this.settings,
          key,
        )
      const error = Object.assign(new Error(failure.message ?? `HTTP ${failure.status}`), {
        name: failure.code ?? (failure.status === 404 ? 'NotFound' : 'UnknownError'),
        $metadata: { httpStatusCode: failure.status },
        ...(failure.region ? { $response: { headers: { 'x-amz-bucket-region': failure.region } } } : {}),
      })
      return isNotFound(error) ? undefined : describeS3Error(error, 'GetObject', this.settings, key)
    },
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    try {
      const out = await this.client.send(new HeadObjectCommand(this.bucketKey(key)))
      return { size: out.ContentLength ?? 0 }
    } catch (error) {
      if (isNotFound(error)) return undefined
      throw describeS3Error(error, 'HeadObject', this.settings, key)
    }
  }

  list(prefix: string, signal?: AbortSignal, startAfter?: string): Promise<ListedObject[]> {
    return listObjects(this.client, this.settings, prefix, {
      ...(signal ? { signal } : {}),
      ...(startAfter ? { startAfter } : {}),
    })
  }

  async get(key: string, signal?: AbortSignal): Promise<StoredObject | undefined> {
    try {
      const out = await this.client.send(
        new GetObjectCommand(this.bucketKey(key)),
        signal ? { abortSignal: signal } : {},
      )
      if (!(out.Body instanceof Readable))
        throw new StorageError(`GetObject s3://${this.settings.bucket}/${key}: no body in the answer`, true)
      return { body: out.Body, size: out.ContentLength ?? 0, ...(out.ETag ? { etag: out.ETag } : {}) }
    } catch (error) {
      if (error instanceof StorageError) throw error
      if (isNotFound(error)) return undefined
      throw describeS3Error(error, 'GetObject', this.settings, key)
    }
  }

  async put(key: string, body: Readable | Buffer, options: PutOptions): Promise<void> {
    if (!isConditional(options) || this.conditionsIgnored) return this.send(key, body, options, {})
    const conditions = {
      ...(options.ifNoneMatch ? { IfNoneMatch: options.ifNoneMatch } : {}),
      ...(options.ifMatch ? { IfMatch: options.ifMatch } : {}),
    }
    try {
      await this.send(key, body, options, conditions)
    } catch (error) {
      if (!(error instanceof NotImplementedError)) throw error
      this.conditionsIgnored = true
      if (Buffer.isBuffer(body)) return this.send(key, body, options, {})
      // A stream is spent: the caller's upload retry sends it again, unconditionally now.
      throw new StorageError(
        `PutObject s3://${this.settings.bucket}/${key}: the store does not implement conditional writes; writing without them`,
        true,
        501,
      )
    }
  }

  private async send(
    key: string,
    body: Readable | Buffer,
    options: PutOptions,
    conditions: { IfNoneMatch?: string; IfMatch?: string },
  ): Promise<void> {
    const acl: { ACL?: ObjectCannedACL } = options.publicRead
      ? { ACL: 'public-read' }
      : options.acl
        ? { ACL: options.acl }
        : {}
    const params = { ...this.bucketKey(key), ContentType: options.contentType, ...acl, ...conditions }
    try {
      const length = Buffer.isBuffer(body) ? body.length : options.size
      if (length !== undefined && length <= singlePutLimit) {
        await this.client.send(
          new PutObjectCommand({ ...params, Body: body, ContentLength: length }),
          options.signal ? { abortSignal: options.signal } : {},
        )
        return
      }
      // lib-storage sends one PUT for a small body and a multipart upload (parts in parallel) for a large one,
      // reading the stream part by part so memory stays bounded whatever the archive's size.
      const upload = new Upload({
        client: this.client,
        params: { ...params, Body: body },
        partSize: uploadPartSize,
        queueSize: uploadQueueSize,
        leavePartsOnError: false,
      })
      const abort = () => void upload.abort().catch(() => undefined)
      options.signal?.addEventListener('abort', abort, { once: true })
      try {
        await upload.done()
      } finally {
        options.signal?.removeEventListener('abort', abort)
      }
    } catch (error) {
      if (error instanceof StorageError) throw error
      const where = `PutObject s3://${this.settings.bucket}/${key}`
      if (conditions.IfMatch || conditions.IfNoneMatch) {
        if (conditionsNotImplemented(error)) throw new NotImplementedError(error)
        const failed = preconditionFailure(error, options, where)
        if (failed) throw failed
      }
      throw describeS3Error(error, 'PutObject', this.settings, key, options.publicRead || options.acl !== undefined)
    }
  }
}
