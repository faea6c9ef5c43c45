import { DeleteObjectsCommand, type S3Client } from '@aws-sdk/client-s3'
import type { S3Settings } from '../inputs/inputs.js'
import { createS3Client, describeS3Error, listObjects } from './s3.js'
import type { ListedObject } from './storage.js'

/**
 * Deleting, which only housekeeping needs (the cache itself never deletes), and listing with a page size of
 * its own. Kept apart from the Storage interface: a public URL can do neither.
 */

export type { ListedObject }

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

  /** Every object whose key starts with `prefix`, following continuation tokens page by page. */
  list(prefix: string): Promise<ListedObject[]> {
    return listObjects(this.client, this.settings, prefix, this.pageSize)
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
