import { PutObjectCommand } from '@aws-sdk/client-s3'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { packArchive, preferredFormat } from '../src/archive/archive.js'
import { CorruptArchiveError, defaultExtractLimits } from '../src/archive/guard.js'
import { ThreadPool, type Extracted, type ExtractSpec, type FetchOptions } from '../src/archive/extract-pool.js'
import { PlainGetError, StallError } from '../src/storage/plain-get.js'
import { S3Storage } from '../src/storage/s3.js'
import { RefusedReadError } from '../src/storage/refusals.js'
import { missKindOf } from '../src/restore/download.js'
import { faults, forKey, limited } from './helpers/proxy.js'
import { testCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { snapshotTree } from './helpers/tree.js'

// The restore's archive downloads as the action runs them: signed by S3Storage on this thread, sent and unpacked
// by the bundled extraction thread (dist/extract-worker, checked against the sources in CI).
const bucket = 'direct'
const store = useStore([bucket])
const pool = new ThreadPool(path.resolve(import.meta.dirname, '../dist/extract-worker/index.js'), 2, 4)
afterAll(() => pool.close())
afterEach(() => {
  store.proxy.fault = undefined
})

const sessionToken = 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN0123456789'
const storage = () =>
  new S3Storage({
    kind: 's3',
    bucket,
    region: 'us-east-1',
    endpoint: store.proxy.endpoint,
    forcePathStyle: true,
    credentials: { ...testCredentials, sessionToken },
  })

const roots = { folder: 'Lib.xcframework', file: '.Lib.version' }
const spec = (destination: string): ExtractSpec => ({
  destination,
  format: preferredFormat(),
  roots,
  limits: defaultExtractLimits,
})

async function tempDir(prefix: string) {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix))
}

/** A framework with a 3 MiB binary (several socket reads and decoder chunks) and a few small files. */
async function framework(): Promise<string> {
  const src = await tempDir('direct-src-')
  const fw = path.join(src, 'Lib.xcframework/ios-arm64/Lib.framework')
  await fs.mkdir(path.join(fw, 'Headers'), { recursive: true })
  const binary = Buffer.alloc(3 * 1024 * 1024 + 17)
  for (let i = 0; i + 4 <= binary.length; i += 4) binary.writeUInt32LE((i * 2654435761) >>> 0, i)
  await fs.writeFile(path.join(fw, 'Lib'), binary, { mode: 0o755 })
  for (let i = 0; i < 10; i++) await fs.writeFile(path.join(fw, `Headers/H${i}.h`), `// ${i}\n`)
  await fs.symlink('Lib', path.join(fw, 'Current'))
  await fs.writeFile(path.join(src, '.Lib.version'), '{"key":1}')
  return src
}

/** Packs a framework and stores it under `key`; returns its tree and its bytes. */
async function stored(key: string): Promise<{ src: string; bytes: Buffer }> {
  const src = await framework()
  const chunks: Buffer[] = []
  for await (const c of packArchive(src, [roots.folder, roots.file], preferredFormat())) chunks.push(c as Buffer)
  const bytes = Buffer.concat(chunks)
  await store.s3.client().send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes }))
  return { src, bytes }
}

/** Signs `key` with `s3` and has a thread download and unpack it into `dest`. */
async function download(
  s3: S3Storage,
  key: string,
  { dest, stallMs = 10_000, expectedBytes = 1, signal }: Partial<FetchOptions> & { dest?: string } = {},
): Promise<Extracted> {
  const get = await s3.direct.request(key)
  const destination = dest ?? (await tempDir('direct-dest-'))
  return pool.fetch(get, spec(destination), { stallMs, expectedBytes, ...(signal ? { signal } : {}) })
}

/** What a download that must fail rejects with. */
const rejection = (downloading: Promise<unknown>): Promise<unknown> =>
  downloading.then(
    () => {
      throw new Error('the download succeeded')
    },
    (error: unknown) => error,
  )

/** Everything a failure could carry into a log: its message, its name, and what it carries for the store. */
const printable = (error: unknown) => JSON.stringify({ error, message: (error as Error).message })

describe('archive downloads sent by the extraction thread', () => {
  it('a signed GET, sent and unpacked off the main thread, gives the same tree and the SHA-256 of the stored bytes', async () => {
    const { src, bytes } = await stored('a/Lib.tar.zst')
    const s3 = storage()
    const get = await s3.direct.request('a/Lib.tar.zst')
    const dest = await tempDir('direct-dest-')
    const seen = store.proxy.requests.length
    const result = await pool.fetch(get, spec(dest), { stallMs: 10_000, expectedBytes: bytes.length })
    expect(result.bytes).toBe(bytes.length)
    const { createHash } = await import('node:crypto')
    expect(result.sha256).toBe(createHash('sha256').update(bytes).digest('hex'))
    expect(await snapshotTree(dest)).toEqual(await snapshotTree(src))
    // One request, a presigned GET: credentials travel as a signature, never as the secret itself.
    const sent = store.proxy.requests.slice(seen)
    expect(sent.map((r) => r.method)).toEqual(['GET'])
    const query = new URL(sent[0]!.url, 'http://x').searchParams
    expect(query.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/)
    expect(sent[0]!.url).not.toContain(testCredentials.secretAccessKey)
  })

  it('a missing object is a PlainGetError the store reads as "not there", not as a fault', async () => {
    const s3 = storage()
    const dest = await tempDir('direct-dest-')
    const error = await rejection(download(s3, 'a/none.tar.zst', { dest }))
    expect(error).toBeInstanceOf(PlainGetError)
    expect((error as PlainGetError).failure).toMatchObject({ kind: 'status', status: 404 })
    expect(s3.direct.explain('a/none.tar.zst', (error as PlainGetError).failure)).toBeUndefined()
    expect(await fs.readdir(dest)).toEqual([])
  })

  it('403 AccessDenied: the same refusal as the SDK path (absent or forbidden), naming the permission, with no URL or credential in it', async () => {
    await stored('a/Denied.tar.zst')
    store.proxy.fault = limited(forKey('GET', bucket, 'a/Denied.tar.zst'), 1, faults.status(403, 'AccessDenied'))
    const s3 = storage()
    const error = await rejection(download(s3, 'a/Denied.tar.zst'))
    const explained = s3.direct.explain('a/Denied.tar.zst', (error as PlainGetError).failure)
    expect(explained).toBeInstanceOf(RefusedReadError)
    expect(explained!.fatal).toBe(false)
    expect(missKindOf(explained)).toBe('absent')
    expect(explained!.message).toBe(
      'GetObject s3://direct/a/Denied.tar.zst: not stored, or not readable with these credentials (403 AccessDenied)',
    )
    expect((explained as RefusedReadError).fix).toContain('s3:GetObject')
    for (const text of [printable(error), printable(explained)]) {
      expect(text).not.toContain('X-Amz-Signature')
      expect(text).not.toContain(sessionToken)
      expect(text).not.toContain(testCredentials.accessKeyId)
      expect(text).not.toContain(testCredentials.secretAccessKey)
    }
  })

  it('503 SlowDown is retryable; a refused connection names the endpoint and stops the restore', async () => {
    await stored('a/Slow.tar.zst')
    store.proxy.fault = limited(forKey('GET', bucket, 'a/Slow.tar.zst'), 1, faults.status(503, 'SlowDown'))
    const s3 = storage()
    const slow = await rejection(download(s3, 'a/Slow.tar.zst'))
    const slowDown = s3.direct.explain('a/Slow.tar.zst', (slow as PlainGetError).failure)!
    expect([slowDown.retryable, slowDown.fatal, slowDown.status]).toEqual([true, false, 503])

    // Port 9 (discard) on loopback: nothing listens there.
    const closed = new S3Storage({
      kind: 's3',
      bucket,
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      credentials: testCredentials,
    })
    const refused = await rejection(download(closed, 'a/Slow.tar.zst'))
    expect((refused as PlainGetError).failure).toMatchObject({ kind: 'network', code: 'ECONNREFUSED' })
    const unreachable = closed.direct.explain('a/Slow.tar.zst', (refused as PlainGetError).failure)!
    expect(unreachable.message).toContain('cannot reach http://127.0.0.1:9 (ECONNREFUSED)')
    expect(unreachable.fatal).toBe(true)
  })

  it('an answer announcing another size than the index records is refused before anything is unpacked', async () => {
    const { bytes } = await stored('a/Sized.tar.zst')
    const dest = await tempDir('direct-dest-')
    const error = await rejection(download(storage(), 'a/Sized.tar.zst', { dest, expectedBytes: bytes.length + 1 }))
    expect(error).toBeInstanceOf(CorruptArchiveError)
    expect((error as Error).message).toBe(`size ${bytes.length} differs from the index's ${bytes.length + 1}`)
    expect(await fs.readdir(dest)).toEqual([])
  })

  it('a body that stops is a StallError after the stall time, and the thread has stopped writing when it settles', async () => {
    const { bytes } = await stored('a/Stall.tar.zst')
    store.proxy.fault = limited(forKey('GET', bucket, 'a/Stall.tar.zst'), 1, faults.stall())
    const dest = await tempDir('direct-dest-')
    const started = Date.now()
    const error = await rejection(
      download(storage(), 'a/Stall.tar.zst', { dest, stallMs: 300, expectedBytes: bytes.length }),
    )
    expect(error).toBeInstanceOf(StallError)
    expect(Date.now() - started).toBeGreaterThanOrEqual(300)
    await fs.rm(dest, { recursive: true, force: true })
    await new Promise((resolve) => setTimeout(resolve, 100))
    await expect(fs.stat(dest)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('an abort while the GET is on its way stops it; the fetch settles once the thread has stopped', async () => {
    const { bytes } = await stored('a/Abort.tar.zst')
    const hold = store.proxy.hold(forKey('GET', bucket, 'a/Abort.tar.zst'))
    const abort = new AbortController()
    const dest = await tempDir('direct-dest-')
    const fetching = rejection(
      download(storage(), 'a/Abort.tar.zst', { dest, expectedBytes: bytes.length, signal: abort.signal }),
    )
    await hold.arrived
    abort.abort()
    hold.release()
    const error = await fetching
    expect(error).toBeInstanceOf(Error)
    expect(pool.active).toBe(0)
    await fs.rm(dest, { recursive: true, force: true })
    await new Promise((resolve) => setTimeout(resolve, 100))
    await expect(fs.stat(dest)).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
