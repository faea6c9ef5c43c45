import { DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3'
import type { S3Settings } from '../inputs/inputs.js'
import { createS3Client, describeS3Error, listObjects, type KeyRange } from './s3.js'
import type { ListedObject } from './storage.js'

export { keyOrder, type KeyRange } from './s3.js'
export type { ListedObject } from './storage.js'

/**
 * Ranged listings with ETags and deleting, which only housekeeping needs (the cache itself never deletes). Kept
 * apart from the Storage interface: a public URL can do neither. The listing is the cache's own (listObjects).
 */

export interface DeleteFailure {
  key: string
  reason: string
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
  list(prefix: string, range?: KeyRange, startAfter?: string): Promise<ListedObject[]> {
    return listObjects(this.client, this.settings, prefix, {
      pageSize: this.pageSize,
      ...(range ? { range } : {}),
      ...(startAfter ? { startAfter } : {}),
    })
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
