import type { Hash } from 'node:crypto'
import { PassThrough, type Readable, Transform, type TransformCallback, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as zlib from 'node:zlib'
import { TarExtractor } from './extract.js'
import {
  CorruptArchiveError,
  defaultExtractLimits,
  EntryGuard,
  UnsafeArchiveError,
  type ExtractLimits,
} from './guard.js'
import { moved } from './garbage.js'
import type { ArchiveFormat } from '../keys/keys.js'
import { planArchive, writeTar } from './pack.js'

/**
 * One archive per XCFramework: a tar of `<Name>.xcframework/` and its `.<Target>.version`, compressed with
 * zstd where the runtime has it and gzip otherwise. Tar keeps symlinks as symlinks, modes and empty folders;
 * both directions stream, so memory does not grow with the framework's size. New archives are `code.tar.zst`:
 * their Mach-O machine code is stored converted (machine-code/), which only releases that know the format read.
 */

type ZstdZlib = typeof zlib & {
  createZstdCompress?: (options?: object) => Transform
  createZstdDecompress?: (options?: object) => Transform
  constants: typeof zlib.constants & { ZSTD_c_compressionLevel?: number; ZSTD_c_checksumFlag?: number }
}
const z = zlib as ZstdZlib

export function zstdAvailable(): boolean {
  return typeof z.createZstdCompress === 'function' && typeof z.createZstdDecompress === 'function'
}

export function preferredFormat(): ArchiveFormat {
  return zstdAvailable() ? 'code.tar.zst' : 'tar.gz'
}

export function canRead(format: ArchiveFormat): boolean {
  return format === 'tar.gz' || zstdAvailable()
}

/**
 * zlib streams hand out 16 KiB chunks by default: for a 1.5 GB set that is ~100k round trips to the thread
 * pool and as many tiny file writes. 1 MiB chunks cut both (warm restore measured 2x faster, see
 * docs/benchmarks.md) for 1 MiB of buffer per stream.
 */
const chunkSize = 1024 * 1024

/**
 * zstd settings, chosen on the realistic data set (docs/benchmarks.md): level 3 with long-distance matching
 * over a 2^22 (4 MiB) window. pack.ts puts the slices' copies of a file side by side, large files in
 * 1 MiB pieces taken in turn, so a simulator page is never more than 2 MiB from the device page it resembles.
 * A decoder then needs at most 4 MiB, whatever the framework's size; it refuses frames asking for more (no
 * release of this action wrote any: before, level 3 meant a 2 MiB window). The frame records its content
 * size, so a small archive gets a smaller window still.
 */
export const zstdLevel = 3
export const zstdWindowLog = 22

/** How a zstd archive is compressed; the label is what an index entry records (`compression`). */
export interface Compression {
  level: number
  windowLog: number
  longDistance: boolean
}

/** A producer's run: level 6 costs about twice level 3's CPU per byte (docs/benchmarks.md, the macho preset). */
export const storeCompression: Compression = { level: 6, windowLog: zstdWindowLog, longDistance: true }

/**
 * `scipio-s3-cache repack` (cli/repack.ts): zstd's strongest level, paid once per archive. A 2^24 (16 MiB) window:
 * each archive a consumer has in flight may hold that much (docs/storage.md); larger windows gained 0.2% on
 * the real Mach-O set.
 */
export const strongestCompression: Compression = { level: 22, windowLog: 24, longDistance: false }

/** The largest window a `code.tar.zst` decoder accepts: what repack writes. */
const codeWindowLogMax = strongestCompression.windowLog

export function compressionLabel(c: Compression): string {
  return `zstd-${c.level}-w${c.windowLog}${c.longDistance ? '-long' : ''}`
}

/** The compression of each zstd format when a producer stores it. */
function defaultCompression(format: ArchiveFormat): Compression {
  return format === 'code.tar.zst'
    ? storeCompression
    : { level: zstdLevel, windowLog: zstdWindowLog, longDistance: true }
}

function compressor(format: ArchiveFormat, pledgedSrcSize: number, compression: Compression): Transform {
  if (format === 'tar.gz') return zlib.createGzip({ level: 6, chunkSize })
  const c = z.constants as unknown as Record<string, number | undefined>
  // The frame checksum makes zstd itself notice damaged bytes, before our SHA-256 over the whole object does.
  const params: Record<number, number> = {}
  const set = (name: string, value: number) => {
    const id = c[name]
    if (id !== undefined) params[id] = value
  }
  set('ZSTD_c_compressionLevel', compression.level)
  set('ZSTD_c_checksumFlag', 1)
  set('ZSTD_c_windowLog', compression.windowLog)
  if (compression.longDistance) set('ZSTD_c_enableLongDistanceMatching', 1)
  return z.createZstdCompress({ chunkSize, params, pledgedSrcSize })
}

function decompressor(format: ArchiveFormat): Transform {
  if (format === 'tar.gz') return zlib.createGunzip({ chunkSize })
  const windowLogMax = (z.constants as unknown as Record<string, number | undefined>).ZSTD_d_windowLogMax
  return z.createZstdDecompress({
    chunkSize,
    ...(windowLogMax !== undefined
      ? { params: { [windowLogMax]: format === 'code.tar.zst' ? codeWindowLogMax : zstdWindowLog } }
      : {}),
  })
}

/**
 * Streams a compressed tar of `entries` (a framework folder and its VersionFile, relative to `directory`),
 * in the order pack.ts chooses so the slices' shared bytes compress together.
 */
export function packArchive(
  directory: string,
  entries: string[],
  format: ArchiveFormat,
  compression: Compression = defaultCompression(format),
): Readable {
  const [folder, file] = entries
  const out = new PassThrough()
  planArchive(directory, folder!, file!, format === 'code.tar.zst')
    .then(async (plan) => {
      const compress = compressor(format, plan.tarBytes, compression)
      const compressed = pipeline(compress, out)
      try {
        await writeTar(plan, compress)
      } catch (error) {
        compress.destroy(error as Error)
      }
      await compressed
    })
    .catch((error: unknown) => out.destroy(error as Error))
  return out
}

function isFormatError(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? '')
  return code.startsWith('Z_') || code.startsWith('ZSTD_') || code.startsWith('TAR_')
}

/**
 * Unpacks a compressed archive stream into `destination` (an empty folder the caller owns), refusing
 * anything outside the framework folder and its VersionFile. Rejects with UnsafeArchiveError on refusal.
 */
export async function extractArchive(
  source: Readable,
  destination: string,
  format: ArchiveFormat,
  roots: { folder: string; file: string },
  limits: ExtractLimits = defaultExtractLimits,
  /** Stages on the compressed bytes before decompression (hashing, stall detection). */
  inspect: Transform[] = [],
): Promise<void> {
  await explained(
    pipeline([source, ...inspect, decompressor(format), tarExtractor(destination, format, roots, limits)]),
  )
}

/**
 * The same as extractArchive, for a caller that writes the compressed bytes itself: `input` takes them
 * (a write's callback says the chunk's memory may be reused), `done` settles once extraction has stopped.
 */
export function openExtraction(
  destination: string,
  format: ArchiveFormat,
  roots: { folder: string; file: string },
  limits: ExtractLimits,
): { input: Writable; done: Promise<void> } {
  const input = decompressor(format)
  return { input, done: explained(pipeline(input, tarExtractor(destination, format, roots, limits))) }
}

function tarExtractor(
  destination: string,
  format: ArchiveFormat,
  roots: { folder: string; file: string },
  limits: ExtractLimits,
): TarExtractor {
  return new TarExtractor(destination, new EntryGuard(roots, limits), format === 'code.tar.zst')
}

/** Errors of decompression and parsing as the archive's damage; refusals and file system errors as they are. */
async function explained(extraction: Promise<void>): Promise<void> {
  try {
    await extraction
  } catch (error) {
    if (error instanceof UnsafeArchiveError || error instanceof CorruptArchiveError) throw error
    if (isFormatError(error)) throw new CorruptArchiveError(`the archive is corrupted (${(error as Error).message})`)
    throw error
  }
}

/** Counts and hashes the bytes flowing through, for checking a download against its index entry. */
export class Measure extends Transform {
  bytes = 0
  constructor(
    private readonly hash: Hash,
    /** Bytes of garbage this thread makes per byte measured, for garbage.ts. */
    private readonly garbagePerByte = 1,
  ) {
    super()
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    moved(chunk.length * this.garbagePerByte)
    this.hash.update(chunk)
    callback(null, chunk)
  }
}
