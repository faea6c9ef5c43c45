import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { extractArchive } from '../src/archive/archive.js'
import { UnsafeArchiveError } from '../src/archive/guard.js'
import { runAction, s3TestInputs } from './helpers/action.js'
import { exampleWorkspace, readDoubleLog } from './helpers/workspace.js'
import { tarArchive, type RawEntry } from './helpers/tar.js'
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
      const index = (await (await fetch(`${store.s3.endpoint}/attack-cache/${key}`)).json()) as {
        targets: { targetName: string; key: string; size: number; sha256: string; format: string }[]
      }
      const entry = index.targets.find((t) => t.targetName === 'Logging')
      if (!entry) continue
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
      entry.key = entry.key.replace(/[0-9a-f]{64}\.tar\.(zst|gz)$/, `${entry.sha256}.tar.gz`)
      await client.send(new PutObjectCommand({ Bucket: 'attack-cache', Key: entry.key, Body: hostile }))
      await client.send(new PutObjectCommand({ Bucket: 'attack-cache', Key: key, Body: JSON.stringify(index) }))
      // And the completion marker's manifest, which a consumer reads instead of the indexes.
      const markers = await client.send(
        new ListObjectsV2Command({ Bucket: 'attack-cache', Prefix: '.scipio-s3-cache/complete/' }),
      )
      const markerKey = markers.Contents![0]!.Key!
      const marker = (await (await fetch(`${store.s3.endpoint}/attack-cache/${markerKey}`)).json()) as {
        packages: { targets: { targetName: string }[] }[]
      }
      for (const pkg of marker.packages)
        pkg.targets = pkg.targets.map((t) => (t.targetName === 'Logging' ? { ...entry } : t))
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
