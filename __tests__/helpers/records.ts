import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { RunsFolder } from '../../src/constants.js'
import type { TestCredentials } from './s3-server.js'
import type { Store } from './store.js'

/** Run records (src/records/) in the tests: the runner's variables a record names, and what a bucket holds. */

/** The variables of a GitHub Actions job that a record reads (and the run id, attempt and job its name carries). */
export function runnerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    GITHUB_REPOSITORY: 'acme/ios-app',
    GITHUB_WORKFLOW: 'CI',
    GITHUB_RUN_ID: '9000000001',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_JOB: 'build',
    GITHUB_REF_NAME: 'main',
    RUNNER_OS: 'macOS',
    RUNNER_ARCH: 'ARM64',
    ...extra,
  }
}

/** A request (as the proxy recorded it) for an object in a runs folder: a record or a roll-up. */
export const isRunsRequest = (r: { url: string }) => r.url.includes(`/${RunsFolder}/`)

export interface StoredRecord {
  key: string
  /** The key's last part, without `.json`. */
  name: string
  record: Record<string, unknown> & {
    via: string
    mode: string
    counts: Record<string, number>
    reasons: Record<string, number>
    misses: Record<string, string>[]
    bytes: { down: number; up: number }
    ms: Record<string, number>
  }
  bytes: number
}

/**
 * Every record under `prefix` ('' for none) in the bucket, read from s3rver directly (with `credentials`, when the
 * store accepts others than the test credentials), in key order.
 */
export async function storedRecords(
  store: Store,
  bucket: string,
  prefix: string,
  credentials?: TestCredentials,
): Promise<StoredRecord[]> {
  const client = store.s3.client(credentials)
  const keys: string[] = []
  let token: string | undefined
  do {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: `${prefix ? `${prefix}/` : ''}${RunsFolder}/`,
        ...(token ? { ContinuationToken: token } : {}),
      }),
    )
    keys.push(...(page.Contents ?? []).map((o) => o.Key!))
    token = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (token)
  keys.sort()
  return Promise.all(
    keys
      .filter((key) => !key.includes('/rollups/'))
      .map(async (key) => {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        const text = await out.Body!.transformToString()
        return {
          key,
          name: key.slice(key.lastIndexOf('/') + 1, -'.json'.length),
          record: JSON.parse(text) as StoredRecord['record'],
          bytes: Buffer.byteLength(text),
        }
      }),
  )
}

/** Puts `count` small objects into `prefix`'s runs folder, as many runs would leave there. */
export async function putRecords(store: Store, bucket: string, prefix: string, count: number): Promise<void> {
  const client = store.s3.client()
  let next = 0
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const key = `${prefix}/${RunsFolder}/2026/11/${String(1 + (i % 28)).padStart(2, '0')}/${9_000_000_000 + i}-1-build-action-00000000.json`
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{}' }))
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
}
