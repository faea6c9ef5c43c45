import { afterAll, beforeAll } from 'vitest'
import { startProxy, type Proxy } from './proxy.js'
import { startS3Server, testCredentials, type S3Server, type TestCredentials } from './s3-server.js'

/** A test file's S3 store: s3rver on 127.0.0.1 and the test proxy in front of it, both up for the file's tests. */
export interface Store {
  readonly s3: S3Server
  readonly proxy: Proxy
}

export interface StoreOptions {
  /** The key pairs the server accepts (default: the test credentials). */
  credentials?: TestCredentials[]
  /** Start nothing when this answers false (a file whose tests all skip). */
  when?: () => boolean
}

/**
 * Starts the store before the file's first test and stops it after the last (vitest hooks), so a test file
 * says `const store = useStore(['bucket'])` and uses `store.s3` and `store.proxy` in its tests.
 */
export function useStore(buckets: string[], options: StoreOptions = {}): Store {
  let s3: S3Server | undefined
  let proxy: Proxy | undefined
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the test store's ${what} is not running: use it inside a test or a hook`)
    return value
  }
  beforeAll(async () => {
    if (options.when && !options.when()) return
    s3 = await startS3Server(buckets, options.credentials ?? [testCredentials])
    proxy = await startProxy(s3.port)
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
  }
}
