import { createReadStream } from 'node:fs'
import { pipeline, Transform, type Readable } from 'node:stream'
import type { StorageError } from '../errors.js'
import type { GetFailure, PlainGet } from './plain-get.js'

export interface StoredObject {
  body: Readable
  /** Content-Length as the server reported it. */
  size: number
  /** The object's version token, when the server sent one: what `PutOptions.ifMatch` compares with. */
  etag?: string
}

export interface PutOptions {
  contentType: string
  /** Sends the `public-read` canned ACL; without it (or `acl`) no ACL header is sent at all. */
  publicRead: boolean
  /** Another canned ACL to send when publicRead is false (scipio-s3-storage's objects get `authenticated-read`). */
  acl?: 'authenticated-read'
  /** The stream's exact length, when known: S3 then takes it in one PUT (up to 5 GiB) rather than a multipart upload. */
  size?: number
  signal?: AbortSignal
  /** Create only: fails with PreconditionFailedError when the key exists. */
  ifNoneMatch?: '*'
  /** Replace only the version read (its ETag): fails with PreconditionFailedError when it changed or is gone. */
  ifMatch?: string
}

/** Downloads that another thread sends itself, with Node's HTTP client (storage/plain-get.ts). */
export interface DirectGets {
  /** A GET of `key` to send within a few minutes: signed, when the store needs it. */
  request(key: string): Promise<PlainGet>
  /** What get() would have thrown for this failure of the request; undefined when the object does not exist. */
  explain(key: string, failure: GetFailure): StorageError | undefined
}

/** One object of a listing. */
export interface ListedObject {
  key: string
  size: number
  lastModified: Date
  /** The object's version token as listed (S3 sends one for every object). */
  etag?: string
}

/** The small protocol every backend speaks (like Scipio's own cache storage: exists, fetch, put). */
export interface Storage {
  /** For logs: names the bucket or URL, never a credential. */
  readonly description: string
  readonly writable: boolean
  /** undefined when the object does not exist; throws StorageError for every other failure. */
  head(key: string): Promise<{ size: number } | undefined>
  get(key: string, signal?: AbortSignal): Promise<StoredObject | undefined>
  put(key: string, body: Readable | Buffer, options: PutOptions): Promise<void>
  /**
   * Every object whose key starts with `prefix` (and, with `startAfter`, sorts after it), one ListObjectsV2 request
   * per 1,000 keys; absent where the store cannot list (a public URL). A producer lists its prefix once to find what
   * vanished (save/heal.ts).
   */
  list?(prefix: string, signal?: AbortSignal, startAfter?: string): Promise<ListedObject[]>
  /**
   * True once the store answered a conditional header with NotImplemented: it writes unconditionally from then on.
   * A store that silently ignores the headers is found by the probe (bucket/shared-document.ts).
   */
  readonly conditionsIgnored?: boolean
  /** Present when archives can be downloaded off the main thread (the restore then does). */
  readonly direct?: DirectGets
}

/** Passes bytes through unchanged and tells `moved` how many went by so far. */
export function countBytes(moved: (bytes: number) => void): Transform {
  let bytes = 0
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length
      moved(bytes)
      callback(null, chunk)
    },
  })
}

/**
 * Uploads a file in one PUT of its exact `size`, opened for this call only: a retry calls again and sends it
 * from the start. `moved` (for a progress display) hears how many of its bytes went so far.
 */
export async function putFile(
  storage: Storage,
  key: string,
  file: string,
  options: PutOptions & { size: number },
  moved?: (bytes: number) => void,
): Promise<void> {
  const source = createReadStream(file)
  // pipeline carries an error either way: a failing file fails the upload, an upload that stops closes the file.
  const body = moved ? pipeline(source, countBytes(moved), () => undefined) : source
  try {
    await storage.put(key, body, options)
  } finally {
    body.destroy()
    source.destroy()
  }
}

/** Reads a small JSON object; one larger than `maxBytes` (as announced, or as it arrives) is refused unparsed. */
export async function getJson(
  storage: Storage,
  key: string,
  signal?: AbortSignal,
  maxBytes = 16 * 1024 * 1024,
): Promise<unknown> {
  return (await getJsonVersion(storage, key, signal, maxBytes))?.value
}

/** As getJson, with the version token (ETag) of what was read; undefined when the object does not exist. */
export async function getJsonVersion(
  storage: Storage,
  key: string,
  signal?: AbortSignal,
  maxBytes = 16 * 1024 * 1024,
): Promise<{ value: unknown; etag?: string } | undefined> {
  const object = await storage.get(key, signal)
  if (!object) return undefined
  // Index objects are small; a huge one is not ours.
  const tooLarge = () => new Error(`${key} is larger than ${maxBytes} bytes; it is not an object this action wrote`)
  if (object.size > maxBytes) {
    object.body.destroy()
    throw tooLarge()
  }
  // Removed once the body is read: a caller's signal outlives many reads, and must not collect a listener per read.
  const abort = () => object.body.destroy(new Error(`reading ${key} was aborted`))
  signal?.addEventListener('abort', abort, { once: true })
  const chunks: Buffer[] = []
  try {
    let total = 0
    for await (const chunk of object.body) {
      total += (chunk as Buffer).length
      if (total > maxBytes) {
        object.body.destroy()
        throw tooLarge()
      }
      chunks.push(chunk as Buffer)
    }
  } finally {
    signal?.removeEventListener('abort', abort)
  }
  let value: unknown
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    throw new Error(`${key} is not valid JSON`)
  }
  return { value, ...(object.etag ? { etag: object.etag } : {}) }
}
