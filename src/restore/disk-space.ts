import * as fs from 'node:fs/promises'
import { DiskFullError } from '../errors.js'

export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/** The bytes free for this process on `folder`'s disk; undefined where the file system does not say. */
export function freeBytes(folder: string): Promise<number | undefined> {
  return fs.statfs(folder).then(
    (s) => s.bavail * s.bsize,
    () => undefined,
  )
}

/**
 * The free space of the output folder's disk, measured once when the restore starts, and the downloads that
 * claimed part of it. Archive sizes are what the indexes know; an unpacked framework takes more, so a check
 * that passes can still meet a full disk (ENOSPC) while unpacking: both stop the restore the same way.
 */
export class DiskSpace {
  /** Bytes of every archive this restore set out to download. */
  wanted = 0
  /** How the full disk showed: before a download (`check`) or as a failed write (`write`). */
  full: 'check' | 'write' | undefined
  private reserved = 0

  private constructor(
    readonly folder: string,
    /** Undefined where the file system does not say. */
    readonly free: number | undefined,
    private readonly stop: AbortController,
  ) {}

  static async of(folder: string, stop: AbortController): Promise<DiskSpace> {
    return new DiskSpace(folder, await freeBytes(folder), stop)
  }

  enough(bytes: number): boolean {
    return this.free === undefined || this.reserved + bytes <= this.free
  }

  /** Claims `bytes` for one download; false when they do not fit beside the downloads already under way. */
  reserve(bytes: number): boolean {
    if (!this.enough(bytes)) return false
    this.reserved += bytes
    return true
  }

  release(bytes: number): void {
    this.reserved = Math.max(0, this.reserved - bytes)
  }

  /** Stops the restore: no download starts after this, and those under way are aborted. */
  trip(how: 'check' | 'write'): void {
    this.full ??= how
    if (!this.stop.signal.aborted) this.stop.abort(new DiskFullError(`the disk of ${this.folder} is full`))
  }

  /** The one warning a full disk gives: the folder, the free space, and the bytes the restore needed. */
  report(restored: number, notRestored: number): string {
    const free = this.free === undefined ? 'an unknown amount' : mib(this.free)
    const needed = `${mib(this.wanted)} of archives (more once unpacked)`
    const what =
      this.full === 'check'
        ? `Not enough free space to restore: ${free} free in ${this.folder}, and the frameworks to restore need ${needed}.`
        : `The disk is full (no space left on device) in ${this.folder}: ${free} was free when the restore started, and it needed ${needed}.`
    return `${what} ${restored} frameworks were restored; the other ${notRestored} were not downloaded and will be built (Scipio needs room too: free some space on this disk, or point output-directory at a larger one).`
  }
}
