import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { packArchive, preferredFormat } from '../src/archive/archive.js'
import { defaultExtractLimits, UnsafeArchiveError } from '../src/archive/guard.js'
import { extractOnThisThread, ThreadPool, type ExtractSpec } from '../src/archive/extract-pool.js'
import { tarArchive } from './helpers/tar.js'
import { snapshotTree } from './helpers/tree.js'

// The pool runs the bundled worker, as the action does (CI checks dist/ against the sources).
const workerFile = path.resolve(import.meta.dirname, '../dist/extract-worker/index.js')
const pool = new ThreadPool(workerFile, 2, 4)
afterAll(() => pool.close())

const roots = { folder: 'Big.xcframework', file: '.Big.version' }

async function tempDir(prefix: string) {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix))
}

/** A framework of a few MiB (more than one 1 MiB batch) with small files, a symlink and an empty folder. */
async function framework(): Promise<string> {
  const src = await tempDir('pool-src-')
  const fw = path.join(src, 'Big.xcframework/ios-arm64/Big.framework')
  await fs.mkdir(path.join(fw, 'Headers'), { recursive: true })
  await fs.mkdir(path.join(src, 'Big.xcframework/ios-arm64/Empty'), { recursive: true })
  const binary = Buffer.alloc(5 * 1024 * 1024 + 321)
  for (let i = 0; i + 4 <= binary.length; i += 4) binary.writeUInt32LE((i * 2654435761) >>> 0, i)
  await fs.writeFile(path.join(fw, 'Big'), binary, { mode: 0o755 })
  for (let i = 0; i < 40; i++) await fs.writeFile(path.join(fw, `Headers/H${i}.h`), `// header ${i}\n`.repeat(i + 1))
  await fs.symlink('Big', path.join(fw, 'Current'))
  await fs.writeFile(path.join(src, '.Big.version'), '{"key":1}')
  return src
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** The archive in chunks of odd sizes, as a socket hands them over. */
function chunked(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size))
  return Readable.from(chunks)
}

function spec(destination: string, format = preferredFormat()): ExtractSpec {
  return { destination, format, roots, limits: defaultExtractLimits }
}

describe('extraction threads', () => {
  it('unpack the same tree as the calling thread, and hash the compressed bytes the same way', async () => {
    const src = await framework()
    const bytes = await bytesOf(packArchive(src, ['Big.xcframework', '.Big.version'], preferredFormat()))
    const here = await tempDir('pool-here-')
    const there = await tempDir('pool-there-')
    const inThread = await extractOnThisThread.extract(chunked(bytes, 65_537), [], spec(here))
    const inPool = await pool.extract(chunked(bytes, 16_411), [], spec(there))
    const sha256 = createHash('sha256').update(bytes).digest('hex')
    expect(inPool).toEqual({ sha256, bytes: bytes.length })
    expect(inThread).toEqual(inPool)
    expect(await snapshotTree(there)).toEqual(await snapshotTree(src))
    expect(await snapshotTree(here)).toEqual(await snapshotTree(src))
  })

  it('run more archives at once than threads, each into its own folder', async () => {
    const src = await framework()
    const bytes = await bytesOf(packArchive(src, ['Big.xcframework', '.Big.version'], preferredFormat()))
    const folders = await Promise.all(Array.from({ length: 6 }, (_, i) => tempDir(`pool-many-${i}-`)))
    const results = await Promise.all(
      folders.map((folder, i) => pool.extract(chunked(bytes, 4096 * (i + 1) + 7), [], spec(folder))),
    )
    expect(new Set(results.map((r) => r.sha256)).size).toBe(1)
    const want = await snapshotTree(src)
    for (const folder of folders) expect(await snapshotTree(folder)).toEqual(want)
  })

  it('refuse a hostile archive with the same error class, writing nothing outside the folder', async () => {
    const root = await tempDir('pool-attack-')
    const destination = path.join(root, 'staging')
    await fs.mkdir(destination)
    const hostile = gzipSync(
      tarArchive([{ path: 'Big.xcframework/../../pwned.txt', type: 'file', content: Buffer.from('x') }]),
    )
    const refused = pool.extract(Readable.from([hostile]), [], spec(destination, 'tar.gz'))
    await expect(refused).rejects.toBeInstanceOf(UnsafeArchiveError)
    await expect(refused).rejects.toThrow(/has a '\.\.'/)
    expect(await fs.readdir(root)).toEqual(['staging'])
  })

  it('stop when the download fails, and settle only once the thread has stopped writing', async () => {
    const src = await framework()
    const bytes = await bytesOf(packArchive(src, ['Big.xcframework', '.Big.version'], preferredFormat()))
    const destination = await tempDir('pool-broken-')
    const broken = new Readable({
      read() {
        this.push(bytes.subarray(0, bytes.length >> 1))
        this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }))
      },
    })
    await expect(pool.extract(broken, [], spec(destination))).rejects.toThrow(/socket hang up/)
    // Nothing is still writing: the folder can go, and stays gone.
    expect(pool.active).toBe(0)
    await fs.rm(destination, { recursive: true })
    await new Promise((resolve) => setTimeout(resolve, 200))
    await expect(fs.access(destination)).rejects.toThrow(/ENOENT/)
    // And the pool still works.
    const again = await tempDir('pool-again-')
    await pool.extract(Readable.from([bytes]), [], spec(again))
    expect(await snapshotTree(again)).toEqual(await snapshotTree(src))
  })
})
