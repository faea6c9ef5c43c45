import { createHash } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import type { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { aaArchiveArgs, aaExtractArgs, aaMissing, findAa, runAa } from './apple-archive.js'
import { Measure } from '../archive/archive.js'
import {
  CorruptArchiveError,
  defaultExtractLimits,
  EntryGuard,
  UnsafeArchiveError,
  type ExtractLimits,
} from '../archive/guard.js'
import type { IndexEntry } from '../bucket/cache-index.js'
import { AarFormat, aarObjectKey, contentObjectKey } from '../bucket/layout.js'
import {
  CacheTimeoutError,
  DiskFullError,
  errorMessage,
  MissingObjectError,
  PreconditionFailedError,
  StorageError,
  stopReason,
} from '../errors.js'
import { frameworkFolder, versionFileName, type LocalFramework } from '../keys/frameworks.js'
import { scipioKey } from '../keys/keys.js'
import type { Log } from '../log.js'
import { defaultRetryPolicy, withRetry } from '../retry.js'
import { putFile, type Storage, type StoredObject } from '../storage/index.js'
import { unlessRefused } from '../storage/refusals.js'
import { disown, own, tempFolderPrefix } from '../archive/owned-folders.js'

/**
 * Sharing one bucket with scipio-s3-storage (the Swift cache storage Scipio's documentation recommends). Both
 * address a framework as `[<prefix>/]<TargetName>/<Scipio key>`; scipio-s3-storage stores an Apple Archive
 * (`.aar`) of the framework folder's contents, without the VersionFile (Scipio writes that itself).
 *
 * - Write: a producer with `scipio-s3-storage-objects` also stores `<prefix>/<Target>/<key>.aar` (made by `aa`),
 *   with the ACL scipio-s3-storage sends: `public-read` with should-publish, else `authenticated-read`. It
 *   creates it only (`If-None-Match: *`): one already there, from anyone, is left as it is.
 * - Adopt: when that object is already there (a scipio-s3-storage producer got there first), the producer
 *   indexes it instead of building its own archive; the index keeps the VersionFile, which the `.aar` lacks.
 *   That fixed name is mutable (scipio-s3-storage writes it unconditionally), so the index points at an
 *   immutable copy of the bytes, `<prefix>/<Target>/<key>/<SHA-256>.aar`, never at the fixed name.
 * - Read: a consumer restores such an index entry with `aa extract`, after the same size and SHA-256 checks as
 *   for our archives, then checks the extracted tree with the same entry guard before placing it. Without `aa`
 *   such an entry is a miss.
 *
 * Index layout: these entries go in a separate list, `aarTargets`, beside `targets`. Readers of earlier releases
 * ignore unknown members but refuse a whole index over one entry of an unknown format; with a separate list they
 * restore the package's other targets and only build these.
 */

const toldMissing = new WeakSet<Log>()

/** Why an `.aar` entry cannot be restored here (no `aa`), or undefined when it can. Says so once per log. */
export async function aarMissReason(log: Log): Promise<string | undefined> {
  if (await findAa()) return undefined
  const reason = `stored by scipio-s3-storage as an Apple Archive (.aar), and ${aaMissing} to unpack it`
  if (!toldMissing.has(log)) {
    toldMissing.add(log)
    log.info(`Frameworks indexed as scipio-s3-storage objects (.aar) are built instead of restored here: ${aaMissing}.`)
  }
  return reason
}

/** What restore gives this module for one download: the GET (with its answer timeout) and a stall watch for the body. */
export interface AarDownload {
  open(): Promise<StoredObject | undefined>
  watch(): Transform
  signal?: AbortSignal
  limits?: ExtractLimits
}

/** The downloaded object waits in the staging folder under a name no framework or VersionFile can have. */
const downloadName = '.scipio-s3-cache-download.aar'

/**
 * Downloads an `.aar` entry into `staging`, checks its size and SHA-256 against the index, unpacks it with `aa`
 * into `staging/<Name>.xcframework`, checks the extracted tree with the entry guard, and writes the VersionFile
 * kept in the index beside it. Throws as restore expects: CorruptArchiveError (integrity, retried),
 * UnsafeArchiveError (refused), StorageError, CacheTimeoutError.
 */
export async function restoreAppleArchive(entry: IndexEntry, staging: string, io: AarDownload): Promise<void> {
  const aa = await findAa()
  if (!aa) throw new StorageError(aaMissing, false)
  const versionFile = Buffer.from(entry.versionFile ?? '', 'base64')
  if (scipioKey(versionFile) !== entry.scipioKey)
    throw new CorruptArchiveError(`the VersionFile kept in the index does not match the key ${entry.scipioKey}`)
  const roots = { folder: frameworkFolder(entry.targetName), file: versionFileName(entry.targetName) }
  const download = path.join(staging, downloadName)

  const object = await io.open()
  if (!object) throw new MissingObjectError(entry.key)
  if (object.size && object.size !== entry.size) {
    object.body.destroy()
    throw new CorruptArchiveError(`size ${object.size} differs from the index's ${entry.size}`)
  }
  const hash = createHash('sha256')
  const measure = new Measure(hash)
  const abort = () => object.body.destroy(new CacheTimeoutError())
  io.signal?.addEventListener('abort', abort, { once: true })
  try {
    await pipeline(object.body, io.watch(), measure, createWriteStream(download))
  } finally {
    io.signal?.removeEventListener('abort', abort)
  }
  if (measure.bytes !== entry.size)
    throw new CorruptArchiveError(`received ${measure.bytes} bytes, the index records ${entry.size}`)
  const digest = hash.digest('hex')
  if (digest !== entry.sha256)
    throw new CorruptArchiveError(`SHA-256 ${digest} differs from the index's ${entry.sha256}`)

  // Only bytes the index vouches for reach aa.
  await fs.mkdir(path.join(staging, roots.folder))
  try {
    await runAa(aa, aaExtractArgs(path.join(staging, roots.folder), download), io.signal)
  } catch (error) {
    if (io.signal?.aborted) throw new CacheTimeoutError()
    if (await ranOutOfSpace(error, staging, entry.size))
      throw new DiskFullError(`aa extract ran out of space in ${staging}: ${errorMessage(error)}`)
    throw new CorruptArchiveError(errorMessage(error))
  }
  await fs.rm(download, { force: true })
  await guardExtractedTree(staging, roots, io.limits ?? defaultExtractLimits)
  await fs.writeFile(path.join(staging, roots.file), versionFile)
}

/**
 * Whether `aa` failed for want of space rather than over the archive's bytes (which were checked before it ran):
 * it says so, or the disk has less free space left than the archive's size (an unpacked tree takes more).
 */
async function ranOutOfSpace(error: unknown, staging: string, archiveBytes: number): Promise<boolean> {
  if (/no space left on device|ENOSPC|EDQUOT|disk quota exceeded/i.test(errorMessage(error))) return true
  const free = await fs.statfs(staging).then(
    (s) => s.bavail * s.bsize,
    () => undefined,
  )
  return free !== undefined && free < archiveBytes
}

/**
 * Walks what `aa` extracted (lstat, never following a link) through the same EntryGuard as tar entries: only
 * files, folders and symlinks, symlinks relative and inside the framework, nothing reached through a symlink,
 * no hard links, at most `limits` entries and bytes, and nothing in `staging` beside the framework folder.
 */
export async function guardExtractedTree(
  staging: string,
  roots: { folder: string; file: string },
  limits: ExtractLimits,
): Promise<void> {
  const stray = (await fs.readdir(staging)).filter((name) => name !== roots.folder)
  if (stray.length > 0) throw new UnsafeArchiveError(`refused: '${stray[0]}' lies outside ${roots.folder}`)
  const guard = new EntryGuard(roots, limits)
  const walk = async (rel: string): Promise<void> => {
    const abs = path.join(staging, rel)
    const st = await fs.lstat(abs)
    let type: string
    if (st.isSymbolicLink()) type = 'SymbolicLink'
    else if (st.isDirectory()) type = 'Directory'
    else if (st.isFile()) type = st.nlink > 1 ? 'Link' : 'File'
    else
      type = st.isFIFO()
        ? 'FIFO'
        : st.isCharacterDevice()
          ? 'CharacterDevice'
          : st.isBlockDevice()
            ? 'BlockDevice'
            : st.isSocket()
              ? 'Socket'
              : 'Unknown'
    const refusal = guard.check(
      rel,
      type,
      st.isFile() ? st.size : 0,
      type === 'SymbolicLink' ? await fs.readlink(abs) : undefined,
    )
    if (refusal) throw new UnsafeArchiveError(`refused: ${refusal}`)
    if (type === 'Directory') for (const name of (await fs.readdir(abs)).sort()) await walk(`${rel}/${name}`)
  }
  await walk(roots.folder)
}

/** A write that may succeed when sent again: a passing fault, or a 409 ConditionalRequestConflict (S3 says: retry). */
function isWorthAnotherTry(error: unknown): boolean {
  if (error instanceof PreconditionFailedError) return error.status === 409
  return error instanceof StorageError && error.retryable && !error.fatal
}

/** The first bytes of an Apple Archive: a block container (`pbz` + algorithm) or a plain AA01 stream. */
export function looksLikeAppleArchive(head: Buffer): boolean {
  const magic = head.subarray(0, 4).toString('latin1')
  return /^pbz[ezx4m]$/.test(magic) || magic === 'AA01'
}

export interface ScipioS3StorageOptions {
  storage: Storage
  prefix: string
  outputDirectory: string
  /** should-publish: `public-read`; otherwise `authenticated-read`, as scipio-s3-storage sends. */
  publish: boolean
  log: Log
  signal?: AbortSignal
}

/** The producer's side of `scipio-s3-storage-objects`: adopts stored `.aar` objects and writes missing ones. Never throws. */
export class ScipioS3StorageObjects {
  /** Cache errors, for `strict`. */
  readonly problems: string[] = []
  readonly written: string[] = []
  readonly adopted: string[] = []
  private bytesWritten = 0
  private stopped: string | undefined
  private readonly writes = new Map<string, Promise<void>>()

  constructor(private readonly options: ScipioS3StorageOptions) {}

  /**
   * When scipio-s3-storage already stored this framework, indexes a copy of that object (hashed as stored)
   * instead of uploading an archive of our own. Skips an object this run found damaged, and anything that is not
   * an Apple Archive. Storage errors propagate, as for the producer's own archives.
   */
  async adopt(framework: LocalFramework, damaged: (key: string) => boolean): Promise<IndexEntry | undefined> {
    const { storage, prefix, outputDirectory, log } = this.options
    const key = aarObjectKey(prefix, framework.targetName, framework.scipioKey)
    // A HEAD refused where missing keys answer 403 (no s3:ListBucket) is a miss here too (storage/refusals.ts).
    if (damaged(key) || !(await unlessRefused(() => storage.head(key)))) return undefined
    const versionFile = await fs.readFile(path.join(outputDirectory, versionFileName(framework.targetName)))
    if (scipioKey(versionFile) !== framework.scipioKey) return undefined // rewritten since the scan: leave it to the normal upload
    const temp = own(await fs.mkdtemp(path.join(process.env.RUNNER_TEMP || os.tmpdir(), tempFolderPrefix('adopt'))))
    try {
      const file = path.join(temp, 'copy.aar')
      const stored = await this.download(key, file)
      if (!stored) return undefined
      const { size, sha256, head } = stored
      if (size === 0 || !looksLikeAppleArchive(head)) {
        log.warning(
          `${key} is not an Apple Archive; uploading ${framework.targetName} as usual instead of indexing it.`,
        )
        return undefined
      }
      if (damaged(contentObjectKey(prefix, framework.targetName, framework.scipioKey, sha256, AarFormat)))
        return undefined
      const copy = await this.keepCopy(framework, file, size, sha256)
      this.adopted.push(framework.targetName)
      log.info(
        `${framework.targetName}: scipio-s3-storage already stored ${key}; indexing a copy of it instead of uploading.`,
      )
      return {
        targetName: framework.targetName,
        scipioKey: framework.scipioKey,
        format: AarFormat,
        key: copy,
        size,
        sha256,
        versionFile: versionFile.toString('base64'),
      }
    } finally {
      await fs.rm(temp, { recursive: true, force: true }).catch(() => undefined)
      disown(temp)
    }
  }

  /** Streams `key` into `file` while hashing it: size, SHA-256 and first bytes of what was stored. */
  private async download(
    key: string,
    file: string,
  ): Promise<{ size: number; sha256: string; head: Buffer } | undefined> {
    const object = await this.options.storage.get(key, this.options.signal)
    if (!object) return undefined
    const hash = createHash('sha256')
    const measure = new Measure(hash)
    await pipeline(object.body, measure, createWriteStream(file))
    const handle = await fs.open(file)
    try {
      const { buffer, bytesRead } = await handle.read(Buffer.alloc(4), 0, 4, 0)
      return { size: measure.bytes, sha256: hash.digest('hex'), head: buffer.subarray(0, bytesRead) }
    } finally {
      await handle.close()
    }
  }

  /** Stores the adopted bytes under their content name, which no writer ever gives other bytes. */
  private async keepCopy(framework: LocalFramework, file: string, size: number, sha256: string): Promise<string> {
    const { storage, prefix, publish, signal } = this.options
    const key = contentObjectKey(prefix, framework.targetName, framework.scipioKey, sha256, AarFormat)
    await putFile(storage, key, file, {
      contentType: 'application/octet-stream',
      size,
      publicRead: publish,
      ...(signal ? { signal } : {}),
    })
    return key
  }

  /** Makes sure scipio-s3-storage's object exists beside `entry` (skipped when `entry` is that object). */
  mirror(framework: LocalFramework, entry: IndexEntry): Promise<void> {
    if (entry.format === AarFormat) return Promise.resolve()
    const id = `${framework.targetName}\0${framework.scipioKey}`
    let write = this.writes.get(id)
    if (!write) this.writes.set(id, (write = this.write(framework)))
    return write
  }

  private async write(framework: LocalFramework): Promise<void> {
    const { storage, prefix, outputDirectory, publish, log, signal } = this.options
    const key = aarObjectKey(prefix, framework.targetName, framework.scipioKey)
    let temp: string | undefined
    try {
      if (this.stopped || signal?.aborted) return
      const aa = await findAa()
      if (!aa) return this.stop(`${aaMissing} (run the producer on macOS)`)
      // Refused: taken as absent; the create-only write below then leaves one that is there after all (412).
      if (await unlessRefused(() => storage.head(key))) return
      temp = own(await fs.mkdtemp(path.join(os.tmpdir(), tempFolderPrefix('aar'))))
      const file = path.join(temp, `${framework.scipioKey}.aar`)
      await runAa(aa, aaArchiveArgs(path.join(outputDirectory, frameworkFolder(framework.targetName)), file), signal)
      const { size } = await fs.stat(file)
      if (!(await this.create(key, file, size))) return
      this.written.push(framework.targetName)
      this.bytesWritten += size
      log.info(
        `${framework.targetName}: stored ${key} for scipio-s3-storage (${publish ? 'public-read' : 'authenticated-read'}).`,
      )
    } catch (error) {
      const reason = signal?.aborted ? stopReason(signal) : errorMessage(error)
      if (error instanceof StorageError && error.fatal) {
        this.stop(
          /ACLs disabled/.test(reason)
            ? `the bucket has ACLs disabled, so the '${publish ? 'public-read' : 'authenticated-read'}' ACL scipio-s3-storage sends (and this action copies for its objects) is rejected; scipio-s3-storage's own uploads fail there too. Enable ACLs on the bucket, or turn 'scipio-s3-storage-objects' off.`
            : reason,
        )
        return
      }
      log.warning(`Could not store ${key} for scipio-s3-storage: ${reason}`)
      this.problems.push(`${key}: ${reason}`)
    } finally {
      if (temp) await fs.rm(temp, { recursive: true, force: true }).catch(() => undefined)
      if (temp) disown(temp)
    }
  }

  /**
   * Creates scipio-s3-storage's object; false when someone stored one meanwhile (412): theirs stays. A fault worth
   * another try (a connection reset, a 5xx) and a 409 (another write to that key was in flight, and may yet fail)
   * try again, as the cache's own uploads do, opening the file afresh; a 412 on a later try may be our own write.
   */
  private async create(key: string, file: string, size: number): Promise<boolean> {
    const { storage, publish, signal } = this.options
    try {
      await withRetry(defaultRetryPolicy, isWorthAnotherTry, () =>
        putFile(storage, key, file, {
          contentType: 'application/octet-stream',
          size,
          publicRead: publish,
          ...(publish ? {} : { acl: 'authenticated-read' as const }),
          ifNoneMatch: '*',
          ...(signal ? { signal } : {}),
        }),
      )
      return true
    } catch (error) {
      if (error instanceof PreconditionFailedError && error.status !== 409) return false
      throw error
    }
  }

  private stop(reason: string): void {
    if (this.stopped) return
    this.stopped = reason
    this.options.log.warning(`Not writing scipio-s3-storage objects: ${reason}`)
    this.problems.push(`scipio-s3-storage objects: ${reason}`)
  }

  /** One line for the log: what this run stored and adopted for scipio-s3-storage. */
  summary(): string {
    const mib = (this.bytesWritten / 1024 / 1024).toFixed(1)
    return `scipio-s3-storage objects: ${this.written.length} written (${mib} MiB), ${this.adopted.length} adopted instead of uploading.`
  }
}
