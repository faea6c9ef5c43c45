import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { CodeDecoder, decodeFile, encodeBlock, planMachineCode } from '../src/archive/machine-code/codec.js'
import { machineCodeTransforms } from '../src/archive/machine-code/macho.js'
import { blockBytes, formatRecord, parseRecord, type CodeTransform } from '../src/archive/machine-code/transforms.js'
import { CorruptArchiveError } from '../src/archive/guard.js'
import { fatMachO, realElf, realMachO, thinMachO } from './helpers/macho.js'

function transformsOf(bytes: Buffer): CodeTransform[] {
  return machineCodeTransforms((position, length) => bytes.subarray(position, position + length), bytes.length)
}

function scratch(bytes: Buffer): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'machine-code-')), 'binary')
  fs.writeFileSync(file, bytes)
  return file
}

/** What the archive stores of `original`: every block converted as pack.ts converts it. */
function stored(original: Buffer): { bytes: Buffer; record: CodeTransform[] } | undefined {
  const plan = planMachineCode(scratch(original), original.length)
  if (!plan) return undefined
  const bytes = Buffer.from(original)
  for (let at = 0; at < bytes.length; at += blockBytes) encodeBlock(bytes.subarray(at, at + blockBytes), at, plan)
  return { bytes, record: parseRecord(plan.record)! }
}

/** The file a restore leaves from stored bytes and their record. */
function restored(bytes: Buffer, record: CodeTransform[]): Buffer {
  const file = scratch(bytes)
  const fd = fs.openSync(file, 'r+')
  try {
    decodeFile(fd, bytes.length, record, 'binary')
  } finally {
    fs.closeSync(fd)
  }
  return fs.readFileSync(file)
}

describe('Mach-O headers: what may be converted', () => {
  it('finds the __text section and the page hashes of a thin arm64 and a thin x86_64 file', () => {
    for (const kind of ['arm64', 'x86_64'] as const) {
      const file = thinMachO(kind, { codeBytes: 100_000 })
      const found = transformsOf(file)
      expect(found).toEqual([
        { kind, base: 0, start: 0x4000, length: 100_000 },
        expect.objectContaining({ kind: 'pages', hash: 'sha256', hashSize: 32, base: 0, pageBits: 12 }),
      ])
    }
  })

  it('finds every slice of a fat file, with offsets relative to the file and each slice its own base', () => {
    for (const wide of [false, true]) {
      const arm = thinMachO('arm64', { codeBytes: 50_000, seed: 2 })
      const intel = thinMachO('x86_64', { codeBytes: 60_000, seed: 3 })
      const fat = fatMachO([intel, arm], { wide })
      const branches = transformsOf(fat).filter((t) => t.kind !== 'pages')
      const armBase = fat.indexOf(arm)
      const intelBase = fat.indexOf(intel)
      expect(armBase % 0x4000).toBe(0)
      expect(branches).toEqual([
        { kind: 'x86_64', base: intelBase, start: intelBase + 0x4000, length: 60_000 },
        { kind: 'arm64', base: armBase, start: armBase + 0x4000, length: 50_000 },
      ])
      expect(
        transformsOf(fat)
          .filter((t) => t.kind === 'pages')
          .map((t) => t.base),
      ).toEqual([intelBase, armBase])
    }
  })

  it('finds nothing in a file that is not Mach-O, or damaged Mach-O', () => {
    const good = thinMachO('arm64')
    const truncated = good.subarray(0, 0x4000 + 100) // the section runs past the end
    const lyingCommands = Buffer.from(good)
    lyingCommands.writeUInt32LE(0x7fffffff, 20) // sizeofcmds larger than the file
    const lyingFat = fatMachO([good])
    lyingFat.writeUInt32BE(lyingFat.length, 16) // slice 0 claims to start at the end of the file
    const javaClass = Buffer.concat([Buffer.from([0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]), Buffer.alloc(64)])
    for (const bytes of [realElf(), Buffer.alloc(100_000, 7), truncated, lyingCommands, lyingFat, javaClass]) {
      expect(transformsOf(bytes).filter((t) => t.kind !== 'pages')).toEqual([])
    }
    expect(planMachineCode(scratch(realElf()), realElf().length)).toBeUndefined()
  })

  it('finds the code and signature of the real iOS and macOS libraries sodium-native ships', () => {
    const expected = {
      'ios-arm64': 'arm64',
      'ios-arm64-simulator': 'arm64',
      'ios-x64-simulator': 'x86_64',
      'darwin-arm64': 'arm64',
      'darwin-x64': 'x86_64',
    } as const
    for (const [folder, kind] of Object.entries(expected)) {
      const kinds = transformsOf(realMachO(folder as keyof typeof expected)).map((t) => t.kind)
      expect(kinds, folder).toContain(kind)
    }
  })
})

describe('converting and converting back', () => {
  const cases: [string, () => Buffer][] = [
    ['thin arm64, signed', () => thinMachO('arm64', { codeBytes: 3 * blockBytes + 1234 })],
    ['thin x86_64, signed with 16 KiB pages', () => thinMachO('x86_64', { codeBytes: 2 * blockBytes, pageBits: 14 })],
    ['thin arm64, unsigned', () => thinMachO('arm64', { signed: false })],
    [
      'fat (FAT_MAGIC_64) of x86_64 and arm64',
      () => fatMachO([thinMachO('x86_64', { seed: 5 }), thinMachO('arm64', { seed: 6 })], { wide: true }),
    ],
    ['real iOS arm64 (sodium-native)', () => realMachO('ios-arm64')],
    [
      'a real simulator fat file (arm64 + x86_64 slices, as lipo makes them)',
      () => fatMachO([realMachO('ios-x64-simulator'), realMachO('ios-arm64-simulator')]),
    ],
    ['real macOS x86_64 (sodium-native)', () => realMachO('darwin-x64')],
  ]

  it.each(cases)('%s: the restored bytes are the original bytes', (_name, make) => {
    const original = make()
    const result = stored(original)!
    expect(result).toBeDefined()
    expect(result.bytes.equals(original)).toBe(false) // something was converted
    expect(restored(result.bytes, result.record).equals(original)).toBe(true)
  })

  it('converts back the same whatever sizes the bytes arrive in (the extraction hands over arbitrary chunks)', () => {
    const original = fatMachO(
      [
        thinMachO('x86_64', { codeBytes: blockBytes + 5000, seed: 8 }),
        thinMachO('arm64', { codeBytes: 2 * blockBytes, seed: 9 }),
      ],
      { wide: true },
    )
    const { bytes, record } = stored(original)!
    let seed = 1
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31)
    for (const split of [1, 4093, blockBytes, 0]) {
      const file = scratch(Buffer.alloc(bytes.length))
      const fd = fs.openSync(file, 'r+')
      try {
        const decoder = new CodeDecoder(record, bytes.length, 'binary')
        for (let at = 0; at < bytes.length;) {
          // split 0: random sizes from 1 byte to 300 KB
          const size = split === 0 ? 1 + (random() % 300_000) : split === 1 ? 777 : split
          const chunk = Buffer.from(bytes.subarray(at, at + size))
          at += chunk.length
          for (const ready of decoder.push(chunk)) fs.writeSync(fd, ready.data, 0, ready.data.length, ready.position)
        }
        decoder.finish(fd)
      } finally {
        fs.closeSync(fd)
      }
      expect(fs.readFileSync(file).equals(original), `split ${split}`).toBe(true)
    }
  })

  it('refuses a record whose ranges lie outside the file before converting anything', () => {
    const original = thinMachO('arm64', { codeBytes: 100_000 })
    const { bytes, record } = stored(original)!
    const pages = record.find((t) => t.kind === 'pages')!
    const huge = [{ ...pages, limit: 2 ** 40 }] as CodeTransform[]
    expect(() => new CodeDecoder(huge, bytes.length, 'binary')).toThrow(CorruptArchiveError)
    const past = record.map((t) => (t.kind === 'pages' ? t : { ...t, length: bytes.length })) as CodeTransform[]
    expect(() => new CodeDecoder(past, bytes.length, 'binary')).toThrow(CorruptArchiveError)
  })

  it('stores the page hashes of an honest signature as zeros, and converts calls into repeated values', () => {
    const original = thinMachO('arm64', { codeBytes: 400_000 })
    const { bytes, record } = stored(original)!
    const pages = record.find((t) => t.kind === 'pages')!
    expect(pages.kind).toBe('pages')
    if (pages.kind !== 'pages') return
    const slots = bytes.subarray(pages.slots, pages.slots + Math.ceil(pages.limit / 4096) * 32)
    expect(slots.every((b) => b === 0)).toBe(true)
    expect(original.subarray(pages.slots, pages.slots + slots.length).every((b) => b === 0)).toBe(false)
    // The helper's calls go to 16 functions: converted, the BL words take far fewer distinct values.
    const distinct = (buf: Buffer) => {
      const words = new Set<number>()
      for (let p = 0x4000; p < 0x4000 + 400_000; p += 4)
        if ((buf[p + 3]! & 0xfc) === 0x94) words.add(buf.readUInt32LE(p))
      return words.size
    }
    expect(distinct(bytes)).toBeLessThan(distinct(original) / 100)
  })

  it('a signature whose hashes are wrong comes back as wrong as it was', () => {
    const original = thinMachO('x86_64')
    const pages = transformsOf(original).find((t) => t.kind === 'pages')!
    if (pages.kind !== 'pages') throw new Error('no signature')
    original[pages.slots + 5]! ^= 0xff
    const { bytes, record } = stored(original)!
    expect(restored(bytes, record).equals(original)).toBe(true)
  })

  it('refuses a record the headers do not allow, and changes nothing', () => {
    const original = thinMachO('arm64')
    const { bytes, record } = stored(original)!
    const lies: CodeTransform[][] = [
      [{ kind: 'arm64', base: 0, start: 0x4000, length: bytes.length }], // beyond the file
      [{ kind: 'x86_64', base: 0, start: 0x4000, length: 100_000 }], // not the slice's architecture
      [{ kind: 'arm64', base: 0, start: 0, length: 4096 }], // the headers themselves
      [...record, { kind: 'arm64', base: 0, start: 0x4000, length: 10 }],
    ]
    for (const lie of lies) {
      expect(() => restored(bytes, lie)).toThrow(CorruptArchiveError)
      expect(() => restored(bytes, lie)).toThrow(/does not match its headers/)
    }
    const notMachO = Buffer.alloc(200_000, 1)
    expect(() => restored(notMachO, record)).toThrow(CorruptArchiveError)
  })

  it('reads back only records it writes', () => {
    const record = transformsOf(thinMachO('arm64'))
    expect(parseRecord(formatRecord(record))).toEqual(record)
    for (const bad of ['', '[]', '{}', '[["mips",0,0,4]]', '[["arm64",-1,0,4]]', '[["pages","md5",16,0,1,12,0]]', 'x'])
      expect(parseRecord(bad), bad).toBeUndefined()
  })
})
