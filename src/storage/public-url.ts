import { Readable } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import { StorageError } from '../errors.js'
import { RefusedReadError } from './refusals.js'
import type { Storage, StoredObject } from './storage.js'

/** Anonymous, read-only access through plain HTTPS GETs: `<public-url>/<object key>`. */
export class PublicUrlStorage implements Storage {
  readonly writable = false
  readonly description: string

  constructor(
    private readonly baseUrl: string,
    private readonly timeoutMs = 60_000,
  ) {
    this.description = baseUrl
  }

  url(key: string): string {
    return `${this.baseUrl}/${key.split('/').map(encodeURIComponent).join('/')}`
  }

  private async request(method: 'GET' | 'HEAD', key: string, signal?: AbortSignal): Promise<Response | undefined> {
    const url = this.url(key)
    // The time limit covers waiting for the answer's headers; a body that stalls is caught by the reader.
    const headers = new AbortController()
    const timer = setTimeout(() => headers.abort(), this.timeoutMs)
    let response: Response
    try {
      response = await fetch(url, {
        method,
        signal: signal ? AbortSignal.any([signal, headers.signal]) : headers.signal,
        redirect: 'follow',
      })
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name
      if (signal?.aborted)
        throw new StorageError(`${method} ${url}: aborted (the cache time limit was reached).`, false)
      const refused = cause === 'ECONNREFUSED' || cause === 'ENOTFOUND' || cause === 'EAI_AGAIN'
      throw new StorageError(
        `${method} ${url}: cannot reach the server (${cause}). Check the 'public-url' input.`,
        true,
        undefined,
        refused,
      )
    } finally {
      clearTimeout(timer)
    }
    if (response.status === 404) {
      await response.body?.cancel()
      return undefined
    }
    if (response.status === 403) {
      await response.body?.cancel()
      // Anonymous users may not list a public bucket, so S3 answers 403 for a missing key: a miss for this key.
      throw new RefusedReadError(
        `${method} ${url}`,
        `the objects must be public: 'should-publish: true', or a bucket policy granting s3:GetObject to everyone`,
        'a public bucket answers 403, not 404, for a missing key',
      )
    }
    if (!response.ok) {
      await response.body?.cancel()
      throw new StorageError(
        `${method} ${url} failed: HTTP ${response.status}.`,
        response.status >= 500 || response.status === 429,
        response.status,
      )
    }
    return response
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    const response = await this.request('HEAD', key)
    return response ? { size: Number(response.headers.get('content-length') ?? 0) } : undefined
  }

  async get(key: string, signal?: AbortSignal): Promise<StoredObject | undefined> {
    const response = await this.request('GET', key, signal)
    if (!response) return undefined
    if (!response.body) throw new StorageError(`GET ${this.url(key)}: empty answer`, true)
    return {
      body: Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
      size: Number(response.headers.get('content-length') ?? 0),
      ...(response.headers.get('etag') ? { etag: response.headers.get('etag')! } : {}),
    }
  }

  async put(): Promise<void> {
    throw new StorageError('A public URL is read-only; uploading needs a bucket and credentials.', false)
  }
}
