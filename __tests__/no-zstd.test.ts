import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it, vi } from 'vitest'
import type * as Zlib from 'node:zlib'
import { canRead, extractArchive, packArchive, preferredFormat, zstdAvailable } from '../src/archive/archive.js'
import { realMachO } from './helpers/macho.js'

// A Node.js 22 before 22.15: its zlib has no zstd.
vi.mock('node:zlib', async (original) => {
  const zlib = await original<typeof Zlib>()
  const without = { ...zlib, createZstdCompress: undefined, createZstdDecompress: undefined }
  return { ...without, default: without }
})

describe('a Node.js without zstd', () => {
  it('writes tar.gz, and reads neither tar.zst nor code.tar.zst (a restore calls them unavailable, not damaged)', async () => {
    expect(zstdAvailable()).toBe(false)
    expect(preferredFormat()).toBe('tar.gz')
    expect(canRead('tar.gz')).toBe(true)
    expect(canRead('tar.zst')).toBe(false)
    expect(canRead('code.tar.zst')).toBe(false)
    const src = await fs.mkdtemp(path.join(os.tmpdir(), 'no-zstd-'))
    const dst = await fs.mkdtemp(path.join(os.tmpdir(), 'no-zstd-out-'))
    const binary = realMachO('ios-arm64')
    await fs.mkdir(path.join(src, 'S.xcframework/ios-arm64/S.framework'), { recursive: true })
    await fs.writeFile(path.join(src, 'S.xcframework/ios-arm64/S.framework/S'), binary)
    await fs.writeFile(path.join(src, '.S.version'), '{}')
    const chunks: Buffer[] = []
    for await (const c of packArchive(src, ['S.xcframework', '.S.version'], preferredFormat())) chunks.push(c as Buffer)
    await extractArchive(Readable.from([Buffer.concat(chunks)]), dst, 'tar.gz', {
      folder: 'S.xcframework',
      file: '.S.version',
    })
    expect((await fs.readFile(path.join(dst, 'S.xcframework/ios-arm64/S.framework/S'))).equals(binary)).toBe(true)
  })
})
