import { hash } from 'node:crypto'
import * as fs from 'node:fs'
import { CorruptArchiveError } from '../guard.js'
import { machineCodeTransforms } from './macho.js'
import {
  blockBytes,
  convertBranches,
  formatRecord,
  sameTransform,
  type CodeTransform,
  type PageHashes,
} from './transforms.js'

/**
 * Applying a file's transforms (machine-code/transforms.ts): the producer stores each 1 MiB block converted, and
 * the consumer, once the file is whole on disk, converts it back in place and puts the page hashes back.
 */

/** Smaller files are stored as they are: a Mach-O worth converting is larger. */
const minimumBytes = 16 * 1024

/** What the producer stores of one file: its transforms (the archive's record) and the page hashes as stored. */
export interface CodePlan {
  transforms: CodeTransform[]
  record: string
  /** The bytes of each page-hash array as archived. */
  patches: { offset: number; bytes: Buffer }[]
}

function readerOf(fd: number): (position: number, length: number) => Buffer {
  return (position, length) => {
    const data = Buffer.alloc(length)
    let done = 0
    while (done < length) {
      const n = fs.readSync(fd, data, done, length - done, position + done)
      if (n === 0) break
      done += n
    }
    return data.subarray(0, done)
  }
}

/** The file's bytes from `position` to the end of the block buffer or of the file, read into `block`. */
function readBlock(fd: number, block: Buffer, position: number, size: number): Buffer {
  const length = Math.max(0, Math.min(block.length, size - position))
  for (let done = 0; done < length;) {
    const n = fs.readSync(fd, block, done, length - done, position + done)
    if (n === 0) throw new Error('the file is shorter than its size')
    done += n
  }
  return block.subarray(0, length)
}

/** The file's plan, or undefined when it is stored as it is (not Mach-O, damaged, or nothing to convert). */
export function planMachineCode(file: string, size: number): CodePlan | undefined {
  if (size < minimumBytes) return undefined
  const fd = fs.openSync(file, 'r')
  try {
    const transforms = machineCodeTransforms(readerOf(fd), size)
    if (transforms.length === 0) return undefined
    const patches = transforms.flatMap((t) => (t.kind === 'pages' ? [storedPageHashes(fd, t, size)] : []))
    return { transforms, record: formatRecord(transforms), patches }
  } finally {
    fs.closeSync(fd)
  }
}

function slotBytes(t: PageHashes): number {
  return Math.ceil(t.limit / 2 ** t.pageBits) * t.hashSize
}

/** The hash array XORed with the hashes of the pages as they are: zeros for an honest signature. */
function storedPageHashes(fd: number, t: PageHashes, size: number): { offset: number; bytes: Buffer } {
  const bytes = readerOf(fd)(t.slots, slotBytes(t))
  const block = Buffer.allocUnsafe(blockBytes)
  for (let start = t.base - (t.base % blockBytes); start < t.base + t.limit; start += blockBytes) {
    xorPageHashes(readBlock(fd, block, start, size), start, t, bytes)
  }
  return { offset: t.slots, bytes }
}

/** XORs into `slots` the digest of every page of `t` that starts in `block` (the file's bytes at `blockStart`). */
function xorPageHashes(block: Buffer, blockStart: number, t: PageHashes, slots: Buffer): void {
  const pageBytes = 2 ** t.pageBits
  const end = t.base + t.limit
  const first = Math.max(0, Math.ceil((blockStart - t.base) / pageBytes))
  for (let i = first; ; i++) {
    const start = t.base + i * pageBytes
    if (start >= end || start >= blockStart + block.length) break
    const stop = Math.min(start + pageBytes, end)
    if (stop > blockStart + block.length)
      throw new CorruptArchiveError('the archive is corrupted (a page out of place)')
    const digest = hash(t.hash, block.subarray(start - blockStart, stop - blockStart), 'buffer')
    const at = i * t.hashSize
    for (let b = 0; b < t.hashSize; b++) slots[at + b]! ^= digest[b]!
  }
}

/** Converts a block the producer read at `blockStart` into what the archive stores. */
export function encodeBlock(block: Buffer, blockStart: number, plan: CodePlan): void {
  for (const t of plan.transforms) if (t.kind !== 'pages') convertBranches(block, blockStart, t, 1)
  for (const patch of plan.patches) {
    const from = Math.max(patch.offset, blockStart)
    const to = Math.min(patch.offset + patch.bytes.length, blockStart + block.length)
    if (from < to) patch.bytes.copy(block, from - blockStart, from - patch.offset, to - patch.offset)
  }
}

/**
 * Converts back, as it arrives, a file the archive stored with `recorded` transforms: `push` takes the file's bytes
 * in order and hands back whole 1 MiB blocks (the last one shorter) converted back, ready to be written; `finish`,
 * once every block is written, checks the record against the file's own headers (stored as they are) and writes
 * the page hashes back. A record that names anything the headers do not allow is damage: the extraction fails
 * and its folder is removed (archive/extract.ts).
 */
export class CodeDecoder {
  private block: Buffer
  private filled = 0
  private start = 0
  /** Blocks the caller has written and handed back (`release`): reused rather than left to the collector. */
  private readonly spare: Buffer[] = []
  private readonly pages: { t: PageHashes; digests: Buffer; stored: Buffer }[]

  constructor(
    private readonly recorded: readonly CodeTransform[],
    private readonly size: number,
    private readonly path: string,
  ) {
    if (!recorded.every((t) => withinFile(t, size))) throw this.damage()
    this.pages = recorded
      .filter((t): t is PageHashes => t.kind === 'pages')
      .map((t) => ({ t, digests: Buffer.alloc(slotBytes(t)), stored: Buffer.alloc(slotBytes(t)) }))
    this.block = this.nextBlock()
  }

  /** The whole blocks `data` (the file's next bytes) completes, converted back. */
  push(data: Buffer): { data: Buffer; position: number }[] {
    const ready: { data: Buffer; position: number }[] = []
    for (let offset = 0; offset < data.length;) {
      const take = Math.min(this.block.length - this.filled, data.length - offset)
      data.copy(this.block, this.filled, offset, offset + take)
      this.filled += take
      offset += take
      if (this.filled === this.block.length) ready.push(this.convert())
    }
    return ready
  }

  private convert(): { data: Buffer; position: number } {
    const data = this.block
    const position = this.start
    for (const t of this.recorded) if (t.kind !== 'pages') convertBranches(data, position, t, -1)
    for (const p of this.pages) {
      xorPageHashes(data, position, p.t, p.digests)
      copyOverlap(data, position, p.stored, p.t.slots)
    }
    this.start += data.length
    this.filled = 0
    this.block = this.nextBlock()
    return { data, position }
  }

  /** A block `push` handed out, once it is written: the decoder fills it again. */
  release(block: Buffer): void {
    if (block.length === blockBytes && this.spare.length < 4) this.spare.push(block)
  }

  private nextBlock(): Buffer {
    const length = Math.min(blockBytes, this.size - this.start)
    return (length === blockBytes ? this.spare.pop() : undefined) ?? Buffer.allocUnsafe(length)
  }

  /** Once all `size` bytes are written to `fd` (open for reading and writing): the check, and the page hashes. */
  finish(fd: number): void {
    if (this.start !== this.size) throw this.damage()
    const allowed = machineCodeTransforms(readerOf(fd), this.size)
    if (!this.recorded.every((t) => allowed.some((a) => sameTransform(a, t)))) throw this.damage()
    for (const p of this.pages) {
      for (let i = 0; i < p.stored.length; i++) p.stored[i]! ^= p.digests[i]!
      writeFully(fd, p.stored, p.t.slots)
    }
  }

  private damage(): CorruptArchiveError {
    return new CorruptArchiveError(
      `the archive is corrupted (its machine-code record for '${this.path}' does not match its headers)`,
    )
  }
}

/** Whether every byte a transform names lies in the file: what a decoder allocates stays bounded by it. */
function withinFile(t: CodeTransform, size: number): boolean {
  if (t.kind !== 'pages') return t.start + t.length <= size && t.base <= t.start
  return (
    t.pageBits >= 9 &&
    t.pageBits <= 16 &&
    t.hashSize <= 48 &&
    t.base + t.limit <= size &&
    t.slots + slotBytes(t) <= size
  )
}

/** Copies into `target` (the file's bytes at `targetAt`) what of `block` (at `blockStart`) overlaps it. */
function copyOverlap(block: Buffer, blockStart: number, target: Buffer, targetAt: number): void {
  const from = Math.max(blockStart, targetAt)
  const to = Math.min(blockStart + block.length, targetAt + target.length)
  if (from < to) block.copy(target, from - targetAt, from - blockStart, to - blockStart)
}

/** Restores, in place, a whole file the archive stored with `recorded` transforms (`fd` open for reading and writing). */
export function decodeFile(fd: number, size: number, recorded: readonly CodeTransform[], path: string): void {
  const decoder = new CodeDecoder(recorded, size, path)
  const block = Buffer.allocUnsafe(blockBytes)
  for (let start = 0; start < size; start += blockBytes) {
    for (const ready of decoder.push(Buffer.from(readBlock(fd, block, start, size))))
      writeFully(fd, ready.data, ready.position)
  }
  decoder.finish(fd)
}

function writeFully(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length;) {
    const n = fs.writeSync(fd, data, done, data.length - done, position + done)
    if (n === 0) throw new Error('short write')
    done += n
  }
}
