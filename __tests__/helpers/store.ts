import { ListObjectsV2Command } from '@aws-sdk/client-s3'
import { afterAll, beforeAll } from 'vitest'
import type { S3Settings } from '../../src/inputs/inputs.js'
import { startProxy, type ConditionMode, type Proxy } from './proxy.js'
import { startS3Server, testCredentials, type S3Server, type TestCredentials } from './s3-server.js'

/**
 * A test file's S3 store: s3rver on 127.0.0.1 and the test proxy in front of it, both up for the file's tests.
 * The code under test talks to `endpoint` (the proxy), which honours conditional writes as Amazon S3, MinIO and R2
 * do; `s3.endpoint` (s3rver itself, which ignores them) is for a test's own reads.
 */
export interface Store {
  readonly s3: S3Server
  readonly proxy: Proxy
  /** The proxy's endpoint: what the action, the CLI and the units under test are given. */
  readonly endpoint: string
  /** The conditions the proxy starts with and goes back to after each test (`restoreConditions`). */
  readonly conditions: ConditionMode
  /** Puts the proxy's conditions back to the file's default (for an `afterEach` of a test that changed them). */
  restoreConditions(): void
  /** The settings of a store on `bucket` through the proxy, with the test credentials (for S3Admin and the stores). */
  settings(bucket: string): S3Settings
  /** Every key in `bucket` that starts with `under`, sorted, read from s3rver directly (every page). */
  listKeys(bucket: string, under?: string): Promise<string[]>
}

export interface StoreOptions {
  /** The key pairs the server accepts (default: the test credentials). */
  credentials?: TestCredentials[]
  /** Start nothing when this answers false (a file whose tests all skip). */
  when?: () => boolean
  /**
   * How the store treats conditional writes (default `enforce`, as S3 does). `ignore` is s3rver's leniency: only
   * for tests about stores that ignore conditions.
   */
  conditions?: ConditionMode
}

/**
 * Starts the store before the file's first test and stops it after the last (vitest hooks), so a test file
 * says `const store = useStore(['bucket'])` and uses `store.s3` and `store.proxy` in its tests.
 */
export function useStore(buckets: string[], options: StoreOptions = {}): Store {
  let s3: S3Server | undefined
  let proxy: Proxy | undefined
  const conditions = options.conditions ?? 'enforce'
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the test store's ${what} is not running: use it inside a test or a hook`)
    return value
  }
  beforeAll(async () => {
    if (options.when && !options.when()) return
    s3 = await startS3Server(buckets, options.credentials ?? [testCredentials])
    proxy = await startProxy(s3.port)
    proxy.conditions = conditions
  })
  afterAll(async () => {
    await proxy?.close()
    await s3?.stop()
  })
  return {
    get s3() {
      return started(s3, 'S3 server')
    },
    get proxy() {
      return started(proxy, 'proxy')
    },
    get endpoint() {
      return started(proxy, 'proxy').endpoint
    },
    conditions,
    restoreConditions() {
      started(proxy, 'proxy').conditions = conditions
    },
    settings(bucket: string): S3Settings {
      const endpoint = started(proxy, 'proxy').endpoint
      return { kind: 's3', bucket, region: 'us-east-1', endpoint, forcePathStyle: true, credentials: testCredentials }
    },
    async listKeys(bucket: string, under = '') {
      const client = started(s3, 'S3 server').client()
      const keys: string[] = []
      let token: string | undefined
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: under, ...(token ? { ContinuationToken: token } : {}) }),
        )
        keys.push(...(page.Contents ?? []).map((o) => o.Key!))
        token = page.IsTruncated ? page.NextContinuationToken : undefined
      } while (token)
      return keys.sort()
    },
  }
}
