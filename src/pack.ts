import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { Readable } from 'node:stream'

/**
 * Writes the tar of one XCFramework and its VersionFile, with the entries in an order that compresses well:
 * folders first, then every file next to the files of the same relative path in the other slices
 * (`ios-arm64/X.framework/X` beside `ios-arm64_x86_64-simulator/X.framework/X`; a macOS slice's
 * `Versions/A/` is left out of the comparison), so zstd finds the slices' shared headers, module files and
 * near-identical binaries within its window. The VersionFile comes last. Plain ustar headers, with a pax
 * record for a path, link target or size ustar cannot hold; hard links are stored as the files they are.
 */

interface PackEntry {
  rel: string
  type: 'dir' | 'file' | 'symlink'
  mode: number
  mtime: number
  size: number
  linkpath: string
  order: string
}

export interface PackPlan {
  directory: string
  entries: PackEntry[]
  /** Exact length of the tar stream: zstd is told it up front (smaller window for small archives, content size in the frame). */
  tarBytes: number
}

const BLOCK = 512
const padTo = (n: number) => Math.ceil(n / BLOCK) * BLOCK

/** Sort key: the path inside the slice (without a versioned bundle's `Versions/<v>/`), then the slice. */
function orderKey(rel: string, type: PackEntry['type']): string {
  const parts = rel.split('/')
  if (type === 'dir') return `0\0${rel}`
  if (parts.length < 3) return `1\0${parts.slice(1).join('/')}\0` // files at the top of the framework
  const [, slice, ...rest] = parts
  const inside = rest.join('/').replace(/(^|\/)Versions\/[^/]+\//, '$1')
  return `1\0${inside}\0${slice}`
}

export async function planArchive(directory: string, folder: string, file: string): Promise<PackPlan> {
  const entries: PackEntry[] = []
  const visit = async (rel: string) => {
    const stat = await fs.lstat(path.join(directory, rel))
    const base = { rel, mode: stat.mode & 0o777, mtime: Math.floor(stat.mtimeMs / 1000) }
    if (stat.isDirectory()) {
      entries.push({ ...base, type: 'dir', size: 0, linkpath: '', order: orderKey(rel, 'dir') })
      for (const name of (await fs.readdir(path.join(directory, rel))).sort()) await visit(`${rel}/${name}`)
    } else if (stat.isSymbolicLink()) {
      entries.push({ ...base, type: 'symlink', size: 0, linkpath: await fs.readlink(path.join(directory, rel)), order: orderKey(rel, 'symlink') })
    } else if (stat.isFile()) {
      entries.push({ ...base, type: 'file', size: stat.size, linkpath: '', order: orderKey(rel, 'file') })
    }
    // Sockets, devices and FIFOs have no place in a framework and would be refused on restore: left out.
  }
  await visit(folder)
  entries.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0))
  const version = await fs.lstat(path.join(directory, file))
  if (!version.isFile()) throw new Error(`${file} is not a file`)
  entries.push({ rel: file, type: 'file', mode: version.mode & 0o777, mtime: Math.floor(version.mtimeMs / 1000), size: version.size, linkpath: '', order: '' })
  let tarBytes = 2 * BLOCK
  for (const e of entries) tarBytes += headerBytes(e).length + padTo(e.size)
  return { directory, entries, tarBytes }
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
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body)
  return `${length}${body}`
}

/** The header block(s) of one entry: a pax record first when ustar cannot hold its path, link target or size. */
function headerBytes(e: PackEntry): Buffer {
  const rel = e.type === 'dir' ? `${e.rel}/` : e.rel
  const flag = e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0'
  const split = splitPath(rel)
  const longLink = Buffer.byteLength(e.linkpath) > 100
  const bigSize = e.size > 0o77777777777
  const header = ustarHeader(split?.[1] ?? rel.slice(0, 100), split?.[0] ?? '', e, flag, bigSize ? 0 : e.size, longLink ? '' : e.linkpath)
  if (split && !longLink && !bigSize) return header
  let records = ''
  if (!split) records += paxRecord('path', rel)
  if (longLink) records += paxRecord('linkpath', e.linkpath)
  if (bigSize) records += paxRecord('size', String(e.size))
  const data = Buffer.from(records)
  const paxName = `PaxHeader/${path.posix.basename(rel)}`.slice(0, 100)
  const pax = ustarHeader(paxName, '', e, 'x', data.length, '')
  return Buffer.concat([pax, data, Buffer.alloc(padTo(data.length) - data.length), header])
}

const batchBytes = 1024 * 1024

/** Streams the tar in chunks of about 1 MiB: headers and small files are batched, large files read 1 MiB at a time. */
export function tarStream(plan: PackPlan): Readable {
  async function* generate(): AsyncGenerator<Buffer> {
    let batch: Buffer[] = []
    let batched = 0
    const add = (b: Buffer) => {
      batch.push(b)
      batched += b.length
    }
    const take = () => {
      const out = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched)
      batch = []
      batched = 0
      return out
    }
    for (const e of plan.entries) {
      add(headerBytes(e))
      if (e.type === 'file' && e.size > 0) {
        const handle = await fs.open(path.join(plan.directory, e.rel), 'r')
        try {
          let done = 0
          while (done < e.size) {
            const want = Math.min(batchBytes, e.size - done)
            const buffer = Buffer.allocUnsafe(want)
            const { bytesRead } = await handle.read(buffer, 0, want, done)
            if (bytesRead === 0) throw new Error(`${e.rel} shrank while it was being archived`)
            add(bytesRead === want ? buffer : buffer.subarray(0, bytesRead))
            done += bytesRead
            if (batched >= batchBytes) yield take()
          }
        } finally {
          await handle.close()
        }
        const pad = padTo(e.size) - e.size
        if (pad) add(Buffer.alloc(pad))
      }
      if (batched >= batchBytes) yield take()
    }
    add(Buffer.alloc(2 * BLOCK))
    yield take()
  }
  return Readable.from(generate(), { objectMode: false, highWaterMark: batchBytes })
}
