import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import type { Writable } from 'node:stream'
import { encodeBlock, planMachineCode, type CodePlan } from './machine-code/codec.js'
import { blockBytes } from './machine-code/transforms.js'

/**
 * Writes the tar of one XCFramework and its VersionFile, with the entries in an order that compresses well:
 * folders first, then every file next to the files of the same relative path in the other slices
 * (`ios-arm64/X.framework/X` beside `ios-arm64_x86_64-simulator/X.framework/X`; a macOS slice's
 * `Versions/A/` is left out of the comparison), so zstd finds the slices' shared headers, module files and
 * near-identical binaries within its window. Files of more than 1 MiB are moreover written in 1 MiB pieces
 * taken in turn from every slice (see partBytes). The VersionFile comes last. Plain ustar headers, with a pax
 * record for a path, link target or size ustar cannot hold; hard links are stored as the files they are.
 * With `machineCode` (the `code.tar.zst` format) each Mach-O file is stored converted (machine-code/), with its
 * transforms in a pax record `SCIPIO.code`.
 */

interface PackEntry {
  rel: string
  type: 'dir' | 'file' | 'symlink'
  mode: number
  mtime: number
  size: number
  linkpath: string
  order: string
  /** How a Mach-O file is stored converted (machine-code/codec.ts). */
  code?: CodePlan
}

/** A whole entry, or a piece of a large file (extract.ts puts the pieces back together). */
interface PackItem {
  entry: PackEntry
  part?: { offset: number; length: number }
}

export interface PackPlan {
  directory: string
  items: PackItem[]
  /** Exact length of the tar stream: zstd is told it up front (smaller window for small archives, content size in the frame). */
  tarBytes: number
}

const BLOCK = 512
const padTo = (n: number) => Math.ceil(n / BLOCK) * BLOCK

/** Sort key: the path inside the slice (without a versioned bundle's `Versions/<v>/`), then the slice. */
function orderKey(rel: string, type: PackEntry['type']): string {
  const parts = rel.split('/')
  if (type === 'dir') return `0\0${rel}`
  const kind = type === 'file' ? '1' : '2' // symlinks after the files, so they never split a group of files
  if (parts.length < 3) return `${kind}\0${parts.slice(1).join('/')}\0` // files at the top of the framework
  const [, slice, ...rest] = parts
  const inside = rest.join('/').replace(/(^|\/)Versions\/[^/]+\//, '$1')
  return `${kind}\0${inside}\0${slice}`
}

export async function planArchive(
  directory: string,
  folder: string,
  file: string,
  machineCode = false,
): Promise<PackPlan> {
  const entries: PackEntry[] = []
  const visit = async (rel: string) => {
    const stat = await fs.lstat(path.join(directory, rel))
    const base = { rel, mode: stat.mode & 0o777, mtime: Math.floor(stat.mtimeMs / 1000) }
    if (stat.isDirectory()) {
      entries.push({ ...base, type: 'dir', size: 0, linkpath: '', order: orderKey(rel, 'dir') })
      for (const name of (await fs.readdir(path.join(directory, rel))).sort()) await visit(`${rel}/${name}`)
    } else if (stat.isSymbolicLink()) {
      entries.push({
        ...base,
        type: 'symlink',
        size: 0,
        linkpath: await fs.readlink(path.join(directory, rel)),
        order: orderKey(rel, 'symlink'),
      })
    } else if (stat.isFile()) {
      const code = machineCode ? planMachineCode(path.join(directory, rel), stat.size) : undefined
      entries.push({
        ...base,
        type: 'file',
        size: stat.size,
        linkpath: '',
        order: orderKey(rel, 'file'),
        ...(code ? { code } : {}),
      })
    }
    // Sockets, devices and FIFOs have no place in a framework and would be refused on restore: left out.
  }
  await visit(folder)
  entries.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0))
  const version = await fs.lstat(path.join(directory, file))
  if (!version.isFile()) throw new Error(`${file} is not a file`)
  entries.push({
    rel: file,
    type: 'file',
    mode: version.mode & 0o777,
    mtime: Math.floor(version.mtimeMs / 1000),
    size: version.size,
    linkpath: '',
    order: '',
  })
  const items = interleave(entries)
  let tarBytes = 3 * BLOCK // the marker, and the two blocks that end an archive
  for (const item of items) tarBytes += headerBytes(item).length + padTo(item.part?.length ?? item.entry.size)
  return { directory, items, tarBytes }
}

/**
 * Pieces of this size, taken in turn from the same file of every slice (device, simulator, macOS), keep a
 * page within 2 pieces (2 MiB) of the device page it resembles, whatever the binaries' size: zstd finds it
 * with a 4 MiB window, and a consumer's decoder needs no more than that. (Measured on the realistic set:
 * 1 MiB pieces and a 4 MiB window compress 1% better than 2 MiB pieces and an 8 MiB window.)
 */
export const partBytes = 1024 * 1024
// A piece must hold whole blocks of the machine-code conversion, which works block by block.
if (partBytes % blockBytes !== 0) throw new Error('partBytes must be a multiple of the machine-code block')

function interleave(entries: PackEntry[]): PackItem[] {
  const items: PackItem[] = []
  const groupOf = (e: PackEntry) => (e.type === 'file' ? e.order.slice(0, e.order.lastIndexOf('\0')) : undefined)
  for (let i = 0; i < entries.length;) {
    const group = groupOf(entries[i]!)
    let j = i + 1
    while (group !== undefined && j < entries.length && groupOf(entries[j]!) === group) j++
    const members = entries.slice(i, j)
    if (members.length < 2 || Math.max(...members.map((m) => m.size)) <= partBytes) {
      for (const entry of members) items.push({ entry })
    } else {
      for (let offset = 0; members.some((m) => offset < m.size || offset === 0); offset += partBytes) {
        for (const entry of members) {
          if (offset < entry.size || offset === 0)
            items.push({ entry, part: { offset, length: Math.min(partBytes, entry.size - offset) } })
        }
      }
    }
    i = j
  }
  return items
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0'
}

function ustarHeader(name: string, prefix: string, e: PackEntry, flag: string, size: number, linkpath: string): Buffer {
  const header = Buffer.alloc(BLOCK)
  header.write(name, 0, 100, 'utf8')
  header.write(octal(e.mode, 8), 100)
  header.write(octal(0, 8), 108)
  header.write(octal(0, 8), 116)
  header.write(octal(size, 12), 124)
  header.write(octal(Math.max(0, Math.min(e.mtime, 0o77777777777)), 12), 136)
  header.write('        ', 148)
  header.write(flag, 156)
  header.write(linkpath, 157, 100, 'utf8')
  header.write('ustar\0', 257)
  header.write('00', 263)
  header.write(prefix, 345, 155, 'utf8')
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += header[i]!
  header.write(octal(sum, 7) + ' ', 148)
  return header
}

/**
 * The first entry of every archive: a FIFO named `.scipio-s3-cache-pieces`, which extract.ts skips.
 * Releases of this action before pieces used node-tar, which silently skips entries of type `M`: they would
 * have restored a framework without its binaries. Their entry guard refuses any FIFO before looking further,
 * so to them these archives are a cache miss (the framework is built), never a broken framework.
 */
export const piecesMarker = '.scipio-s3-cache-pieces'

function markerHeader(): Buffer {
  return ustarHeader(
    piecesMarker,
    '',
    { rel: piecesMarker, type: 'file', mode: 0o644, mtime: 0, size: 0, linkpath: '', order: '' },
    '6',
    0,
    '',
  )
}

/** Splits a path into ustar's prefix (≤155 bytes) and name (≤100 bytes), if it can be. */
function splitPath(p: string): [prefix: string, name: string] | undefined {
  if (Buffer.byteLength(p) <= 100) return ['', p]
  for (let at = p.indexOf('/'); at !== -1; at = p.indexOf('/', at + 1)) {
    const prefix = p.slice(0, at)
    const name = p.slice(at + 1)
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name) return [prefix, name]
  }
  return undefined
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  let length = Buffer.byteLength(body) + 1
  while (String(length).length + Buffer.byteLength(body) !== length)
    length = String(length).length + Buffer.byteLength(body)
  return `${length}${body}`
}

/**
 * The header block(s) of one entry: a pax record first when ustar cannot hold its path, link target or size,
 * or for a piece of a file: type `M` (GNU's "continuation of a file", the closest standard meaning) with pax
 * records `SCIPIO.offset` and `SCIPIO.size` (the whole file's size). A converted Mach-O file's first piece (or its
 * whole entry) carries `SCIPIO.code`.
 */
function headerBytes({ entry: e, part }: PackItem): Buffer {
  const rel = e.type === 'dir' ? `${e.rel}/` : e.rel
  const flag = part ? 'M' : e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0'
  const size = part?.length ?? e.size
  const split = splitPath(rel)
  const longLink = Buffer.byteLength(e.linkpath) > 100
  const bigSize = size > 0o77777777777
  const code = e.code && (!part || part.offset === 0) ? e.code.record : undefined
  const header = ustarHeader(
    split?.[1] ?? rel.slice(0, 100),
    split?.[0] ?? '',
    e,
    flag,
    bigSize ? 0 : size,
    longLink ? '' : e.linkpath,
  )
  if (split && !longLink && !bigSize && !part && !code) return header
  let records = ''
  if (!split) records += paxRecord('path', rel)
  if (longLink) records += paxRecord('linkpath', e.linkpath)
  if (bigSize) records += paxRecord('size', String(size))
  if (part) records += paxRecord('SCIPIO.offset', String(part.offset)) + paxRecord('SCIPIO.size', String(e.size))
  if (code) records += paxRecord('SCIPIO.code', code)
  const data = Buffer.from(records)
  const paxName = `PaxHeader/${path.posix.basename(rel)}`.slice(0, 100)
  const pax = ustarHeader(paxName, '', e, 'x', data.length, '')
  return Buffer.concat([pax, data, Buffer.alloc(padTo(data.length) - data.length), header])
}

const bufferBytes = 1024 * 1024

/**
 * Writes the tar into `sink` (the compressor) through two 1 MiB buffers used in turn: headers and small files
 * are packed together, file data is read straight into the buffer, and a buffer is refilled only once the
 * compressor has taken its bytes (its write callback). Reading into fresh buffers instead allocated the whole
 * framework again in ArrayBuffers, and V8 answered every 64 MB of them with a full garbage collection (about
 * a third of a cold save's main-thread time, docs/benchmarks.md). Ends `sink` when done.
 */
export async function writeTar(plan: PackPlan, sink: Writable): Promise<void> {
  const buffers = [Buffer.allocUnsafe(bufferBytes), Buffer.allocUnsafe(bufferBytes)]
  const taken: (Promise<void> | undefined)[] = [undefined, undefined]
  let current = 0
  let fill = 0
  const flush = async () => {
    if (fill === 0) return
    const chunk = buffers[current]!.subarray(0, fill)
    const sent = new Promise<void>((resolve, reject) =>
      sink.write(chunk, (error) => (error ? reject(error) : resolve())),
    )
    sent.catch(() => undefined) // awaited below; this only keeps an early failure from being "unhandled"
    taken[current] = sent
    current = 1 - current
    fill = 0
    await taken[current] // the other buffer must be free before it is filled again
  }
  const put = async (bytes: Buffer) => {
    for (let at = 0; at < bytes.length;) {
      const n = bytes.copy(buffers[current]!, fill, at)
      fill += n
      at += n
      if (fill === bufferBytes) await flush()
    }
  }
  await put(markerHeader())
  for (const item of plan.items) {
    const e = item.entry
    await put(headerBytes(item))
    const start = item.part?.offset ?? 0
    const length = item.part?.length ?? e.size
    if (e.type !== 'file' || length === 0) continue
    if (e.code) {
      await putConverted(path.join(plan.directory, e.rel), e.code, start, length, put)
      await put(Buffer.alloc(padTo(length) - length))
      continue
    }
    const handle = await fs.open(path.join(plan.directory, e.rel), 'r')
    try {
      for (let done = 0; done < length;) {
        const { bytesRead } = await handle.read(
          buffers[current]!,
          fill,
          Math.min(bufferBytes - fill, length - done),
          start + done,
        )
        if (bytesRead === 0) throw new Error(`${e.rel} shrank while it was being archived`)
        fill += bytesRead
        done += bytesRead
        if (fill === bufferBytes) await flush()
      }
    } finally {
      await handle.close()
    }
    await put(Buffer.alloc(padTo(length) - length))
  }
  await put(Buffer.alloc(2 * BLOCK))
  await flush()
  await Promise.all(taken.filter((sent) => sent !== undefined))
  await new Promise<void>((resolve, reject) => sink.end((error?: Error | null) => (error ? reject(error) : resolve())))
}

/** Writes `length` bytes of a Mach-O file from `start` (a multiple of the block), converted block by block. */
async function putConverted(
  file: string,
  code: CodePlan,
  start: number,
  length: number,
  put: (bytes: Buffer) => Promise<void>,
): Promise<void> {
  const block = Buffer.allocUnsafe(blockBytes)
  const handle = await fs.open(file, 'r')
  try {
    for (let at = start; at < start + length; at += blockBytes) {
      const want = Math.min(blockBytes, start + length - at)
      let got = 0
      while (got < want) {
        const { bytesRead } = await handle.read(block, got, want - got, at + got)
        if (bytesRead === 0) throw new Error(`${file} shrank while it was being archived`)
        got += bytesRead
      }
      const data = block.subarray(0, want)
      encodeBlock(data, at, code)
      await put(data)
    }
  } finally {
    await handle.close()
  }
}
