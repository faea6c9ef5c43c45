import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3'
import type { S3Settings } from '../inputs/inputs.js'
import { createS3Client, describeS3Error } from './s3.js'

/**
 * Listing and deleting, which only housekeeping needs (the cache itself never lists or deletes). Kept apart
 * from the Storage interface: a public URL can do neither.
 */

export interface ListedObject {
  key: string
  size: number
  lastModified: Date
  /** The object's version token as listed (S3 sends one for every object). */
  etag?: string
}

/** The keys from `from` through `through`, both included. */
export interface KeyRange {
  from: string
  through: string
}

export interface DeleteFailure {
  key: string
  reason: string
}

/** S3's order of keys: by their UTF-8 bytes (JavaScript's `<` compares UTF-16 units, which differs past U+FFFF). */
export function keyOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** S3 deletes at most 1000 keys per DeleteObjects request. */
export const deleteBatchSize = 1000

export class S3Admin {
  private readonly client: S3Client

  constructor(
    private readonly settings: S3Settings,
    /** Keys per ListObjectsV2 page (S3 caps it at 1000). */
    private readonly pageSize = 1000,
  ) {
    this.client = createS3Client(settings)
  }

  /**
   * Every object whose key starts with `prefix` (and, with `range`, lies in it), following continuation tokens
   * page by page. A range is listed from just before its first key and stops after its last.
   */
  async list(prefix: string, range?: KeyRange): Promise<ListedObject[]> {
    const objects: ListedObject[] = []
    let token: string | undefined
    let past = false
    do {
      let page
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.settings.bucket,
            MaxKeys: this.pageSize,
            ...(prefix ? { Prefix: prefix } : {}),
            ...(token ? { ContinuationToken: token } : {}),
            // Any key before the first one will do: S3 lists what follows it, in key order.
            ...(range && !token ? { StartAfter: range.from.slice(0, -1) } : {}),
          }),
        )
      } catch (error) {
        throw describeS3Error(error, 'ListObjectsV2', this.settings, prefix)
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
      }
      token = page.IsTruncated && !past ? page.NextContinuationToken : undefined
    } while (token)
    return objects
  }

  /** Deletes `keys` in batches; returns the keys S3 refused, with its reason. */
  async delete(keys: string[], onBatch?: (deleted: number) => void): Promise<DeleteFailure[]> {
    const failures: DeleteFailure[] = []
    for (let start = 0; start < keys.length; start += deleteBatchSize) {
      const batch = keys.slice(start, start + deleteBatchSize)
      let out
      try {
        out = await this.client.send(
          new DeleteObjectsCommand({
            Bucket: this.settings.bucket,
            Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
          }),
        )
      } catch (error) {
        throw describeS3Error(error, 'DeleteObjects', this.settings, batch[0] ?? '')
      }
      for (const e of out.Errors ?? [])
        failures.push({ key: e.Key ?? '?', reason: `${e.Code ?? 'Error'}: ${e.Message ?? ''}`.trim() })
      onBatch?.(batch.length - (out.Errors?.length ?? 0))
    }
    return failures
  }
}
