import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: the double is plain JavaScript
import { writeFramework } from '../scipio-test-double/framework-tree.mjs'
import { createHash } from 'node:crypto'
import { zstdDecompressSync } from 'node:zlib'
import {
  canRead,
  extractArchive,
  packArchive,
  preferredFormat,
  strongestCompression,
  zstdAvailable,
} from '../src/archive/archive.js'
import { CorruptArchiveError } from '../src/archive/guard.js'
import type { ArchiveFormat } from '../src/keys/keys.js'
import { fatMachO, realMachO, thinMachO } from './helpers/macho.js'
import { snapshotTree } from './helpers/tree.js'

async function tempDir(prefix: string) {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix))
}

async function toBuffer(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** A framework with a versioned macOS slice (symlinks), executables, odd modes and empty folders. */
async function makeFramework(dir: string) {
  writeFramework(path.join(dir, 'Sample.xcframework'), 'Sample', {
    sdks: ['iOS', 'iOSSimulator', 'macOS'],
    seed: 's',
    binarySize: 100_000,
  })
  await fs.mkdir(path.join(dir, 'Sample.xcframework/ios-arm64/Sample.framework/_CodeSignature/Empty'), {
    recursive: true,
  })
  await fs.chmod(path.join(dir, 'Sample.xcframework/ios-arm64/Sample.framework/Info.plist'), 0o600)
  await fs.writeFile(path.join(dir, '.Sample.version'), '{"targetName" : "Sample"}')
}

const formats: ArchiveFormat[] = zstdAvailable() ? ['tar.gz', 'tar.zst', 'code.tar.zst'] : ['tar.gz']

describe('archive', () => {
  it('prefers code.tar.zst where the runtime has zstd, and gzip where it has not', () => {
    expect(preferredFormat()).toBe(zstdAvailable() ? 'code.tar.zst' : 'tar.gz')
    expect(canRead('tar.gz')).toBe(true)
    expect(canRead('tar.zst')).toBe(zstdAvailable())
    expect(canRead('code.tar.zst')).toBe(zstdAvailable())
  })

  it.each(formats)('%s: restores the tree exactly (symlinks, modes, empty folders)', async (format) => {
    const src = await tempDir('pack-')
    const dst = await tempDir('unpack-')
    await makeFramework(src)
    const bytes = await toBuffer(packArchive(src, ['Sample.xcframework', '.Sample.version'], format))
    await extractArchive(Readable.from([bytes]), dst, format, { folder: 'Sample.xcframework', file: '.Sample.version' })
    const before = await snapshotTree(src)
    const after = await snapshotTree(dst)
    expect(after).toEqual(before)
    expect(after['Sample.xcframework/macos-arm64_x86_64/Sample.framework/Sample']).toBe(
      'link -> Versions/Current/Sample',
    )
    expect(after['Sample.xcframework/macos-arm64_x86_64/Sample.framework/Versions/Current']).toBe('link -> A')
    expect(after['Sample.xcframework/ios-arm64/Sample.framework/_CodeSignature/Empty']).toBe('dir 755')
    expect(after['Sample.xcframework/ios-arm64/Sample.framework/Info.plist']).toMatch(/^file 600 /)
    expect(after['Sample.xcframework/ios-arm64/Sample.framework/Sample']).toMatch(/^file 755 /)
    const lstat = await fs.lstat(path.join(dst, 'Sample.xcframework/macos-arm64_x86_64/Sample.framework/Headers'))
    expect(lstat.isSymbolicLink()).toBe(true)
  })

  it('stores hard-linked files as plain files', async () => {
    const src = await tempDir('pack-')
    const dst = await tempDir('unpack-')
    await makeFramework(src)
    const bin = path.join(src, 'Sample.xcframework/ios-arm64/Sample.framework/Sample')
    await fs.link(bin, path.join(src, 'Sample.xcframework/ios-arm64/Sample.framework/Copy'))
    const bytes = await toBuffer(packArchive(src, ['Sample.xcframework', '.Sample.version'], 'tar.gz'))
    await extractArchive(Readable.from([bytes]), dst, 'tar.gz', {
      folder: 'Sample.xcframework',
      file: '.Sample.version',
    })
    const copy = await fs.readFile(path.join(dst, 'Sample.xcframework/ios-arm64/Sample.framework/Copy'))
    expect(copy.equals(await fs.readFile(bin))).toBe(true)
  })

  it('streams: a 96 MiB framework packs and unpacks without holding it in memory', async () => {
    const src = await tempDir('pack-')
    const dst = await tempDir('unpack-')
    await fs.mkdir(path.join(src, 'Big.xcframework/ios-arm64/Big.framework'), { recursive: true })
    await fs.writeFile(path.join(src, '.Big.version'), '{}')
    const handle = await fs.open(path.join(src, 'Big.xcframework/ios-arm64/Big.framework/Big'), 'w')
    const block = Buffer.alloc(1024 * 1024)
    for (let i = 0; i < 96; i++) {
      block.fill(i)
      block.writeUInt32LE(i * 7919, 0)
      await handle.write(block)
    }
    await handle.close()
    const format = preferredFormat()
    const archive = path.join(src, 'big.archive')
    const rssBefore = process.memoryUsage().rss
    await pipeline(
      packArchive(src, ['Big.xcframework', '.Big.version'], format),
      (await fs.open(archive, 'w')).createWriteStream(),
    )
    await extractArchive((await fs.open(archive)).createReadStream(), dst, format, {
      folder: 'Big.xcframework',
      file: '.Big.version',
    })
    const grown = process.memoryUsage().rss - rssBefore
    expect((await fs.stat(path.join(dst, 'Big.xcframework/ios-arm64/Big.framework/Big'))).size).toBe(96 * 1024 * 1024)
    expect(grown).toBeLessThan(64 * 1024 * 1024)
  })
})

/**
 * An XCFramework of real libsodium builds (sodium-native's prebuilds): a device slice, a simulator slice that is a
 * fat file of the arm64 and x86_64 builds (over 1 MiB, so it is archived in pieces), and a versioned macOS slice
 * whose binary is fat too.
 */
async function makeSodiumFramework(dir: string): Promise<void> {
  const root = path.join(dir, 'Sodium.xcframework')
  const write = async (rel: string, bytes: Buffer | string, mode = 0o644) => {
    await fs.mkdir(path.dirname(path.join(root, rel)), { recursive: true })
    await fs.writeFile(path.join(root, rel), bytes, { mode })
  }
  await write('Info.plist', '<plist/>')
  await write('ios-arm64/Sodium.framework/Sodium', realMachO('ios-arm64'), 0o755)
  await write('ios-arm64/Sodium.framework/Info.plist', '<plist/>')
  const simulator = fatMachO([realMachO('ios-x64-simulator'), realMachO('ios-arm64-simulator')])
  await write('ios-arm64_x86_64-simulator/Sodium.framework/Sodium', simulator, 0o755)
  await write(
    'macos-arm64_x86_64/Sodium.framework/Versions/A/Sodium',
    fatMachO([realMachO('darwin-x64'), realMachO('darwin-arm64')], { wide: true }),
    0o755,
  )
  await fs.symlink('A', path.join(root, 'macos-arm64_x86_64/Sodium.framework/Versions/Current'))
  await fs.symlink('Versions/Current/Sodium', path.join(root, 'macos-arm64_x86_64/Sodium.framework/Sodium'))
  await fs.writeFile(path.join(dir, '.Sodium.version'), '{"targetName" : "Sodium"}')
}

const sodiumRoots = { folder: 'Sodium.xcframework', file: '.Sodium.version' }

async function fileHashes(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const tree = await snapshotTree(dir)
  for (const [rel, what] of Object.entries(tree)) {
    if (!what.startsWith('file')) continue
    out[rel] = createHash('sha256')
      .update(await fs.readFile(path.join(dir, rel)))
      .digest('hex')
  }
  return out
}

describe.runIf(zstdAvailable())('code.tar.zst: archives that know they hold machine code', () => {
  it('restores real Mach-O (thin and fat, arm64 and x86_64) byte for byte, in fewer bytes than tar.zst', async () => {
    const src = await tempDir('pack-')
    await makeSodiumFramework(src)
    const sizes: Record<string, number> = {}
    for (const [format, compression] of [
      ['tar.zst', undefined],
      ['code.tar.zst', undefined],
      ['code.tar.zst', strongestCompression],
    ] as const) {
      const dst = await tempDir('unpack-')
      const bytes = await toBuffer(packArchive(src, [sodiumRoots.folder, sodiumRoots.file], format, compression))
      await extractArchive(Readable.from([bytes]), dst, format, sodiumRoots)
      expect(await snapshotTree(dst)).toEqual(await snapshotTree(src))
      expect(await fileHashes(dst)).toEqual(await fileHashes(src))
      sizes[`${format}${compression ? ' strongest' : ''}`] = bytes.length
    }
    expect(sizes['code.tar.zst']).toBeLessThan(sizes['tar.zst']!)
    expect(sizes['code.tar.zst strongest']).toBeLessThan(sizes['code.tar.zst']!)
  })

  it('restores binaries larger than a piece (stored in 1 MiB pieces taken in turn) byte for byte', async () => {
    const src = await tempDir('pack-')
    const root = path.join(src, sodiumRoots.folder)
    const device = thinMachO('arm64', { codeBytes: 3 * 1024 * 1024 + 999, seed: 4 })
    const simulator = fatMachO([thinMachO('x86_64', { codeBytes: 2 * 1024 * 1024, seed: 5 }), device])
    await fs.mkdir(path.join(root, 'ios-arm64/Sodium.framework'), { recursive: true })
    await fs.mkdir(path.join(root, 'ios-arm64_x86_64-simulator/Sodium.framework'), { recursive: true })
    await fs.writeFile(path.join(root, 'ios-arm64/Sodium.framework/Sodium'), device, { mode: 0o755 })
    await fs.writeFile(path.join(root, 'ios-arm64_x86_64-simulator/Sodium.framework/Sodium'), simulator, {
      mode: 0o755,
    })
    await fs.writeFile(path.join(src, sodiumRoots.file), '{"targetName" : "Sodium"}')
    const bytes = await toBuffer(packArchive(src, [sodiumRoots.folder, sodiumRoots.file], 'code.tar.zst'))
    const tar = zstdDecompressSync(bytes).toString('latin1')
    expect((tar.match(/SCIPIO\.code=/g) ?? []).length).toBe(2)
    expect(tar).toMatch(/SCIPIO\.offset=/) // stored in pieces
    const dst = await tempDir('unpack-')
    await extractArchive(Readable.from([bytes]), dst, 'code.tar.zst', sodiumRoots)
    expect(await fileHashes(dst)).toEqual(await fileHashes(src))
  })

  it('records what it converted for each binary, and nothing for other files', async () => {
    const src = await tempDir('pack-')
    await makeSodiumFramework(src)
    const tar = zstdDecompressSync(
      await toBuffer(packArchive(src, [sodiumRoots.folder, sodiumRoots.file], 'code.tar.zst')),
    )
    const records = tar.toString('latin1').match(/SCIPIO\.code=[^\n]*/g) ?? []
    expect(records).toHaveLength(3)
    expect(records.join('\n')).toMatch(/"arm64"/)
    expect(records.join('\n')).toMatch(/"x86_64"/)
    expect(records.join('\n')).toMatch(/"pages","sha256",32/)
  })

  it('a reader told the archive is a plain tar.zst refuses one that holds converted code', async () => {
    const src = await tempDir('pack-')
    const dst = await tempDir('unpack-')
    await makeSodiumFramework(src)
    const bytes = await toBuffer(packArchive(src, [sodiumRoots.folder, sodiumRoots.file], 'code.tar.zst'))
    const extraction = extractArchive(Readable.from([bytes]), dst, 'tar.zst', sodiumRoots)
    await expect(extraction).rejects.toBeInstanceOf(CorruptArchiveError)
    await expect(extractArchive(Readable.from([bytes]), dst, 'tar.zst', sodiumRoots)).rejects.toThrow(
      /machine-code record in a format without them/,
    )
  })
})
