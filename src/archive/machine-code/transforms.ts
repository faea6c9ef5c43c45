/**
 * The reversible transforms a `code.tar.zst` archive may apply to a file's bytes, so that zstd finds more of
 * what machine code repeats (docs/storage.md, "Archive formats"):
 *
 * - `arm64` and `x86_64`: the branch conversion. A call stores its target relative to its own address, so calls
 *   to one function differ at every call site; stored as absolute offsets (relative to the slice), they repeat.
 *   arm64: `BL` (imm26, in words) and `ADRP` (imm21, in 4 KiB pages). x86_64: `E8` (call rel32), when the
 *   displacement's top byte is 00 or FF.
 * - `pages`: the page hashes of a code signature, stored XORed with the hashes of the pages as archived. Those
 *   hashes are random to a compressor, yet a function of bytes the archive holds anyway: an honest signature is
 *   stored as zeros, and any other comes back exactly as it was.
 *
 * Each transform is its own inverse's mirror and depends only on bytes it does not change, so a restore undoes it
 * exactly, whatever the bytes are. Branches are converted within each 1 MiB block of the file (file offsets
 * k·2^20) independently: an instruction across a block boundary is left as it is, and the x86_64 scan starts
 * afresh at each block, so a writer or a reader can work on any block alone.
 */

export type HashName = 'sha1' | 'sha256' | 'sha384'

export interface BranchRange {
  kind: 'arm64' | 'x86_64'
  /** The start of the slice in the file: an instruction's address counts from here. */
  base: number
  start: number
  length: number
}

export interface PageHashes {
  kind: 'pages'
  hash: HashName
  /** Bytes kept of each digest (20 for SHA-256 truncated). */
  hashSize: number
  /** The start of the slice; pages are [base + i·2^pageBits, …) up to base + limit. */
  base: number
  limit: number
  pageBits: number
  /** File offset of the first page's hash. */
  slots: number
}

export type CodeTransform = BranchRange | PageHashes

export const blockBytes = 1024 * 1024

/** Converts the branches of `range` within `block` (the file's bytes at `blockStart`); `sign` 1 stores, −1 restores. */
export function convertBranches(block: Buffer, blockStart: number, range: BranchRange, sign: 1 | -1): boolean {
  const from = Math.max(range.start, blockStart)
  const to = Math.min(range.start + range.length, blockStart + block.length)
  if (from >= to) return false
  const view = new DataView(block.buffer, block.byteOffset + (from - blockStart), to - from)
  const pcAt = from - range.base
  return range.kind === 'arm64' ? convertArm64(view, pcAt, sign) : convertX86(view, pcAt, sign)
}

const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1
const blOpcode = 0x94000000 | 0

/** The words of `view` (its first byte at slice offset `pcAt`). */
function convertArm64(view: DataView, pcAt: number, sign: 1 | -1): boolean {
  const count = view.byteLength >>> 2
  if (littleEndian && view.byteOffset % 4 === 0)
    return convertArm64Words(new Int32Array(view.buffer, view.byteOffset, count), pcAt >>> 2, sign)
  // Unaligned (never for blocks this project reads): converted in an aligned copy.
  const words = new Int32Array(count)
  for (let i = 0; i < count; i++) words[i] = view.getInt32(i * 4, true)
  const changed = convertArm64Words(words, pcAt >>> 2, sign)
  for (let i = 0; i < count; i++) view.setInt32(i * 4, words[i]!, true)
  return changed
}

/**
 * The instruction words at word `firstWord` of the slice and on. One tight loop over a typed array: this runs on
 * every restored byte of arm64 code, so it stays monomorphic and divides only by shifts (the 4 KiB page of word
 * `w` is `w >>> 10`).
 */
function convertArm64Words(words: Int32Array, firstWord: number, sign: 1 | -1): boolean {
  let changed = false
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!
    const top = word >>> 24
    if ((top & 0xfc) === 0x94) {
      // BL: imm26 counts words from this instruction.
      words[i] = blOpcode | ((word + sign * (firstWord + i)) & 0x03ffffff)
      changed = true
    } else if ((top & 0x9f) === 0x90) {
      // ADRP: imm21 (immhi in bits 5-23, immlo in bits 29-30) counts 4 KiB pages from this instruction's page.
      const pages = (((word >>> 5) & 0x7ffff) << 2) | ((word >>> 29) & 3)
      const target = (pages + sign * ((firstWord + i) >>> 10)) & 0x1fffff
      words[i] = (word & 0x9f00001f) | ((target & 3) << 29) | ((target >>> 2) << 5)
      changed = true
    }
  }
  return changed
}

/**
 * `E8` followed by a displacement whose top byte is 00 or FF (a call within ±16 MiB): the low 25 bits become
 * the target's offset modulo 2^25, and the top byte again copies bit 24, so a reader finds the same calls. Every
 * E8 takes its four bytes with it, converted or not: no displacement ever overlaps another, whatever the bytes.
 */
function convertX86(view: DataView, pcAt: number, sign: 1 | -1): boolean {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength)
  let changed = false
  const end = view.byteLength - 4
  // indexOf finds the next E8 natively; the bytes between are no instruction this filter changes.
  for (let p = bytes.indexOf(0xe8); p !== -1 && p < end; p = bytes.indexOf(0xe8, p + 5)) {
    const top = bytes[p + 4]
    if (top !== 0x00 && top !== 0xff) continue
    const next = pcAt + p + 5 // rel32 counts from the next instruction
    let target = (view.getInt32(p + 1, true) + sign * next) & 0x1ffffff
    if (target & 0x1000000) target |= ~0x1ffffff
    view.setInt32(p + 1, target, true)
    changed = true
  }
  return changed
}

/** The transforms as a file's record in the archive (a pax value): a JSON list of tuples. */
export function formatRecord(transforms: readonly CodeTransform[]): string {
  return JSON.stringify(
    transforms.map((t) =>
      t.kind === 'pages'
        ? ['pages', t.hash, t.hashSize, t.base, t.limit, t.pageBits, t.slots]
        : [t.kind, t.base, t.start, t.length],
    ),
  )
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

/** The transforms of a record; undefined when it is not one this release writes. */
export function parseRecord(text: string): CodeTransform[] | undefined {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 64) return undefined
  const out: CodeTransform[] = []
  for (const item of raw) {
    if (!Array.isArray(item)) return undefined
    const [kind, ...rest] = item as unknown[]
    if ((kind === 'arm64' || kind === 'x86_64') && rest.length === 3 && rest.every(isCount)) {
      const [base, start, length] = rest
      out.push({ kind, base: base!, start: start!, length: length! })
    } else if (kind === 'pages' && rest.length === 6 && rest.slice(1).every(isCount)) {
      const [hash, hashSize, base, limit, pageBits, slots] = rest as [HashName, number, number, number, number, number]
      if (hash !== 'sha1' && hash !== 'sha256' && hash !== 'sha384') return undefined
      out.push({ kind, hash, hashSize, base, limit, pageBits, slots })
    } else return undefined
  }
  return out
}

/** Same transform. */
export function sameTransform(a: CodeTransform, b: CodeTransform): boolean {
  return formatRecord([a]) === formatRecord([b])
}
