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
 * Restores, in place, a file the archive stored with `recorded` transforms: `fd` is open for reading and writing
 * and holds all `size` bytes. The record must name only what the file's own headers allow (they are stored as
 * they are): anything else is damage, and nothing is changed.
 */
export function decodeFile(fd: number, size: number, recorded: readonly CodeTransform[], path: string): void {
  const allowed = machineCodeTransforms(readerOf(fd), size)
  if (!recorded.every((t) => allowed.some((a) => sameTransform(a, t)))) {
    throw new CorruptArchiveError(
      `the archive is corrupted (its machine-code record for '${path}' does not match its headers)`,
    )
  }
  const pages = recorded.filter((t): t is PageHashes => t.kind === 'pages')
  const slots = pages.map((t) => readerOf(fd)(t.slots, slotBytes(t)))
  const block = Buffer.allocUnsafe(blockBytes)
  for (const start of blocksOf(recorded)) {
    const data = readBlock(fd, block, start, size)
    let changed = false
    for (const t of recorded) if (t.kind !== 'pages') changed = convertBranches(data, start, t, -1) || changed
    if (changed) writeFully(fd, data, start)
    pages.forEach((t, i) => xorPageHashes(data, start, t, slots[i]!))
  }
  pages.forEach((t, i) => writeFully(fd, slots[i]!, t.slots))
}

/** The starts of the blocks that hold converted code or hashed pages, in order. */
function blocksOf(transforms: readonly CodeTransform[]): number[] {
  const starts = new Set<number>()
  for (const t of transforms) {
    const [from, to] = t.kind === 'pages' ? [t.base, t.base + t.limit] : [t.start, t.start + t.length]
    for (let b = from - (from % blockBytes); b < to; b += blockBytes) starts.add(b)
  }
  return [...starts].sort((a, b) => a - b)
}

function writeFully(fd: number, data: Buffer, position: number): void {
  for (let done = 0; done < data.length;) {
    const n = fs.writeSync(fd, data, done, data.length - done, position + done)
    if (n === 0) throw new Error('short write')
    done += n
  }
}
