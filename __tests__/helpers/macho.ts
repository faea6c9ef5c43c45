import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'

/**
 * Mach-O files for the tests: synthetic thin ones with a `__TEXT,__text` full of calls and a code signature whose
 * page hashes are right, fat ones made of any slices (as lipo makes them), and the real arm64 and x86_64 Mach-O
 * that the sodium-native devDependency ships for iOS and macOS.
 */

const cpuTypes = { arm64: 0x0100000c, x86_64: 0x01000007 } as const
export type MachKind = keyof typeof cpuTypes

/** Deterministic bytes (xorshift32). */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

/** Machine code with many calls to a few functions, as compilers write it. */
function code(kind: MachKind, bytes: number, seed: number): Buffer {
  const next = prng(seed)
  const out = Buffer.alloc(bytes)
  const targets = Array.from({ length: 16 }, () => (next() % bytes) & ~3)
  if (kind === 'arm64') {
    for (let p = 0; p + 4 <= bytes; p += 4) {
      const r = next() % 10
      let word: number
      if (r < 2)
        word = 0x94000000 | (((targets[next() & 15]! - p) >> 2) & 0x03ffffff) // BL
      else if (r < 3) {
        const pages = ((targets[next() & 15]! >> 12) - (p >> 12)) & 0x1fffff // ADRP x(r)
        word = 0x90000000 | ((pages & 3) << 29) | ((pages >>> 2) << 5) | (next() & 31)
      } else word = [0xf9400000, 0xaa0003e0, 0xd65f03c0, 0x910003fd][next() & 3]! | (next() & 0x3ff)
      out.writeUInt32LE(word >>> 0, p)
    }
  } else {
    for (let p = 0; p < bytes;) {
      if (next() % 6 === 0 && p + 5 <= bytes) {
        out[p] = 0xe8
        out.writeInt32LE(targets[next() & 15]! - (p + 5), p + 1)
        p += 5
      } else out[p++] = [0x48, 0x89, 0x8b, 0xc3, 0x55, 0x5d, 0x0f, 0xe8][next() & 7]!
    }
  }
  return out
}

export interface ThinOptions {
  codeBytes?: number
  seed?: number
  /** A code signature with right page hashes (default true). */
  signed?: boolean
  /** log2 of the signature's page size (default 12: 4 KiB). */
  pageBits?: number
}

/** A thin MH_MAGIC_64 library: header, __TEXT with __text at 0x4000, __LINKEDIT holding the code signature. */
export function thinMachO(kind: MachKind, options: ThinOptions = {}): Buffer {
  const { codeBytes = 200_000, seed = 1, signed = true, pageBits = 12 } = options
  const textOffset = 0x4000
  const textEnd = textOffset + codeBytes
  const linkedit = Math.ceil(textEnd / 0x4000) * 0x4000
  const identifier = Buffer.from('com.example.test\0')
  const cdHeader = 88
  const hashOffset = cdHeader + identifier.length + ((4 - ((cdHeader + identifier.length) % 4)) % 4)
  const pageBytes = 2 ** pageBits
  const slots = Math.ceil(linkedit / pageBytes)
  const cdLength = hashOffset + slots * 32
  const signatureBytes = signed ? 20 + cdLength : 0
  const commands: Buffer[] = []
  const segment = (name: string, fileoff: number, filesize: number, sections: Buffer[]) => {
    const cmd = Buffer.alloc(72)
    cmd.writeUInt32LE(0x19, 0)
    cmd.writeUInt32LE(72 + 80 * sections.length, 4)
    cmd.write(name, 8, 'latin1')
    cmd.writeBigUInt64LE(BigInt(fileoff), 40)
    cmd.writeBigUInt64LE(BigInt(filesize), 48)
    cmd.writeUInt32LE(sections.length, 64)
    return Buffer.concat([cmd, ...sections])
  }
  const text = Buffer.alloc(80)
  text.write('__text', 0, 'latin1')
  text.write('__TEXT', 16, 'latin1')
  text.writeBigUInt64LE(BigInt(codeBytes), 40)
  text.writeUInt32LE(textOffset, 48)
  text.writeUInt32LE(0x80000400, 64)
  commands.push(segment('__TEXT', 0, linkedit, [text]))
  commands.push(segment('__LINKEDIT', linkedit, signatureBytes, []))
  if (signed) {
    const sig = Buffer.alloc(16)
    sig.writeUInt32LE(0x1d, 0)
    sig.writeUInt32LE(16, 4)
    sig.writeUInt32LE(linkedit, 8)
    sig.writeUInt32LE(signatureBytes, 12)
    commands.push(sig)
  }
  const loads = Buffer.concat(commands)
  const file = Buffer.alloc(linkedit + signatureBytes)
  file.writeUInt32LE(0xfeedfacf, 0)
  file.writeUInt32LE(cpuTypes[kind], 4)
  file.writeUInt32LE(6, 12) // MH_DYLIB
  file.writeUInt32LE(commands.length, 16)
  file.writeUInt32LE(loads.length, 20)
  loads.copy(file, 32)
  code(kind, codeBytes, seed).copy(file, textOffset)
  if (signed) {
    const blob = file.subarray(linkedit)
    blob.writeUInt32BE(0xfade0cc0, 0)
    blob.writeUInt32BE(signatureBytes, 4)
    blob.writeUInt32BE(1, 8)
    blob.writeUInt32BE(0, 12) // the CodeDirectory slot
    blob.writeUInt32BE(20, 16)
    const cd = blob.subarray(20)
    cd.writeUInt32BE(0xfade0c02, 0)
    cd.writeUInt32BE(cdLength, 4)
    cd.writeUInt32BE(0x20400, 8)
    cd.writeUInt32BE(hashOffset, 16)
    cd.writeUInt32BE(cdHeader, 20)
    cd.writeUInt32BE(slots, 28)
    cd.writeUInt32BE(linkedit, 32)
    cd[36] = 32
    cd[37] = 2 // SHA-256
    cd[39] = pageBits
    identifier.copy(cd, cdHeader)
    for (let i = 0; i < slots; i++) {
      const page = file.subarray(i * pageBytes, Math.min((i + 1) * pageBytes, linkedit))
      createHash('sha256')
        .update(page)
        .digest()
        .copy(cd, hashOffset + i * 32)
    }
  }
  return file
}

/** A fat file of `slices` (FAT_MAGIC, or FAT_MAGIC_64 with `wide`), each at a multiple of 2^14, as lipo lays them out. */
export function fatMachO(slices: Buffer[], { wide = false }: { wide?: boolean } = {}): Buffer {
  const entry = wide ? 32 : 20
  const align = 0x4000
  let offset = Math.ceil((8 + slices.length * entry) / align) * align
  const header = Buffer.alloc(offset)
  header.writeUInt32BE(wide ? 0xcafebabf : 0xcafebabe, 0)
  header.writeUInt32BE(slices.length, 4)
  const parts: Buffer[] = [header]
  slices.forEach((slice, i) => {
    const at = 8 + i * entry
    header.writeUInt32BE(slice.readUInt32LE(4), at)
    if (wide) {
      header.writeBigUInt64BE(BigInt(offset), at + 8)
      header.writeBigUInt64BE(BigInt(slice.length), at + 16)
      header.writeUInt32BE(14, at + 24)
    } else {
      header.writeUInt32BE(offset, at + 8)
      header.writeUInt32BE(slice.length, at + 12)
      header.writeUInt32BE(14, at + 16)
    }
    const padded = Math.ceil(slice.length / align) * align
    parts.push(slice, Buffer.alloc(i === slices.length - 1 ? 0 : padded - slice.length))
    offset += padded
  })
  return Buffer.concat(parts)
}

const sodiumPrebuilds = path.join(
  path.dirname(createRequire(import.meta.url).resolve('sodium-native/package.json')),
  'prebuilds',
)

/** Real Mach-O from the sodium-native devDependency (libsodium, built for iOS and macOS), by prebuild folder. */
export function realMachO(
  folder: 'ios-arm64' | 'ios-arm64-simulator' | 'ios-x64-simulator' | 'darwin-arm64' | 'darwin-x64',
): Buffer {
  const file = folder.startsWith('ios') ? 'sodium-native.bare' : 'sodium-native.node'
  return fs.readFileSync(path.join(sodiumPrebuilds, folder, file))
}

/** A real file that is not Mach-O (an ELF library of the same package). */
export function realElf(): Buffer {
  return fs.readFileSync(path.join(sodiumPrebuilds, 'linux-x64', 'sodium-native.node'))
}
