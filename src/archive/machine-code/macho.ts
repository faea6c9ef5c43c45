import type { CodeTransform, HashName } from './transforms.js'

/**
 * What the Mach-O headers of a file say may be transformed: the `__TEXT,__text` section of every arm64 and
 * x86_64 slice (thin `MH_MAGIC_64` files, and the slices of `FAT_MAGIC` / `FAT_MAGIC_64` files), and the page
 * hashes of each slice's code signature. Offsets are relative to the file; each transform names the start of its
 * slice (`base`), since a slice's addresses count from there.
 *
 * The producer and the consumer both run this: the producer to choose the transforms, the consumer to check that
 * an archive's record names nothing the headers do not (machine-code/record.ts). So anything the parse reads must
 * stay as it is: a transform touching those bytes is dropped, and both sides drop it alike. Anything that does
 * not parse as expected yields no transform: the file is stored as it is.
 */

/** Reads `length` bytes at `position` (fewer at the end of the file). */
export type ReadAt = (position: number, length: number) => Buffer

const fatMagic = 0xcafebabe
const fatMagic64 = 0xcafebabf
const machMagic64 = 0xfeedfacf
const cpuArm64 = 0x0100000c
const cpuX86_64 = 0x01000007
const lcSegment64 = 0x19
const lcCodeSignature = 0x1d
const superBlobMagic = 0xfade0cc0
const codeDirectoryMagic = 0xfade0c02
/** The primary CodeDirectory's slot, and the alternates (another hash type each). */
const codeDirectorySlots = new Set([0, 0x1000, 0x1001, 0x1002, 0x1003, 0x1004])
/** Load commands or a signature larger than this are not a framework's: the file is stored as it is. */
const maxHeaderBytes = 16 * 1024 * 1024
/** Fat files hold a handful of slices; FAT_MAGIC is also a Java class file's magic, whose next field is larger. */
const maxSlices = 32

const hashTypes: Record<number, { name: HashName; size: number } | undefined> = {
  1: { name: 'sha1', size: 20 },
  2: { name: 'sha256', size: 32 },
  3: { name: 'sha256', size: 20 }, // SHA-256 truncated to 20 bytes
  4: { name: 'sha384', size: 48 },
}

interface Region {
  start: number
  end: number
}

class Reader {
  /** Every byte range the parse looked at. */
  readonly regions: Region[] = []
  constructor(
    private readonly readAt: ReadAt,
    readonly size: number,
  ) {}

  /** `length` bytes at `position`, or undefined when the file is shorter. */
  bytes(position: number, length: number): Buffer | undefined {
    if (position < 0 || length < 0 || position + length > this.size) return undefined
    const data = this.readAt(position, length)
    if (data.length !== length) return undefined
    this.regions.push({ start: position, end: position + length })
    return data
  }
}

/** The transforms the headers of a file of `size` bytes allow; [] when it is not Mach-O, or not as expected. */
export function machineCodeTransforms(readAt: ReadAt, size: number): CodeTransform[] {
  const reader = new Reader(readAt, size)
  const head = reader.bytes(0, 8)
  if (!head) return []
  const magic = head.readUInt32BE(0)
  const slices = magic === fatMagic || magic === fatMagic64 ? fatSlices(reader, magic === fatMagic64) : [[0, size]]
  const found = (slices ?? []).flatMap(([base, length]) => sliceTransforms(reader, base!, length!))
  const kept = found.filter((t) => !overlaps(modified(t), reader.regions))
  // Each rewritten range apart from the others, and no page hash inside the bytes that are hashed, so that the
  // hashes are of the same bytes on both sides; an honest file is always so. Otherwise the file is stored as it is.
  const rewritten = kept.flatMap(modified)
  const slots = kept.flatMap((t) => (t.kind === 'pages' ? modified(t) : []))
  const hashed = kept.flatMap((t) => (t.kind === 'pages' ? [{ start: t.base, end: t.base + t.limit }] : []))
  const apart = rewritten.every((r, i) => !overlaps([r], rewritten.slice(0, i))) && !overlaps(slots, hashed)
  return apart ? kept : []
}

function overlaps(a: readonly Region[], b: readonly Region[]): boolean {
  return a.some((x) => b.some((y) => x.start < y.end && y.start < x.end))
}

/** The byte ranges a transform rewrites. */
export function modified(t: CodeTransform): Region[] {
  if (t.kind === 'pages') {
    const count = Math.ceil(t.limit / 2 ** t.pageBits)
    return [{ start: t.slots, end: t.slots + count * t.hashSize }]
  }
  return [{ start: t.start, end: t.start + t.length }]
}

function fatSlices(reader: Reader, wide: boolean): [number, number][] | undefined {
  const head = reader.bytes(0, 8)!
  const count = head.readUInt32BE(4)
  if (count === 0 || count > maxSlices) return undefined
  const entryBytes = wide ? 32 : 20
  const table = reader.bytes(8, count * entryBytes)
  if (!table) return undefined
  const slices: [number, number][] = []
  for (let i = 0; i < count; i++) {
    const at = i * entryBytes
    const offset = wide ? Number(table.readBigUInt64BE(at + 8)) : table.readUInt32BE(at + 8)
    const length = wide ? Number(table.readBigUInt64BE(at + 16)) : table.readUInt32BE(at + 12)
    if (offset < 8 + count * entryBytes || offset + length > reader.size) return undefined
    slices.push([offset, length])
  }
  const sorted = [...slices].sort((a, b) => a[0] - b[0])
  if (sorted.some(([offset], i) => i > 0 && offset < sorted[i - 1]![0] + sorted[i - 1]![1])) return undefined
  return slices
}

interface SliceLayout {
  kind: 'arm64' | 'x86_64'
  /** `__TEXT,__text`, relative to the slice. */
  text?: { offset: number; size: number }
  /** LC_CODE_SIGNATURE's blob, relative to the slice. */
  signature?: { offset: number; size: number }
}

function sliceTransforms(reader: Reader, base: number, length: number): CodeTransform[] {
  const layout = loadCommands(reader, base, length)
  if (!layout) return []
  const out: CodeTransform[] = []
  const { text, signature, kind } = layout
  // Instructions are converted with 32-bit arithmetic on their offset in the slice.
  if (text && text.size > 0 && text.offset % 4 === 0 && text.offset + text.size <= 2 ** 32) {
    out.push({ kind, base, start: base + text.offset, length: text.size })
  }
  if (signature) out.push(...pageHashes(reader, base, length, signature))
  return out
}

function loadCommands(reader: Reader, base: number, length: number): SliceLayout | undefined {
  const header = reader.bytes(base, 32)
  if (!header || header.readUInt32LE(0) !== machMagic64) return undefined
  const cpu = header.readUInt32LE(4)
  const kind = cpu === cpuArm64 ? 'arm64' : cpu === cpuX86_64 ? 'x86_64' : undefined
  const count = header.readUInt32LE(16)
  const bytes = header.readUInt32LE(20)
  if (!kind || bytes > maxHeaderBytes || 32 + bytes > length) return undefined
  const commands = reader.bytes(base + 32, bytes)
  if (!commands) return undefined
  const layout: SliceLayout = { kind }
  const headerEnd = 32 + bytes
  for (let i = 0, at = 0; i < count; i++) {
    if (at + 8 > bytes) return undefined
    const cmd = commands.readUInt32LE(at)
    const size = commands.readUInt32LE(at + 4)
    if (size < 8 || at + size > bytes) return undefined
    if (cmd === lcSegment64 && size >= 72) {
      const sections = commands.readUInt32LE(at + 64)
      if (72 + sections * 80 > size) return undefined
      for (let s = 0; s < sections; s++) {
        const sa = at + 72 + s * 80
        if (name(commands, sa) !== '__text' || name(commands, sa + 16) !== '__TEXT') continue
        const sectionSize = Number(commands.readBigUInt64LE(sa + 40))
        const offset = commands.readUInt32LE(sa + 48)
        if (offset >= headerEnd && offset + sectionSize <= length) layout.text = { offset, size: sectionSize }
      }
    } else if (cmd === lcCodeSignature && size >= 16) {
      const offset = commands.readUInt32LE(at + 8)
      const blob = commands.readUInt32LE(at + 12)
      if (offset >= headerEnd && offset + blob <= length && blob <= maxHeaderBytes)
        layout.signature = { offset, size: blob }
    }
    at += size
  }
  return layout
}

function name(bytes: Buffer, at: number): string {
  const raw = bytes.subarray(at, at + 16)
  const end = raw.indexOf(0)
  return raw.toString('latin1', 0, end === -1 ? 16 : end)
}

/**
 * The page hashes of each CodeDirectory in the signature: hash `i` is the digest of the slice's bytes
 * [i·pageSize, min((i+1)·pageSize, codeLimit)). They are a function of bytes the archive holds anyway.
 */
function pageHashes(
  reader: Reader,
  base: number,
  length: number,
  signature: { offset: number; size: number },
): CodeTransform[] {
  const blobStart = base + signature.offset
  const head = reader.bytes(blobStart, 12)
  if (!head || head.readUInt32BE(0) !== superBlobMagic) return []
  const count = head.readUInt32BE(8)
  if (count > 64 || 12 + count * 8 > signature.size) return []
  const index = reader.bytes(blobStart + 12, count * 8)!
  const out: CodeTransform[] = []
  for (let i = 0; i < count; i++) {
    if (!codeDirectorySlots.has(index.readUInt32BE(i * 8))) continue
    const at = index.readUInt32BE(i * 8 + 4)
    if (at + 44 > signature.size) continue
    const cd = reader.bytes(blobStart + at, 44)!
    if (cd.readUInt32BE(0) !== codeDirectoryMagic) continue
    const hashOffset = cd.readUInt32BE(16)
    const slots = cd.readUInt32BE(28)
    const limit = cd.readUInt32BE(32)
    const hash = hashTypes[cd[37]!]
    const pageBits = cd[39]!
    if (!hash || cd[36] !== hash.size || pageBits < 9 || pageBits > 20 || limit === 0) continue
    // 64-bit code limits (CodeDirectory 2.3+) are not handled: such a signature is left as it is.
    if (cd.readUInt32BE(8) >= 0x20300) {
      const wide = reader.bytes(blobStart + at + 56, 8)
      if (!wide || wide.readBigUInt64BE(0) !== 0n) continue
    }
    const pageBytes = 2 ** pageBits
    const slotsAt = blobStart + at + hashOffset
    const fits =
      slots === Math.ceil(limit / pageBytes) &&
      limit <= signature.offset &&
      base % pageBytes === 0 &&
      at + hashOffset + slots * hash.size <= signature.size &&
      slotsAt + slots * hash.size <= base + length
    if (fits) out.push({ kind: 'pages', hash: hash.name, hashSize: hash.size, base, limit, pageBits, slots: slotsAt })
  }
  return out
}
