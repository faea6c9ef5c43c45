// AA TEST DOUBLE, format part: writes and reads Apple Archive bytes the way /usr/bin/aa lays them out, so
// that the action's tests exercise real bytes of the format on machines without macOS.
//
// What it implements (from aa(1), compression_tool(1) and Apple's AppleArchive field documentation):
// - the block container of compression_tool(1): 'p','b','z',<algo>, a 64-bit block size, then per block a
//   64-bit uncompressed size, a 64-bit compressed size and the payload; all 64-bit values big-endian; equal
//   sizes mean the payload is stored uncompressed;
// - AA01 entries: 'AA01', a u16 little-endian header size (the whole header, magic included), then fields of a
//   3-letter key and a subtype letter: '*' flag; '1' '2' '4' '8' unsigned integer of that many bytes; 'P'
//   string with a u16 size; 'F' 'G' 'H' 'I' 'J' hashes of 4/20/32/48/64 bytes; 'S' (8 bytes) and 'T'
//   (12 bytes: u64 seconds, u32 nanoseconds) times; 'A' 'B' 'C' blobs with a 2/4/8-byte size whose data
//   follows the header, in field order. All integers little-endian.
// - entry types D (directory), F (regular file), L (symbolic link).
//
// What it does not implement: LZFSE (or LZMA, LZ4, ...) compression. It writes every block stored
// (uncompressed) under the 'pbze' magic, which is valid per compression_tool(1), and it reads stored blocks and
// zlib blocks only. A real .aar written on macOS has LZFSE-compressed blocks: only /usr/bin/aa reads it. Nor
// devices, FIFOs, sockets, hard-link clusters, extended attributes, ACLs or BSD flags (FLG is written as 0 and
// ignored on extraction).
import * as fs from 'node:fs'
import * as path from 'node:path'
import * as zlib from 'node:zlib'

export const defaultFieldKeys = ['typ', 'pat', 'lnk', 'dev', 'dat', 'uid', 'gid', 'mod', 'flg', 'mtm', 'btm', 'ctm']
const knownFieldKeys = new Set([
  ...defaultFieldKeys,
  'xat',
  'acl',
  'cks',
  'sh1',
  'sh2',
  'siz',
  'duz',
  'idx',
  'yec',
  'yaf',
])
const algorithms = { lzfse: 'e', zlib: 'z', lzma: 'x', lz4: '4', mammoth: 'm' }

/** Applies aa's -exclude-field / -include-field options, in order, to the default field key set. */
export function fieldKeySet(changes) {
  const keys = new Set(defaultFieldKeys)
  for (const { op, spec } of changes) {
    for (const raw of spec
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean)) {
      const names =
        raw === 'attr' ? ['uid', 'gid', 'mod', 'flg', 'mtm', 'btm', 'ctm'] : raw === 'all' ? [...knownFieldKeys] : [raw]
      if (raw === 'all' && op === 'include') throw new Error("'all' may only be excluded")
      for (const name of names) {
        if (!knownFieldKeys.has(name)) throw new Error(`unknown field key '${name}'`)
        if (op === 'include' && !defaultFieldKeys.includes(name))
          throw new Error(`field '${name}' is not implemented by the aa test double`)
        if (op === 'include') keys.add(name)
        else keys.delete(name)
      }
    }
  }
  return keys
}

function key(name, subtype) {
  return Buffer.from(`${name.toUpperCase()}${subtype}`, 'latin1')
}

function uintField(name, value) {
  const v = BigInt(value)
  const width = v < 0x100n ? 1 : v < 0x10000n ? 2 : v < 0x100000000n ? 4 : 8
  const out = Buffer.alloc(width)
  if (width === 8) out.writeBigUInt64LE(v)
  else out.writeUIntLE(Number(v), 0, width)
  return Buffer.concat([key(name, String(width)), out])
}

function stringField(name, text) {
  const bytes = Buffer.from(text, 'utf8')
  if (bytes.length > 0xffff) throw new Error(`${name} is longer than 65535 bytes`)
  const size = Buffer.alloc(2)
  size.writeUInt16LE(bytes.length)
  return Buffer.concat([key(name, 'P'), size, bytes])
}

function timeField(name, ns) {
  const out = Buffer.alloc(12)
  out.writeBigUInt64LE(ns / 1_000_000_000n)
  out.writeUInt32LE(Number(ns % 1_000_000_000n), 8)
  return Buffer.concat([key(name, 'T'), out])
}

function blobField(name, size) {
  if (size < 0x10000) {
    const out = Buffer.alloc(2)
    out.writeUInt16LE(size)
    return Buffer.concat([key(name, 'A'), out])
  }
  if (size < 0x100000000) {
    const out = Buffer.alloc(4)
    out.writeUInt32LE(size)
    return Buffer.concat([key(name, 'B'), out])
  }
  const out = Buffer.alloc(8)
  out.writeBigUInt64LE(BigInt(size))
  return Buffer.concat([key(name, 'C'), out])
}

/** One AA01 entry: header fields in the given order, then the blobs' data. */
export function encodeEntry(fields, data = Buffer.alloc(0)) {
  const body = Buffer.concat(fields)
  const size = 6 + body.length
  if (size > 0xffff) throw new Error('an AA01 header is at most 65535 bytes')
  const head = Buffer.alloc(6)
  head.write('AA01', 0, 'latin1')
  head.writeUInt16LE(size, 4)
  return Buffer.concat([head, body, data])
}

/** The entry for one filesystem object (`rel` is '' for the archived folder itself), with the selected fields. */
export function entryFor(root, rel, keys) {
  const abs = rel ? path.join(root, rel) : root
  const st = fs.lstatSync(abs, { bigint: true })
  const type = st.isDirectory() ? 'D' : st.isFile() ? 'F' : st.isSymbolicLink() ? 'L' : undefined
  if (!type) throw new Error(`${abs}: only folders, regular files and symlinks are implemented by the aa test double`)
  // TYP and PAT are always present; DEV only for devices, which the double does not archive.
  const fields = [Buffer.concat([key('typ', '1'), Buffer.from(type, 'latin1')]), stringField('pat', rel)]
  if (type === 'L' && keys.has('lnk')) fields.push(stringField('lnk', fs.readlinkSync(abs)))
  if (keys.has('uid')) fields.push(uintField('uid', st.uid))
  if (keys.has('gid')) fields.push(uintField('gid', st.gid))
  if (keys.has('mod')) fields.push(uintField('mod', st.mode & 0o7777n))
  if (keys.has('flg')) fields.push(uintField('flg', 0))
  if (keys.has('mtm')) fields.push(timeField('mtm', st.mtimeNs))
  if (keys.has('btm')) fields.push(timeField('btm', 0n))
  if (keys.has('ctm')) fields.push(timeField('ctm', st.birthtimeNs))
  let data = Buffer.alloc(0)
  if (type === 'F' && keys.has('dat')) {
    data = fs.readFileSync(abs)
    fields.push(blobField('dat', data.length))
  }
  return encodeEntry(fields, data)
}

/** Every entry under `root`, the folder itself first (empty path), parents before children, names sorted. */
export function archiveDirectory(root, keys) {
  const out = []
  const walk = (rel) => {
    out.push(entryFor(root, rel, keys))
    const abs = rel ? path.join(root, rel) : root
    if (!fs.lstatSync(abs).isDirectory()) return
    for (const name of fs.readdirSync(abs).sort()) walk(rel ? `${rel}/${name}` : name)
  }
  walk('')
  return Buffer.concat(out)
}

/** Wraps a plain AA01 stream in the block container, every block stored. */
export function wrapBlocks(payload, algorithm, blockSize) {
  const code = algorithms[algorithm]
  if (!code) throw new Error(`unknown algorithm '${algorithm}'`)
  const parts = [Buffer.from(`pbz${code}`, 'latin1'), u64be(blockSize)]
  for (let at = 0; at < payload.length; at += blockSize) {
    const block = payload.subarray(at, Math.min(payload.length, at + blockSize))
    parts.push(u64be(block.length), u64be(block.length), block)
  }
  return Buffer.concat(parts)
}

function u64be(n) {
  const b = Buffer.alloc(8)
  b.writeBigUInt64BE(BigInt(n))
  return b
}

/** The AA01 stream inside a container (or the bytes as they are, when they already start with AA01). */
export function unwrapBlocks(bytes) {
  if (bytes.subarray(0, 4).toString('latin1') === 'AA01' || bytes.length === 0) return bytes
  const magic = bytes.subarray(0, 4).toString('latin1')
  if (!/^pbz[ezx4m]$/.test(magic)) throw new Error(`not an Apple Archive: starts with ${JSON.stringify(magic)}`)
  if (bytes.length < 12) throw new Error('truncated block container header')
  const out = []
  let at = 12
  while (at < bytes.length) {
    if (at + 16 > bytes.length) throw new Error('truncated block header')
    const raw = Number(bytes.readBigUInt64BE(at))
    const packed = Number(bytes.readBigUInt64BE(at + 8))
    at += 16
    if (at + packed > bytes.length) throw new Error('truncated block')
    const payload = bytes.subarray(at, at + packed)
    at += packed
    if (raw === packed) out.push(payload)
    else if (magic === 'pbzz') out.push(zlib.inflateRawSync(payload))
    else
      throw new Error(
        `a ${magic === 'pbze' ? 'LZFSE' : magic}-compressed block: the aa test double reads stored blocks only (a real .aar needs /usr/bin/aa)`,
      )
    if (out.at(-1).length !== raw) throw new Error('a block decompressed to another size than its header says')
  }
  return Buffer.concat(out)
}

const subtypeSizes = { 1: 1, 2: 2, 4: 4, 8: 8, F: 4, G: 20, H: 32, I: 48, J: 64, S: 8, T: 12, A: 2, B: 4, C: 8 }

/** Decodes an AA01 stream into entries: { fields: { KEY: value }, blobs: { KEY: Buffer } }. */
export function decodeEntries(stream) {
  const entries = []
  let at = 0
  while (at < stream.length) {
    if (stream.subarray(at, at + 4).toString('latin1') !== 'AA01') throw new Error(`no AA01 entry at offset ${at}`)
    const size = stream.readUInt16LE(at + 4)
    const end = at + size
    if (size < 6 || end > stream.length) throw new Error(`bad header size at offset ${at}`)
    const fields = {}
    const blobs = []
    let p = at + 6
    while (p < end) {
      const name = stream.subarray(p, p + 3).toString('latin1')
      const subtype = String.fromCharCode(stream[p + 3])
      p += 4
      if (subtype === '*') {
        fields[name] = true
      } else if (subtype === 'P') {
        const n = stream.readUInt16LE(p)
        fields[name] = stream.subarray(p + 2, p + 2 + n).toString('utf8')
        p += 2 + n
      } else if (subtype in subtypeSizes) {
        const n = subtypeSizes[subtype]
        const v = stream.subarray(p, p + n)
        if ('1248'.includes(subtype)) fields[name] = n === 8 ? v.readBigUInt64LE() : BigInt(v.readUIntLE(0, n))
        else if (subtype === 'S') fields[name] = { seconds: v.readBigUInt64LE(), nanoseconds: 0 }
        else if (subtype === 'T') fields[name] = { seconds: v.readBigUInt64LE(), nanoseconds: v.readUInt32LE(8) }
        else if ('ABC'.includes(subtype)) blobs.push([name, n === 8 ? Number(v.readBigUInt64LE()) : v.readUIntLE(0, n)])
        else fields[name] = Buffer.from(v)
        p += n
      } else {
        throw new Error(`unknown field subtype '${subtype}' of ${name} at offset ${p - 4}`)
      }
      if (p > end) throw new Error(`field ${name} runs past its header`)
    }
    at = end
    const data = {}
    for (const [name, n] of blobs) {
      if (at + n > stream.length) throw new Error(`blob ${name} is truncated`)
      data[name] = stream.subarray(at, at + n)
      at += n
    }
    entries.push({ fields, blobs: data })
  }
  return entries
}

function checkedPath(rel) {
  if (rel.startsWith('/') || rel.split('/').some((part) => part === '..'))
    throw new Error(`refusing entry path '${rel}'`)
  return rel
}

/** Writes the entries below `dir`, as aa extract does; `ignoreEperm` skips ownership changes that are not permitted. */
export function extractEntries(entries, dir, { ignoreEperm }) {
  fs.mkdirSync(dir, { recursive: true })
  const later = [] // folders get their mode and times once their contents are written
  const owner = (abs, f, link) => {
    if (f.UID === undefined && f.GID === undefined) return
    try {
      ;(link ? fs.lchownSync : fs.chownSync)(abs, Number(f.UID ?? -1), Number(f.GID ?? -1))
    } catch (error) {
      if (!(ignoreEperm && error.code === 'EPERM')) throw error
    }
  }
  const time = (t) => (t ? Number(t.seconds) + t.nanoseconds / 1e9 : undefined)
  for (const { fields: f, blobs } of entries) {
    const type = f.TYP === undefined ? undefined : String.fromCharCode(Number(f.TYP))
    const rel = checkedPath(f.PAT ?? '')
    const abs = rel ? path.join(dir, rel) : dir
    if (type === 'D') {
      fs.mkdirSync(abs, { recursive: true })
      owner(abs, f, false)
      later.push([abs, f])
    } else if (type === 'F') {
      fs.rmSync(abs, { force: true })
      fs.writeFileSync(abs, blobs.DAT ?? Buffer.alloc(0), { mode: 0o600 })
      owner(abs, f, false)
      if (f.MOD !== undefined) fs.chmodSync(abs, Number(f.MOD))
      const m = time(f.MTM)
      if (m !== undefined) fs.utimesSync(abs, m, m)
    } else if (type === 'L') {
      if (f.LNK === undefined) throw new Error(`symlink '${rel}' has no LNK field`)
      fs.rmSync(abs, { force: true })
      fs.symlinkSync(f.LNK, abs)
      owner(abs, f, true)
      const m = time(f.MTM)
      if (m !== undefined) fs.lutimesSync(abs, m, m)
    } else {
      throw new Error(`entry '${rel}' has type ${JSON.stringify(type)}, which the aa test double does not implement`)
    }
  }
  for (const [abs, f] of later.reverse()) {
    if (f.MOD !== undefined) fs.chmodSync(abs, Number(f.MOD))
    const m = time(f.MTM)
    if (m !== undefined) fs.utimesSync(abs, m, m)
  }
}
