import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { gzipSync, zstdCompressSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { extractArchive, packArchive, zstdAvailable } from '../src/archive/archive.js'
import { CorruptArchiveError, UnsafeArchiveError } from '../src/archive/guard.js'
import { thinMachO } from './helpers/macho.js'
import { runAction, s3TestInputs } from './helpers/action.js'
import { exampleWorkspace, readDoubleLog } from './helpers/workspace.js'
import { paxRecord, tarArchive, type RawEntry } from './helpers/tar.js'
import { useStore } from './helpers/store.js'

const roots = { folder: 'Evil.xcframework', file: '.Evil.version' }
const ok: RawEntry[] = [
  { path: 'Evil.xcframework/', type: 'dir' },
  { path: 'Evil.xcframework/Info.plist', type: 'file', content: Buffer.from('<plist/>') },
]

const corpus: [name: string, entries: RawEntry[], refusal: RegExp][] = [
  [
    'an absolute path',
    [...ok, { path: '/tmp/scipio-s3-cache-attack/absolute.txt', type: 'file', content: Buffer.from('x') }],
    /absolute|outside/,
  ],
  [
    'a .. component',
    [...ok, { path: 'Evil.xcframework/../../escaped.txt', type: 'file', content: Buffer.from('x') }],
    /'\.\.'/,
  ],
  [
    'a symlink pointing outside the framework',
    [...ok, { path: 'Evil.xcframework/link', type: 'symlink', linkpath: '../../outside' }],
    /points outside/,
  ],
  [
    'an absolute symlink',
    [...ok, { path: 'Evil.xcframework/link', type: 'symlink', linkpath: '/etc' }],
    /absolute path/,
  ],
  [
    'a symlink to outside, then a file written through it',
    [
      ...ok,
      { path: 'Evil.xcframework/escape', type: 'symlink', linkpath: '../..' },
      { path: 'Evil.xcframework/escape/through.txt', type: 'file', content: Buffer.from('x') },
    ],
    /points outside|through the symlink/,
  ],
  [
    'a symlink inside the framework, then a file written through it',
    [
      ...ok,
      { path: 'Evil.xcframework/ios', type: 'symlink', linkpath: '.' },
      { path: 'Evil.xcframework/ios/through.txt', type: 'file', content: Buffer.from('x') },
    ],
    /through the symlink/,
  ],
  [
    'a hard link',
    [...ok, { path: 'Evil.xcframework/hard', type: 'hardlink', linkpath: 'Evil.xcframework/Info.plist' }],
    /Link entry/,
  ],
  ['a character device', [...ok, { path: 'Evil.xcframework/dev', type: 'char' }], /CharacterDevice entry/],
  ['a block device', [...ok, { path: 'Evil.xcframework/blk', type: 'block' }], /BlockDevice entry/],
  ['a FIFO', [...ok, { path: 'Evil.xcframework/fifo', type: 'fifo' }], /FIFO entry/],
  [
    'an entry outside the two expected roots',
    [...ok, { path: 'Other.xcframework/x', type: 'file', content: Buffer.from('x') }],
    /outside Evil\.xcframework/,
  ],
  ['a VersionFile that is a folder', [...ok, { path: '.Evil.version/', type: 'dir' }], /must be a plain file/],
  [
    'a decompression bomb over the size cap',
    [...ok, { path: 'Evil.xcframework/bomb', type: 'file', content: Buffer.alloc(3 * 1024 * 1024) }],
    /more than 1048576 bytes/,
  ],
]

async function sandbox() {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'attack-'))
  const destination = path.join(parent, 'destination')
  await fs.mkdir(destination)
  return { parent, destination }
}

describe('hostile archives are refused and write nothing outside the destination', () => {
  it.each(corpus)('%s', async (_name, entries, refusal) => {
    const { parent, destination } = await sandbox()
    const archive = gzipSync(tarArchive(entries))
    const extraction = extractArchive(Readable.from([archive]), destination, 'tar.gz', roots, {
      maxBytes: 1024 * 1024,
      maxEntries: 1000,
    })
    await expect(extraction).rejects.toBeInstanceOf(UnsafeArchiveError)
    await expect(
      extractArchive(Readable.from([archive]), destination, 'tar.gz', roots, {
        maxBytes: 1024 * 1024,
        maxEntries: 1000,
      }),
    ).rejects.toThrow(refusal)
    expect(await fs.readdir(parent)).toEqual(['destination'])
    await expect(fs.stat('/tmp/scipio-s3-cache-attack')).rejects.toThrow()
    await expect(fs.stat(path.join(os.tmpdir(), 'escaped.txt'))).rejects.toThrow()
  })

  it('accepts the honest part of the corpus', async () => {
    const { destination } = await sandbox()
    await extractArchive(Readable.from([gzipSync(tarArchive(ok))]), destination, 'tar.gz', roots)
    expect(await fs.readFile(path.join(destination, 'Evil.xcframework/Info.plist'), 'utf8')).toBe('<plist/>')
  })

  it('stops at the entry-count cap', async () => {
    const { destination } = await sandbox()
    const many: RawEntry[] = Array.from({ length: 50 }, (_, i) => ({
      path: `Evil.xcframework/f${i}`,
      type: 'file' as const,
      content: Buffer.from('x'),
    }))
    await expect(
      extractArchive(Readable.from([gzipSync(tarArchive([...ok, ...many]))]), destination, 'tar.gz', roots, {
        maxBytes: 1e9,
        maxEntries: 20,
      }),
    ).rejects.toThrow(/more than 20 entries/)
  })
})

/** A `SCIPIO.code` record (machine-code/transforms.ts) for the entry that follows. */
const codeRecord = (record: unknown): RawEntry => ({
  path: 'PaxHeader/x',
  type: 'pax',
  content: paxRecord('SCIPIO.code', typeof record === 'string' ? record : JSON.stringify(record)),
})
const machO = thinMachO('arm64', { codeBytes: 100_000 })
const honestRecord = [['arm64', 0, 0x4000, 100_000]]

const codeCorpus: [name: string, entries: RawEntry[], error: typeof UnsafeArchiveError, message: RegExp][] = [
  [
    'a machine-code record on a symlink',
    [...ok, codeRecord(honestRecord), { path: 'Evil.xcframework/link', type: 'symlink', linkpath: 'Info.plist' }],
    UnsafeArchiveError,
    /machine-code record on 'Evil\.xcframework\/link', a SymbolicLink entry/,
  ],
  [
    'a machine-code record on a folder',
    [...ok, codeRecord(honestRecord), { path: 'Evil.xcframework/ios-arm64/', type: 'dir' }],
    UnsafeArchiveError,
    /machine-code record on 'Evil\.xcframework\/ios-arm64\/?', a Directory entry/,
  ],
  [
    'a record claiming code beyond the end of the file',
    [
      ...ok,
      codeRecord([['arm64', 0, 0x4000, 10_000_000]]),
      { path: 'Evil.xcframework/Evil', type: 'file', content: machO },
    ],
    CorruptArchiveError,
    /does not match its headers/,
  ],
  [
    'a record claiming a Mach-O the bytes are not',
    [
      ...ok,
      codeRecord(honestRecord),
      { path: 'Evil.xcframework/Evil', type: 'file', content: Buffer.alloc(200_000, 7) },
    ],
    CorruptArchiveError,
    /does not match its headers/,
  ],
  [
    'a record naming the headers themselves',
    [...ok, codeRecord([['arm64', 0, 0, 4096]]), { path: 'Evil.xcframework/Evil', type: 'file', content: machO }],
    CorruptArchiveError,
    /does not match its headers/,
  ],
  [
    'a record that is not one',
    [...ok, codeRecord('[["arm64",0,'), { path: 'Evil.xcframework/Evil', type: 'file', content: machO }],
    CorruptArchiveError,
    /bad machine-code record/,
  ],
  [
    'a record on the VersionFile, which is not Mach-O',
    [...ok, codeRecord(honestRecord), { path: '.Evil.version', type: 'file', content: Buffer.from('{}') }],
    CorruptArchiveError,
    /does not match its headers/,
  ],
]

describe.runIf(zstdAvailable())('hostile code.tar.zst archives are refused and write nothing outside', () => {
  it.each(codeCorpus)('%s', async (_name, entries, error, message) => {
    const { parent, destination } = await sandbox()
    const archive = zstdCompressSync(tarArchive(entries))
    const extract = () => extractArchive(Readable.from([archive]), destination, 'code.tar.zst', roots)
    await expect(extract()).rejects.toBeInstanceOf(error)
    await expect(extract()).rejects.toThrow(message)
    expect(await fs.readdir(parent)).toEqual(['destination'])
  })

  it('a truncated archive of converted code is damage, and leaves no VersionFile', async () => {
    const src = await fs.mkdtemp(path.join(os.tmpdir(), 'attack-src-'))
    await fs.mkdir(path.join(src, 'Evil.xcframework/ios-arm64/Evil.framework'), { recursive: true })
    await fs.writeFile(
      path.join(src, 'Evil.xcframework/ios-arm64/Evil.framework/Evil'),
      thinMachO('arm64', { codeBytes: 3_000_000 }),
    )
    await fs.writeFile(path.join(src, '.Evil.version'), '{}')
    const chunks: Buffer[] = []
    for await (const c of packArchive(src, ['Evil.xcframework', '.Evil.version'], 'code.tar.zst'))
      chunks.push(c as Buffer)
    const whole = Buffer.concat(chunks)
    for (const cut of [Math.floor(whole.length / 2), whole.length - 40]) {
      const { parent, destination } = await sandbox()
      const extraction = extractArchive(Readable.from([whole.subarray(0, cut)]), destination, 'code.tar.zst', roots)
      await expect(extraction).rejects.toBeInstanceOf(CorruptArchiveError)
      expect(await fs.readdir(parent)).toEqual(['destination'])
      await expect(fs.stat(path.join(destination, '.Evil.version'))).rejects.toThrow()
    }
  })
})

describe('a hostile archive in the bucket', () => {
  const store = useStore(['attack-cache'])

  it('is a miss with a warning; the target is built from source and nothing escapes', async () => {
    const inputs = {
      ...s3TestInputs(store.endpoint, 'attack-cache'),
    }
    const producer = await exampleWorkspace()
    expect((await runAction({ ...inputs, mode: 'producer', 'package-directory': producer })).code).toBe(0)
    // Replace Logging's archive with a hostile one and point its index entry at the new bytes.
    const client = store.s3.client()
    const listed = await client.send(
      new ListObjectsV2Command({ Bucket: 'attack-cache', Prefix: '.scipio-s3-cache/packages/' }),
    )
    const indexes = (listed.Contents ?? []).map((o) => o.Key!)
    expect(indexes).toHaveLength(5)
    let patched = false
    for (const key of indexes) {
      type Entry = { targetName: string; key: string; size: number; sha256: string; format: string }
      const index = (await (await fetch(`${store.s3.endpoint}/attack-cache/${key}`)).json()) as {
        targets: Entry[]
        laterFormats?: Entry[] | undefined
      }
      // This release's producer stores code.tar.zst, listed in laterFormats; the hostile entry is a tar.gz.
      const entry = [...index.targets, ...(index.laterFormats ?? [])].find((t) => t.targetName === 'Logging')
      if (!entry) continue
      index.laterFormats = index.laterFormats?.filter((t) => t !== entry)
      index.targets = [...index.targets.filter((t) => t !== entry), entry]
      const hostile = gzipSync(
        tarArchive([
          { path: 'Logging.xcframework/', type: 'dir' },
          { path: 'Logging.xcframework/../../pwned.txt', type: 'file', content: Buffer.from('pwned') },
        ]),
      )
      entry.format = 'tar.gz'
      entry.size = hostile.length
      entry.sha256 = createHash('sha256').update(hostile).digest('hex')
      // The archive's name carries its SHA-256: an attacker who can write the bucket names it accordingly.
      entry.key = entry.key.replace(/[0-9a-f]{64}\.(code\.)?tar\.(zst|gz)$/, `${entry.sha256}.tar.gz`)
      await client.send(new PutObjectCommand({ Bucket: 'attack-cache', Key: entry.key, Body: hostile }))
      await client.send(new PutObjectCommand({ Bucket: 'attack-cache', Key: key, Body: JSON.stringify(index) }))
      // And the completion marker's manifest, which a consumer reads instead of the indexes.
      const markers = await client.send(
        new ListObjectsV2Command({ Bucket: 'attack-cache', Prefix: '.scipio-s3-cache/complete/' }),
      )
      const markerKey = markers.Contents![0]!.Key!
      const marker = (await (await fetch(`${store.s3.endpoint}/attack-cache/${markerKey}`)).json()) as {
        packages: { targets: { targetName: string }[]; laterFormats?: { targetName: string }[] | undefined }[]
      }
      for (const pkg of marker.packages) {
        const listed = [...pkg.targets, ...(pkg.laterFormats ?? [])].some((t) => t.targetName === 'Logging')
        pkg.laterFormats = pkg.laterFormats?.filter((t) => t.targetName !== 'Logging')
        pkg.targets = [...pkg.targets.filter((t) => t.targetName !== 'Logging'), ...(listed ? [{ ...entry }] : [])]
      }
      await client.send(new PutObjectCommand({ Bucket: 'attack-cache', Key: markerKey, Body: JSON.stringify(marker) }))
      patched = true
    }
    expect(patched).toBe(true)
    const ws = await exampleWorkspace()
    const log = path.join(ws, 'double.log')
    const run = await runAction({ ...inputs, 'package-directory': ws }, { SCIPIO_TEST_DOUBLE_LOG: log })
    expect(run.code, run.stdout).toBe(0)
    expect(run.stdout).toMatch(
      /::warning::Cache miss for Logging \(swift-log\): unsafe archive: refused: 'Logging\.xcframework\/\.\.\/\.\.\/pwned\.txt' has a '\.\.'/,
    )
    expect((await readDoubleLog(log)).filter((e) => e.event === 'built').map((e) => e.target)).toEqual(['Logging'])
    await expect(fs.stat(path.join(ws, 'pwned.txt'))).rejects.toThrow()
    await expect(fs.stat(path.join(path.dirname(ws), 'pwned.txt'))).rejects.toThrow()
  })
})
