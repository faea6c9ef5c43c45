import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  archiveDirectory,
  encodeEntry,
  fieldKeySet,
  unwrapBlocks,
  wrapBlocks,
  // @ts-expect-error: the double is plain JavaScript
} from '../aa-test-double/apple-archive.mjs'
import { aaArchiveArgs, aaExtractArgs, findAa } from '../src/interop/apple-archive.js'
import { CorruptArchiveError, UnsafeArchiveError } from '../src/archive/guard.js'
import { DiskFullError } from '../src/errors.js'
import { indexDocument, parseIndex, type IndexEntry, type PackageIndex } from '../src/bucket/cache-index.js'
import { StallWatch } from '../src/archive/stall-watch.js'
import { looksLikeAppleArchive, restoreAppleArchive } from '../src/interop/scipio-s3-storage.js'
import { aarObjectKey, contentObjectKey } from '../src/bucket/layout.js'
import { root } from './helpers/s3-server.js'
import { snapshotTree } from './helpers/tree.js'
import { mountTmpfs, tmpfsUnavailable } from './helpers/tmpfs.js'

const aaBin = path.join(root, 'aa-test-double/bin')
const run = promisify(execFile)
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

describe('aa argument lists', () => {
  it('archive: the contents of the framework folder, LZFSE in 1 MiB blocks, exactly scipio-s3-storage’s fields', () => {
    expect(aaArchiveArgs('/out/Kingfisher.xcframework', '/tmp/k.aar')).toEqual([
      'archive',
      '-d',
      '/out/Kingfisher.xcframework',
      '-o',
      '/tmp/k.aar',
      '-a',
      'lzfse',
      '-b',
      '1m',
      '-exclude-field',
      'all',
      '-include-field',
      'typ,pat,lnk,dev,dat,uid,gid,mod,flg,mtm,btm,ctm',
    ])
  })

  it('extract: into the framework folder, ignoring EPERM on attributes (as scipio-s3-storage’s .ignoreOperationNotPermitted)', () => {
    expect(aaExtractArgs('/stage/Kingfisher.xcframework', '/stage/k.aar')).toEqual([
      'extract',
      '-d',
      '/stage/Kingfisher.xcframework',
      '-i',
      '/stage/k.aar',
      '-ignore-eperm',
    ])
  })

  it('the field options select exactly scipio-s3-storage’s set (aa(1): exclude all, then include)', () => {
    const args = aaArchiveArgs('d', 'o')
    const keys = fieldKeySet([
      { op: 'exclude', spec: args[args.indexOf('-exclude-field') + 1] },
      { op: 'include', spec: args[args.indexOf('-include-field') + 1] },
    ]) as Set<string>
    expect([...keys].map((k) => k.toUpperCase()).sort()).toEqual(
      'TYP,PAT,LNK,DEV,DAT,UID,GID,MOD,FLG,MTM,BTM,CTM'.split(',').sort(),
    )
  })

  it('finds aa on PATH only', async () => {
    expect(await findAa({ PATH: aaBin })).toBe(path.join(aaBin, 'aa'))
    expect(await findAa({ PATH: path.join(root, 'scipio-test-double/bin') })).toBeUndefined()
  })
})

describe('the aa test double writes the documented bytes', () => {
  let dir: string
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'aa-bytes-'))
    await fs.writeFile(path.join(dir, 'a'), 'hi')
  })

  it('AA01 entries: magic, u16 LE header size (magic included), key + subtype fields, blob data after the header', () => {
    const stream = archiveDirectory(dir, new Set(['typ', 'pat', 'dat'])) as Buffer
    const root = Buffer.from('AA01\x11\x00TYP1DPATP\x00\x00', 'latin1')
    const file = Buffer.from('AA01\x18\x00TYP1FPATP\x01\x00aDATA\x02\x00hi', 'latin1')
    expect(stream.equals(Buffer.concat([root, file]))).toBe(true)
  })

  it('the pbze container: magic, u64 BE block size, then per block u64 BE sizes (equal: stored) and the payload', () => {
    const payload = Buffer.from('AA01\x11\x00TYP1DPATP\x00\x00', 'latin1')
    const wrapped = wrapBlocks(payload, 'lzfse', 8) as Buffer
    const u64 = (n: number) => {
      const b = Buffer.alloc(8)
      b.writeBigUInt64BE(BigInt(n))
      return b
    }
    expect(
      wrapped.equals(
        Buffer.concat([
          Buffer.from('pbze'),
          u64(8),
          u64(8),
          u64(8),
          payload.subarray(0, 8),
          u64(8),
          u64(8),
          payload.subarray(8, 16),
          u64(1),
          u64(1),
          payload.subarray(16),
        ]),
      ),
    ).toBe(true)
    expect((unwrapBlocks(wrapped) as Buffer).equals(payload)).toBe(true)
  })

  it('refuses an LZFSE-compressed block with a clear message (only /usr/bin/aa reads real LZFSE)', () => {
    const u64 = (n: number) => {
      const b = Buffer.alloc(8)
      b.writeBigUInt64BE(BigInt(n))
      return b
    }
    const compressed = Buffer.concat([Buffer.from('pbze'), u64(1 << 20), u64(100), u64(3), Buffer.from('xyz')])
    expect(() => unwrapBlocks(compressed)).toThrow(
      /LZFSE-compressed block: the aa test double reads stored blocks only/,
    )
  })

  it('a round trip through the double’s aa archive and aa extract keeps symlinks, modes and empty folders', async () => {
    const src = path.join(dir, 'X.framework')
    await fs.mkdir(path.join(src, 'Versions/A/Headers'), { recursive: true })
    await fs.mkdir(path.join(src, 'empty'))
    await fs.writeFile(path.join(src, 'Versions/A/X'), 'binary', { mode: 0o755 })
    await fs.symlink('A', path.join(src, 'Versions/Current'))
    await fs.symlink('Versions/Current/X', path.join(src, 'X'))
    const file = path.join(dir, 'x.aar')
    const dst = path.join(dir, 'out')
    await run(process.execPath, [path.join(aaBin, 'aa'), ...aaArchiveArgs(src, file)])
    await run(process.execPath, [path.join(aaBin, 'aa'), ...aaExtractArgs(dst, file)])
    expect(await snapshotTree(dst)).toEqual(await snapshotTree(src))
  })

  it('rejects options it does not implement', async () => {
    await expect(
      run(process.execPath, [path.join(aaBin, 'aa'), 'archive', '-d', dir, '-o', path.join(dir, 'y.aar'), '-x']),
    ).rejects.toThrow(/not implemented/)
  })
})

describe('index entries for .aar objects', () => {
  const prefix = 'cache'
  const versionFile = Buffer.from('{\n  "targetName" : "Logging"\n}')
  const key = sha256(versionFile)
  const aar: IndexEntry = {
    targetName: 'Logging',
    scipioKey: key,
    format: 'aar',
    key: aarObjectKey(prefix, 'Logging', key),
    size: 10,
    sha256: 'a'.repeat(64),
    versionFile: versionFile.toString('base64'),
  }
  const tar: IndexEntry = {
    targetName: 'Other',
    scipioKey: 'b'.repeat(64),
    format: 'tar.gz',
    key: `${prefix}/Other/${'b'.repeat(64)}.tar.gz`,
    size: 10,
    sha256: 'c'.repeat(64),
  }
  const index: PackageIndex = {
    schema: 'scipio-s3-cache/index/v1',
    packageKey: 'd'.repeat(64),
    package: { identity: 'swift-log' },
    createdAt: 'now',
    targets: [aar, tar],
  }

  it('are stored apart, in aarTargets, so that earlier readers (which refuse a whole index over an unknown format) still read targets', () => {
    const doc = indexDocument(index) as { targets: IndexEntry[]; aarTargets: IndexEntry[] }
    expect(doc.targets).toEqual([tar])
    expect(doc.aarTargets).toEqual([aar])
    expect(doc.targets.every((t) => t.format === 'tar.zst' || t.format === 'tar.gz')).toBe(true)
    expect('aarTargets' in (indexDocument({ ...index, targets: [tar] }) as object)).toBe(false)
  })

  it('parse back into one list, an .aar entry with the dependency keys its VersionFile names (none here)', () => {
    const parsed = parseIndex(JSON.parse(JSON.stringify(indexDocument(index))), prefix, index.packageKey)
    expect(parsed.targets.sort((a, b) => a.targetName.localeCompare(b.targetName))).toEqual([
      { ...aar, dependencyCacheKeyChecksums: [] },
      tar,
    ])
  })

  it('make the index unusable when the kept VersionFile does not hash to the key, or the key is not scipio-s3-storage’s', () => {
    const bad = (entry: Partial<IndexEntry>) => ({ ...indexDocument(index), aarTargets: [{ ...aar, ...entry }] })
    expect(() =>
      parseIndex(bad({ versionFile: Buffer.from('other').toString('base64') }), prefix, index.packageKey),
    ).toThrow(/does not hash to its scipioKey/)
    expect(() => parseIndex(bad({ key: `${prefix}/Logging/${key}.tar.gz` }), prefix, index.packageKey)).toThrow(
      /not where scipio-s3-storage puts it/,
    )
    expect(() => parseIndex(bad({ format: 'tar.gz' as const }), prefix, index.packageKey)).toThrow(/another format/)
    // The immutable copy an adopting producer indexes: named by the entry's SHA-256, and by no other.
    const copy = contentObjectKey(prefix, 'Logging', key, aar.sha256, 'aar')
    expect(parseIndex(bad({ key: copy }), prefix, index.packageKey).targets.map((t) => t.key)).toContain(copy)
    expect(() =>
      parseIndex(
        bad({ key: contentObjectKey(prefix, 'Logging', key, 'e'.repeat(64), 'aar') }),
        prefix,
        index.packageKey,
      ),
    ).toThrow(/not where scipio-s3-storage puts it/)
  })

  it('recognises Apple Archive bytes', () => {
    expect(looksLikeAppleArchive(Buffer.from('pbze....'))).toBe(true)
    expect(looksLikeAppleArchive(Buffer.from('AA01'))).toBe(true)
    expect(looksLikeAppleArchive(Buffer.from('\x28\xb5\x2f\xfd', 'latin1'))).toBe(false)
  })
})

describe('restoring an .aar entry', () => {
  const versionFile = Buffer.from('{\n  "targetName" : "Logging"\n}')
  const key = sha256(versionFile)
  const previousPath = process.env.PATH

  /** An .aar whose single entry besides the root is `extra`. */
  function archive(...extra: Buffer[]): Buffer {
    const rootEntry = Buffer.from('AA01\x11\x00TYP1DPATP\x00\x00', 'latin1')
    return wrapBlocks(Buffer.concat([rootEntry, ...extra]), 'lzfse', 1 << 20) as Buffer
  }
  const symlinkEntry = (name: string, target: string) => {
    const s = (k: string, v: string) => {
      const b = Buffer.from(v)
      const n = Buffer.alloc(2)
      n.writeUInt16LE(b.length)
      return Buffer.concat([Buffer.from(`${k}P`), n, b])
    }
    return encodeEntry([Buffer.from('TYP1L'), s('PAT', name), s('LNK', target)]) as Buffer
  }
  const entryFor = (bytes: Buffer, overrides: Partial<IndexEntry> = {}): IndexEntry => ({
    targetName: 'Logging',
    scipioKey: key,
    format: 'aar',
    key: `Logging/${key}.aar`,
    size: bytes.length,
    sha256: sha256(bytes),
    versionFile: versionFile.toString('base64'),
    ...overrides,
  })
  async function restoreInto(
    bytes: Buffer,
    entry: IndexEntry,
    options: { bin?: string; staging?: string } = {},
  ): Promise<string> {
    const staging = options.staging ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'aar-staging-')))
    process.env.PATH = `${options.bin ?? aaBin}${path.delimiter}${previousPath}`
    try {
      await restoreAppleArchive(entry, staging, {
        open: async () => ({ body: Readable.from([bytes]), size: bytes.length }),
        watch: () => new StallWatch(60_000, () => new Error('stalled')),
      })
    } finally {
      process.env.PATH = previousPath
    }
    return staging
  }

  it('unpacks into <Name>.xcframework, writes the VersionFile kept in the index, leaves nothing else', async () => {
    const bytes = archive(symlinkEntry('Current', 'A'))
    const staging = await restoreInto(bytes, entryFor(bytes))
    expect((await fs.readdir(staging)).sort()).toEqual(['.Logging.version', 'Logging.xcframework'])
    expect(await fs.readlink(path.join(staging, 'Logging.xcframework/Current'))).toBe('A')
    expect((await fs.readFile(path.join(staging, '.Logging.version'))).equals(versionFile)).toBe(true)
  })

  it('refuses a symlink that leaves the framework (the entry guard on the extracted tree)', async () => {
    const bytes = archive(symlinkEntry('escape', '../../../etc'))
    await expect(restoreInto(bytes, entryFor(bytes))).rejects.toThrow(UnsafeArchiveError)
    await expect(restoreInto(bytes, entryFor(bytes))).rejects.toThrow(/points outside Logging.xcframework/)
  })

  it('refuses an absolute symlink', async () => {
    const bytes = archive(symlinkEntry('abs', '/etc/passwd'))
    await expect(restoreInto(bytes, entryFor(bytes))).rejects.toThrow(/points to an absolute path/)
  })

  it('checks size and SHA-256 against the index before aa sees the bytes', async () => {
    const bytes = archive()
    await expect(restoreInto(bytes, entryFor(bytes, { sha256: 'e'.repeat(64) }))).rejects.toThrow(CorruptArchiveError)
    await expect(restoreInto(bytes, entryFor(bytes, { size: bytes.length + 1 }))).rejects.toThrow(
      /differs from the index/,
    )
  })

  it('checks the VersionFile kept in the index against the key', async () => {
    const bytes = archive()
    await expect(
      restoreInto(bytes, entryFor(bytes, { versionFile: Buffer.from('x').toString('base64') })),
    ).rejects.toThrow(/does not match the key/)
  })

  it('reports what aa says when it cannot unpack the bytes', async () => {
    const u64 = (n: number) => {
      const b = Buffer.alloc(8)
      b.writeBigUInt64BE(BigInt(n))
      return b
    }
    const bytes = Buffer.concat([Buffer.from('pbze'), u64(1 << 20), u64(100), u64(3), Buffer.from('xyz')])
    await expect(restoreInto(bytes, entryFor(bytes))).rejects.toThrow(
      /aa extract failed \(exit code 1\): .*LZFSE-compressed block/,
    )
  })

  it('an aa that fails for want of space is a full disk, never an integrity failure', async () => {
    const bin = await fs.mkdtemp(path.join(os.tmpdir(), 'aa-full-'))
    await fs.writeFile(
      path.join(bin, 'aa'),
      '#!/bin/sh\necho "aa: Logging.xcframework/Logging: write: No space left on device" >&2\nexit 1\n',
      { mode: 0o755 },
    )
    const bytes = archive(symlinkEntry('Current', 'A'))
    const failure = restoreInto(bytes, entryFor(bytes), { bin })
    await expect(failure).rejects.toThrow(DiskFullError)
    await expect(failure).rejects.toThrow(
      /aa extract ran out of space in .*: aa extract failed .*No space left on device/,
    )
  })

  it.skipIf(tmpfsUnavailable !== undefined)(
    `the aa double filling a small tmpfs is a full disk${tmpfsUnavailable ? ` (skipped: ${tmpfsUnavailable})` : ''}`,
    async () => {
      // A 256 KiB file: the download fits the tmpfs, the download and the unpacked file together do not.
      const source = await fs.mkdtemp(path.join(os.tmpdir(), 'aar-source-'))
      await fs.writeFile(path.join(source, 'Logging'), randomBytes(256 * 1024))
      const file = path.join(source, '..', `${path.basename(source)}.aar`)
      await run(process.execPath, [path.join(aaBin, 'aa'), ...aaArchiveArgs(source, file)])
      const bytes = await fs.readFile(file)
      const staging = await fs.mkdtemp(path.join(os.tmpdir(), 'aar-tmpfs-'))
      const unmount = mountTmpfs(staging, 384 * 1024)
      try {
        const failure = restoreInto(bytes, entryFor(bytes), { staging })
        await expect(failure).rejects.toThrow(DiskFullError)
        await expect(failure).rejects.toThrow(/^aa extract ran out of space in /)
      } finally {
        unmount()
      }
    },
  )
})
