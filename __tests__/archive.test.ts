import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: the double is plain JavaScript
import { writeFramework } from '../scipio-test-double/framework-tree.mjs'
import { canRead, extractArchive, packArchive, preferredFormat, zstdAvailable } from '../src/archive/archive.js'
import type { ArchiveFormat } from '../src/keys/keys.js'
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

const formats: ArchiveFormat[] = zstdAvailable() ? ['tar.gz', 'tar.zst'] : ['tar.gz']

describe('archive', () => {
  it('prefers zstd where the runtime has it', () => {
    expect(preferredFormat()).toBe(zstdAvailable() ? 'tar.zst' : 'tar.gz')
    expect(canRead('tar.gz')).toBe(true)
    expect(canRead('tar.zst')).toBe(zstdAvailable())
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
