import * as fs from 'node:fs'
import * as path from 'node:path'
import { Writable } from 'node:stream'
import { CorruptArchiveError, type EntryGuard, UnsafeArchiveError } from './guard.js'
import { piecesMarker } from './pack.js'
import { CodeDecoder } from './machine-code/codec.js'
import { parseRecord, type CodeTransform } from './machine-code/transforms.js'

/**
 * A lean tar extractor: it parses the 512-byte headers itself (ustar, pax `x`/`g` records, GNU long names), asks
 * the EntryGuard about every entry before touching the disk, makes each folder once, and writes file data
 * straight from the decompressor's chunks. Replaces node-tar's per-entry streams and state machines, which
 * were most of the restore's CPU time (docs/benchmarks.md).
 *
 * Small writes and metadata calls are synchronous (a few microseconds each, no thread-pool round trip);
 * large data writes go to the thread pool so the main thread keeps hashing and parsing meanwhile.
 * Folder modes and times are set last, deepest first, so a read-only folder or a child's write cannot undo them.
 * A file stored converted (the `code.tar.zst` format, machine-code/) is converted back block by block as it is
 * written; once it is whole its record is checked against its headers and its page hashes put back, before its
 * mode and time are set.
 */

const BLOCK = 512
const zeroBlock = Buffer.alloc(BLOCK)
const asyncWriteFrom = 64 * 1024
const createFlags = fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW
/** A converted file's headers are read back to check its record: open for reading too. */
const accessOf = (code: unknown) => (code ? fs.constants.O_RDWR : fs.constants.O_WRONLY)

/** node-tar's names for the type flags, which the EntryGuard and its messages use. */
const typeNames: Record<string, string> = {
  '0': 'File',
  '': 'OldFile',
  '1': 'Link',
  '2': 'SymbolicLink',
  '3': 'CharacterDevice',
  '4': 'BlockDevice',
  '5': 'Directory',
  '6': 'FIFO',
  '7': 'ContiguousFile',
  x: 'ExtendedHeader',
  g: 'GlobalExtendedHeader',
  L: 'NextFileHasLongPath',
  K: 'NextFileHasLongLinkpath',
  M: 'ContinuationFile',
}

interface Header {
  path: string
  type: string
  mode: number
  size: number
  mtime: number
  linkpath: string
  /** A piece of a file (type M, written by pack.ts): where it goes, and the whole file's size. */
  part?: { offset: number; total: number }
  /** `SCIPIO.code`: how the file is stored converted. */
  code?: CodeTransform[]
}

function cString(block: Buffer, start: number, length: number): string {
  const end = block.indexOf(0, start)
  return block.toString('utf8', start, end === -1 || end > start + length ? start + length : end)
}

/** Octal text, or base-256 when the first byte's high bit is set (GNU, for values octal cannot hold). */
function number(block: Buffer, start: number, length: number): number {
  if (block[start]! & 0x80) {
    let value = block[start]! & 0x7f
    for (let i = 1; i < length; i++) value = value * 256 + block[start + i]!
    return value
  }
  const text = block
    .toString('latin1', start, start + length)
    .replace(/[\0 ].*$/s, '')
    .trim()
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text))
    throw new CorruptArchiveError(`the archive is corrupted (bad number '${text}' in a tar header)`)
  return parseInt(text, 8)
}

function checksumOk(block: Buffer): boolean {
  const stored = number(block, 148, 8)
  let sum = 8 * 0x20
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += block[i]!
  return sum === stored
}

/** `<length> <key>=<value>\n` records. */
function paxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  let at = 0
  while (at < data.length) {
    const space = data.indexOf(0x20, at)
    const length = space === -1 ? NaN : Number(data.toString('latin1', at, space))
    if (!Number.isSafeInteger(length) || length <= 0 || at + length > data.length)
      throw new CorruptArchiveError('the archive is corrupted (bad pax record)')
    const record = data.toString('utf8', space + 1, at + length - 1)
    const eq = record.indexOf('=')
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1)
    at += length
  }
  return out
}

function applyPax(header: Header, pax: Record<string, string>): void {
  if (pax.path !== undefined) header.path = pax.path
  if (pax.linkpath !== undefined) header.linkpath = pax.linkpath
  if (pax.size !== undefined && /^\d+$/.test(pax.size)) header.size = Number(pax.size)
  if (pax.mtime !== undefined && Number.isFinite(Number(pax.mtime))) header.mtime = Number(pax.mtime)
  if (pax['SCIPIO.offset'] !== undefined || pax['SCIPIO.size'] !== undefined) {
    const offset = Number(pax['SCIPIO.offset'])
    const total = Number(pax['SCIPIO.size'])
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(total) || offset < 0 || total < 0)
      throw new CorruptArchiveError('the archive is corrupted (bad file piece)')
    header.part = { offset, total }
  }
  if (pax['SCIPIO.code'] !== undefined) {
    const code = parseRecord(pax['SCIPIO.code'])
    if (!code) throw new CorruptArchiveError('the archive is corrupted (a bad machine-code record)')
    header.code = code
  }
}

/** A writable stream of an uncompressed tar; `destination` must be an empty folder the caller owns. */
export class TarExtractor extends Writable {
  /** Partial header or metadata record being collected. */
  private pending: Buffer[] = []
  private pendingBytes = 0
  private header: Header | undefined
  /** Bytes of the current entry's body still to come, then its padding. */
  private remaining = 0
  private padding = 0
  private meta: 'x' | 'g' | 'L' | 'K' | undefined
  private fd: number | undefined
  /** The large write in the thread pool, if any: its descriptor stays open until it settles. */
  private writing: Promise<void> | undefined
  private position = 0
  private ended = false
  private nextPax: Record<string, string> = {}
  private globalPax: Record<string, string> = {}
  private readonly madeFolders = new Set<string>()
  /** Files written in pieces and not yet complete: bytes written so far, the whole size, and the file's decoder. */
  private readonly pieces = new Map<string, { next: number; total: number; decoder?: CodeDecoder }>()
  /** Converts the current file's bytes back as they arrive, when it is stored converted. */
  private decoder: CodeDecoder | undefined
  private readonly folders: { abs: string; mode: number; mtime: number }[] = []

  constructor(
    private readonly destination: string,
    private readonly guard: EntryGuard,
    /** The format stores machine code converted: `SCIPIO.code` records are allowed (else they are damage). */
    private readonly machineCode = false,
  ) {
    super()
    this.madeFolders.add(path.resolve(destination))
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let step: Promise<void> | undefined
    try {
      step = this.consume(chunk, 0)
    } catch (error) {
      callback(error as Error)
      return
    }
    if (step) step.then(() => callback(), callback)
    else callback()
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.ended || this.pieces.size > 0) {
      callback(
        new CorruptArchiveError(
          `the archive is corrupted (${this.ended ? 'pieces of a file are missing' : 'it ends before the end-of-archive blocks'})`,
        ),
      )
      return
    }
    try {
      // Deepest first: a folder's time is set after everything inside it is written.
      for (const folder of this.folders.reverse()) {
        fs.chmodSync(folder.abs, folder.mode)
        // node-tar's portable archives record folders with mtime 0: leave those as the extraction left them.
        if (folder.mtime > 0) fs.utimesSync(folder.abs, folder.mtime, folder.mtime)
      }
      callback()
    } catch (error) {
      callback(error as Error)
    }
  }

  /**
   * Closes the open file only once a pending write to it has settled: closed earlier, its number could go to the
   * next file this process opens (extraction threads share descriptors), and the write would land there.
   */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const fd = this.fd
    this.fd = undefined
    const close = () => (fd === undefined ? callback(error) : fs.close(fd, () => callback(error)))
    if (this.writing) this.writing.then(close, close)
    else close()
  }

  /** Parses `chunk` from `offset`; returns a promise only when it had to wait for a large write. */
  private consume(chunk: Buffer, offset: number): Promise<void> | undefined {
    while (offset < chunk.length) {
      if (this.ended) return undefined // what follows the end-of-archive blocks is ignored, as tar does
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - offset)
        const piece = chunk.subarray(offset, offset + take)
        offset += take
        this.remaining -= take
        if (this.meta) this.collect(piece)
        else if (this.fd !== undefined) {
          if (this.decoder) {
            const blocks = this.decoder.push(piece)
            if (blocks.length === 0) {
              if (this.remaining === 0) this.endEntry()
              continue
            }
            const fd = this.fd
            const decoder = this.decoder
            this.writing = (async () => {
              for (const block of blocks) {
                await this.writeAll(fd, block.data, block.position)
                decoder.release(block.data)
              }
            })()
            return this.afterWrite(chunk, offset)
          }
          if (take >= asyncWriteFrom) {
            const fd = this.fd
            const position = this.position
            this.position += take
            this.writing = this.writeAll(fd, piece, position)
            return this.afterWrite(chunk, offset)
          }
          for (let done = 0; done < piece.length;) {
            const written = fs.writeSync(this.fd, piece, done, piece.length - done, this.position)
            if (written === 0) throw new Error('short write')
            done += written
            this.position += written
          }
        }
        if (this.remaining === 0) this.endEntry()
        continue
      }
      if (this.padding > 0) {
        const skip = Math.min(this.padding, chunk.length - offset)
        offset += skip
        this.padding -= skip
        continue
      }
      // A header: collect 512 bytes, possibly across chunks.
      const need = BLOCK - this.pendingBytes
      if (this.pendingBytes === 0 && chunk.length - offset >= BLOCK) {
        this.onHeader(chunk.subarray(offset, offset + BLOCK))
        offset += BLOCK
      } else {
        const take = Math.min(need, chunk.length - offset)
        this.collect(chunk.subarray(offset, offset + take))
        offset += take
        if (this.pendingBytes === BLOCK) this.onHeader(this.takePending())
      }
    }
    return undefined
  }

  /** Once the write under way settles: the entry's end, if this was its last byte, then the rest of `chunk`. */
  private afterWrite(chunk: Buffer, offset: number): Promise<void> {
    return this.writing!.then(() => {
      if (this.destroyed) return undefined // _destroy closes the file; nothing more is written
      if (this.remaining === 0) this.endEntry()
      return this.consume(chunk, offset)
    })
  }

  private async writeAll(fd: number, piece: Buffer, position: number): Promise<void> {
    let done = 0
    while (done < piece.length) {
      const written = await new Promise<number>((resolve, reject) =>
        fs.write(fd, piece, done, piece.length - done, position + done, (error, n) =>
          error ? reject(error) : resolve(n),
        ),
      )
      if (written === 0) throw new Error('short write')
      done += written
    }
  }

  private collect(piece: Buffer): void {
    // Metadata records (pax, long names) are small; the EntryGuard's caps do not see them, so cap them here.
    if (this.pendingBytes + piece.length > 1024 * 1024)
      throw new UnsafeArchiveError('refused: a tar metadata record larger than 1 MiB')
    this.pending.push(Buffer.from(piece))
    this.pendingBytes += piece.length
  }

  private takePending(): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending)
    this.pending = []
    this.pendingBytes = 0
    return all
  }

  private onHeader(block: Buffer): void {
    if (block.equals(zeroBlock)) {
      this.ended = true
      return
    }
    if (!checksumOk(block)) throw new CorruptArchiveError('the archive is corrupted (bad tar header checksum)')
    const magic = block.toString('latin1', 257, 263)
    const prefix = magic === 'ustar\0' ? cString(block, 345, 155) : ''
    const name = cString(block, 0, 100)
    const flag = block.toString('latin1', 156, 157).replace('\0', '')
    const header: Header = {
      path: prefix ? `${prefix}/${name}` : name,
      type: typeNames[flag] ?? `Unsupported (${JSON.stringify(flag)})`,
      mode: number(block, 100, 8) & 0o777,
      size: number(block, 124, 12),
      mtime: number(block, 136, 12),
      linkpath: cString(block, 157, 100),
    }
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      // A metadata record describes the next real entry; its own header only gives the record's length.
      this.meta = flag
      this.remaining = header.size
      this.padding = (BLOCK - (header.size % BLOCK)) % BLOCK
      if (header.size === 0) this.endEntry()
      return
    }
    applyPax(header, this.globalPax)
    applyPax(header, this.nextPax)
    this.nextPax = {}
    if (header.type === 'FIFO' && header.path === piecesMarker && header.size === 0) return // see pack.ts
    // Pieces of a file (pack.ts): type M with their place in pax records; anything else is damage.
    if ((header.type === 'ContinuationFile') !== (header.part !== undefined))
      throw new CorruptArchiveError('the archive is corrupted (a file piece without its place)')
    if (header.code) this.checkRecord(header)
    // A piece is checked like the file it belongs to: same path rules, its bytes counted against the caps.
    const refusal = this.guard.check(
      header.path,
      header.type === 'ContinuationFile' ? 'File' : header.type,
      header.size,
      header.type === 'SymbolicLink' ? header.linkpath : undefined,
    )
    if (refusal) throw new UnsafeArchiveError(`refused: ${refusal}`)
    // Only files keep their body; any body another entry declares is skipped.
    this.header = header
    this.remaining = header.size
    this.padding = (BLOCK - (header.size % BLOCK)) % BLOCK
    this.startEntry(header)
    if (header.size === 0) this.endEntry()
  }

  /** A machine-code record belongs on a file (a whole one, or its first piece) of a format that has them. */
  private checkRecord(header: Header): void {
    if (!this.machineCode)
      throw new CorruptArchiveError('the archive is corrupted (a machine-code record in a format without them)')
    if (header.type !== 'File' && header.type !== 'ContinuationFile' && header.type !== 'OldFile')
      throw new UnsafeArchiveError(`refused: a machine-code record on '${header.path}', a ${header.type} entry`)
    if (header.part && header.part.offset !== 0)
      throw new CorruptArchiveError(
        `the archive is corrupted (a machine-code record on a later piece of '${header.path}')`,
      )
  }

  private folder(abs: string): void {
    if (this.madeFolders.has(abs)) return
    fs.mkdirSync(abs, { recursive: true })
    for (let dir = abs; !this.madeFolders.has(dir); dir = path.dirname(dir)) this.madeFolders.add(dir)
  }

  private startEntry(header: Header): void {
    const abs = path.join(this.destination, header.path.replace(/\/+$/, ''))
    if (header.type === 'Directory') {
      this.folder(abs)
      this.folders.push({ abs, mode: header.mode, mtime: header.mtime })
      return
    }
    this.folder(path.dirname(abs))
    if (header.type === 'SymbolicLink') {
      try {
        fs.symlinkSync(header.linkpath, abs)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || fs.lstatSync(abs).isDirectory()) throw error
        fs.unlinkSync(abs)
        fs.symlinkSync(header.linkpath, abs)
      }
      fs.lutimesSync(abs, header.mtime, header.mtime)
      return
    }
    if (header.part) {
      const { offset, total } = header.part
      const known = this.pieces.get(abs)
      if (
        offset + header.size > total ||
        (offset === 0 ? known !== undefined : known?.next !== offset || known.total !== total)
      ) {
        throw new CorruptArchiveError(`the archive is corrupted (a piece of '${header.path}' out of place)`)
      }
      const decoder = offset === 0 ? this.decoderOf(header, total) : known?.decoder
      this.pieces.set(abs, { next: offset + header.size, total, ...(decoder ? { decoder } : {}) })
      this.decoder = decoder
      // The first piece creates the file; the others add to it, never through a symlink.
      const flags = accessOf(decoder) | (offset === 0 ? createFlags : fs.constants.O_NOFOLLOW)
      this.fd = fs.openSync(abs, flags, 0o600)
      this.position = offset
      return
    }
    this.decoder = this.decoderOf(header, header.size)
    // O_NOFOLLOW: never write through a symlink that is already there.
    this.fd = fs.openSync(abs, accessOf(this.decoder) | createFlags, 0o600)
    this.position = 0
  }

  private decoderOf(header: Header, size: number): CodeDecoder | undefined {
    return header.code ? new CodeDecoder(header.code, size, header.path) : undefined
  }

  private endEntry(): void {
    if (this.meta) {
      const data = this.takePending()
      if (this.meta === 'x') this.nextPax = { ...this.nextPax, ...paxRecords(data) }
      else if (this.meta === 'g') this.globalPax = { ...this.globalPax, ...paxRecords(data) }
      else if (this.meta === 'L') this.nextPax = { ...this.nextPax, path: cString(data, 0, data.length) }
      else this.nextPax = { ...this.nextPax, linkpath: cString(data, 0, data.length) }
      this.meta = undefined
      return
    }
    const header = this.header!
    if (this.fd !== undefined) {
      const fd = this.fd
      this.fd = undefined
      const abs = header.part && path.join(this.destination, header.path)
      const piece = abs ? this.pieces.get(abs) : undefined
      const complete = !piece || piece.next === header.part!.total
      const decoder = this.decoder
      this.decoder = undefined
      try {
        if (complete) {
          decoder?.finish(fd)
          fs.fchmodSync(fd, header.mode)
          fs.futimesSync(fd, header.mtime, header.mtime)
        }
      } finally {
        fs.closeSync(fd)
      }
      if (abs && complete) this.pieces.delete(abs)
    }
    this.header = undefined
  }
}
