import * as fs from 'node:fs/promises'
import * as fsSync from 'node:fs'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import * as os from 'node:os'
import * as path from 'node:path'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import * as tar from 'tar'
import { describe, expect, it } from 'vitest'
import { extractArchive, packArchive, preferredFormat } from '../src/archive/archive.js'
import { CorruptArchiveError, EntryGuard, UnsafeArchiveError } from '../src/archive/guard.js'
import { TarExtractor } from '../src/archive/extract.js'
import { partBytes } from '../src/archive/pack.js'
import { snapshotTree } from './helpers/tree.js'
import { tarArchive, tarEntry } from './helpers/tar.js'

const roots = { folder: 'Long.xcframework', file: '.Long.version' }

async function tempDir(prefix: string) {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix))
}

/** Gives an entry another type flag (the helper only knows the usual ones) and its header a fresh checksum. */
function withFlag(entry: Buffer, flag: string): Buffer {
  entry.write(flag, 156)
  entry.write('        ', 148)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += entry[i]!
  entry.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  return entry
}

/** A GNU long name or long link record. */
function gnuLongName(flag: 'L' | 'K', value: string): Buffer {
  return withFlag(tarEntry({ path: '././@LongLink', type: 'file', content: Buffer.from(`${value}\0`) }), flag)
}

async function toBuffer(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/**
 * Holds every asynchronous `fs.write` (the extractor's large writes) until `release()`, and records when a
 * descriptor is closed: node:fs's functions are replaced for the whole process, as the extractor sees them.
 */
function holdWrites() {
  const cjs = createRequire(import.meta.url)('node:fs') as typeof fsSync
  const { write, close, closeSync } = cjs
  const events: string[] = []
  const held: (() => void)[] = []
  let issued!: (fd: number) => void
  const first = new Promise<number>((resolve) => (issued = resolve))
  let wrote!: () => void
  const settled = new Promise<void>((resolve) => (wrote = resolve))
  let released = false
  const patched = cjs as unknown as Record<string, unknown>
  patched.write = (fd: number, ...rest: unknown[]) => {
    const callback = rest.pop() as (error: Error | null, written: number) => void
    const go = () =>
      (write as (...args: unknown[]) => void)(fd, ...rest, (error: Error | null, written: number) => {
        events.push(`wrote ${fd}`)
        wrote()
        callback(error, written)
      })
    issued(fd)
    if (released) go()
    else held.push(go)
  }
  patched.close = (fd: number, callback: (error: Error | null) => void) => {
    events.push(`close ${fd}`)
    close(fd, callback)
  }
  patched.closeSync = (fd: number) => {
    events.push(`close ${fd}`)
    closeSync(fd)
  }
  syncBuiltinESMExports()
  return {
    /** The descriptor of the first write, once it is issued (and held). */
    first,
    /** Resolves once a held write has been done. */
    settled,
    events,
    release() {
      released = true
      for (const go of held.splice(0)) go()
    },
    restore() {
      Object.assign(patched, { write, close, closeSync })
      syncBuiltinESMExports()
    },
  }
}

/** A piece of a file (type M) as src/pack.ts writes it: a pax record with its place, then the header. */
function piece(file: string, offset: number, total: number, content: Buffer): Buffer {
  const record = (key: string, value: string) => {
    const body = ` ${key}=${value}\n`
    let length = body.length + 1
    while (String(length).length + body.length !== length) length = String(length).length + body.length
    return `${length}${body}`
  }
  const pax = Buffer.from(record('SCIPIO.offset', String(offset)) + record('SCIPIO.size', String(total)))
  return Buffer.concat([
    withFlag(tarEntry({ path: 'PaxHeader/x', type: 'file', content: pax }), 'x'),
    withFlag(tarEntry({ path: file, type: 'file', content }), 'M'),
  ])
}

describe('the tar extractor', () => {
  it('round-trips a framework whose slices share large binaries, written in pieces taken in turn', async () => {
    const src = await tempDir('pieces-src-')
    const binary = Buffer.alloc(2 * partBytes + 12345)
    for (let i = 0; i + 4 <= binary.length; i += 4) binary.writeUInt32LE((i * 2654435761) >>> 0, i)
    for (const slice of ['ios-arm64', 'ios-arm64_x86_64-simulator']) {
      await fs.mkdir(path.join(src, `Long.xcframework/${slice}/Long.framework`), { recursive: true })
      const copy = Buffer.from(binary)
      if (slice !== 'ios-arm64') copy.writeUInt32LE(7, 4096) // nearly equal
      await fs.writeFile(path.join(src, `Long.xcframework/${slice}/Long.framework/Long`), copy, { mode: 0o755 })
      await fs.writeFile(path.join(src, `Long.xcframework/${slice}/Long.framework/Info.plist`), '<plist/>')
    }
    await fs.writeFile(path.join(src, '.Long.version'), '{}')
    const format = preferredFormat()
    const bytes = await toBuffer(packArchive(src, ['Long.xcframework', '.Long.version'], format))
    const dst = await tempDir('pieces-dst-')
    await extractArchive(Readable.from([bytes]), dst, format, roots)
    expect(await snapshotTree(dst)).toEqual(await snapshotTree(src))
    // With zstd's long-distance matching the second slice's binary costs only its differences (gzip's 32 KiB
    // window cannot see the first copy).
    if (format === 'tar.zst') expect(bytes.length).toBeLessThan(binary.length * 1.3)
  })

  it('starts every archive with an entry that releases before pieces (node-tar and the entry guard) refuse', async () => {
    const src = await tempDir('marker-src-')
    await fs.mkdir(path.join(src, 'Long.xcframework'))
    await fs.writeFile(path.join(src, 'Long.xcframework/Info.plist'), '<plist/>')
    await fs.writeFile(path.join(src, '.Long.version'), '{}')
    const bytes = await toBuffer(packArchive(src, ['Long.xcframework', '.Long.version'], 'tar.gz'))
    const seen: string[] = []
    const file = path.join(src, 'archive.tar.gz')
    await fs.writeFile(file, bytes)
    tar.t({ file, sync: true, filter: (p, e) => (seen.push(`${(e as tar.ReadEntry).type} ${p}`), true) })
    // What node-tar hands to an earlier release's filter first: a FIFO, which its EntryGuard refuses.
    expect(seen[0]).toBe('FIFO .scipio-s3-cache-pieces')
    expect(
      new EntryGuard(roots, { maxBytes: 1e9, maxEntries: 1e6 }).check('.scipio-s3-cache-pieces', 'FIFO', 0, undefined),
    ).toMatch(/FIFO entry/)
    const dst = await tempDir('marker-dst-')
    await extractArchive(Readable.from([bytes]), dst, 'tar.gz', roots)
    expect((await fs.readdir(dst)).sort()).toEqual(['.Long.version', 'Long.xcframework'])
  })

  it('refuses pieces out of order, overrunning their file, or missing', async () => {
    const dir = tarEntry({ path: 'Long.xcframework/', type: 'dir' })
    const end = Buffer.alloc(1024)
    const cases: [string, Buffer[], RegExp][] = [
      ['a later piece first', [piece('Long.xcframework/bin', 4, 8, Buffer.alloc(4))], /out of place/],
      ['a piece past the end', [piece('Long.xcframework/bin', 0, 4, Buffer.alloc(8))], /out of place/],
      ['a missing last piece', [piece('Long.xcframework/bin', 0, 8, Buffer.alloc(4))], /pieces of a file are missing/],
      ['a piece outside the framework', [piece('Other/bin', 0, 4, Buffer.alloc(4))], /outside/],
    ]
    for (const [, pieces, error] of cases) {
      await expect(
        extractArchive(
          Readable.from([gzipSync(Buffer.concat([dir, ...pieces, end]))]),
          await tempDir('piece-'),
          'tar.gz',
          roots,
        ),
      ).rejects.toThrow(error)
    }
    await expect(
      extractArchive(
        Readable.from([gzipSync(Buffer.concat([dir, piece('Other/bin', 0, 4, Buffer.alloc(4)), end]))]),
        await tempDir('piece-'),
        'tar.gz',
        roots,
      ),
    ).rejects.toBeInstanceOf(UnsafeArchiveError)
    const whole = Buffer.concat([
      dir,
      piece('Long.xcframework/bin', 0, 8, Buffer.from('abcd')),
      piece('Long.xcframework/bin', 4, 8, Buffer.from('efgh')),
      end,
    ])
    const dst = await tempDir('piece-')
    await extractArchive(Readable.from([gzipSync(whole)]), dst, 'tar.gz', roots)
    expect(await fs.readFile(path.join(dst, 'Long.xcframework/bin'), 'utf8')).toBe('abcdefgh')
  })

  it('reads what node-tar wrote: pax long names, symlinks with long targets, modes and mtimes', async () => {
    const src = await tempDir('node-tar-src-')
    const deep = path.join('Long.xcframework', 'ios-arm64', 'Long.framework', 'Headers', 'a'.repeat(90), 'b'.repeat(90))
    await fs.mkdir(path.join(src, deep), { recursive: true })
    const file = path.join(deep, `${'c'.repeat(120)}.h`)
    await fs.writeFile(path.join(src, file), 'header')
    await fs.chmod(path.join(src, file), 0o640)
    await fs.symlink(path.join('..', 'b'.repeat(90), `${'c'.repeat(120)}.h`), path.join(src, deep, 'link.h'))
    await fs.writeFile(path.join(src, '.Long.version'), '{}')
    const when = new Date('2024-03-01T12:00:00Z')
    await fs.utimes(path.join(src, file), when, when)
    const chunks: Buffer[] = []
    for await (const c of tar.create({ cwd: src, gzip: true, portable: true }, ['Long.xcframework', '.Long.version']))
      chunks.push(c)
    const dst = await tempDir('node-tar-dst-')
    await extractArchive(Readable.from([Buffer.concat(chunks)]), dst, 'tar.gz', roots)
    expect(await fs.readFile(path.join(dst, file), 'utf8')).toBe('header')
    const stat = await fs.stat(path.join(dst, file))
    expect(stat.mode & 0o777).toBe(0o640)
    expect(stat.mtime.toISOString()).toBe(when.toISOString())
    // node-tar's portable mode records folders with mtime 0; they must not come back as 1970.
    expect((await fs.stat(path.join(dst, deep))).mtime.getFullYear()).toBeGreaterThan(2000)
    expect(await fs.readlink(path.join(dst, deep, 'link.h'))).toBe(
      path.join('..', 'b'.repeat(90), `${'c'.repeat(120)}.h`),
    )
  })

  it('reads GNU long names and long link targets', async () => {
    const name = `Long.xcframework/${'d'.repeat(150)}`
    const archive = Buffer.concat([
      tarEntry({ path: 'Long.xcframework/', type: 'dir' }),
      gnuLongName('L', name),
      tarEntry({ path: 'truncated-name', type: 'file', content: Buffer.from('long') }),
      gnuLongName('L', `${name}-link`),
      gnuLongName('K', 'd'.repeat(150)),
      tarEntry({ path: 'truncated-link', type: 'symlink', linkpath: 'x' }),
      Buffer.alloc(1024),
    ])
    const dst = await tempDir('gnu-')
    await extractArchive(Readable.from([gzipSync(archive)]), dst, 'tar.gz', roots)
    expect(await fs.readFile(path.join(dst, name), 'utf8')).toBe('long')
    expect(await fs.readlink(path.join(dst, `${name}-link`))).toBe('d'.repeat(150))
  })

  it('handles headers and bodies split across any chunk boundary', async () => {
    const content = Buffer.alloc(200_000, 7)
    const archive = gzipSync(
      tarArchive([
        { path: 'Long.xcframework/', type: 'dir' },
        { path: 'Long.xcframework/bin', type: 'file', content, mode: 0o755 },
        { path: '.Long.version', type: 'file', content: Buffer.from('{}') },
      ]),
    )
    const raw = (await import('node:zlib')).gunzipSync(archive)
    // Re-compress as many odd-sized members is not possible with gzip streams; feed odd-sized compressed chunks instead.
    const pieces: Buffer[] = []
    for (let at = 0; at < archive.length; at += 333) pieces.push(archive.subarray(at, at + 333))
    const dst = await tempDir('split-')
    await extractArchive(Readable.from(pieces), dst, 'tar.gz', roots)
    expect((await fs.readFile(path.join(dst, 'Long.xcframework/bin'))).equals(content)).toBe(true)
    expect(raw.length % 512).toBe(0)
  })

  it('refuses a truncated archive and a damaged header as corrupt', async () => {
    const whole = tarArchive([
      { path: 'Long.xcframework/', type: 'dir' },
      { path: 'Long.xcframework/bin', type: 'file', content: Buffer.alloc(4096, 1) },
    ])
    const truncated = whole.subarray(0, 512 + 512 + 1024)
    await expect(
      extractArchive(Readable.from([gzipSync(truncated)]), await tempDir('trunc-'), 'tar.gz', roots),
    ).rejects.toBeInstanceOf(CorruptArchiveError)
    const damaged = Buffer.from(whole)
    damaged[512 + 10] = 0x41 // inside the second header's name: its checksum no longer matches
    await expect(
      extractArchive(Readable.from([gzipSync(damaged)]), await tempDir('damaged-'), 'tar.gz', roots),
    ).rejects.toThrow(/checksum/)
  })

  it('closes a file only once its pending write has settled: a destroyed extractor never writes into a reused descriptor', async () => {
    // The restore destroys an extractor whose archive failed its checks while a large write may be in the thread
    // pool. Closing the descriptor then would free its number for the next file opened in this process (extraction
    // threads share descriptors), and the pending write would land there.
    const archive = tarArchive([
      { path: 'Long.xcframework/', type: 'dir' },
      { path: 'Long.xcframework/bin', type: 'file', content: Buffer.alloc(256 * 1024, 0x61) },
    ])
    const others = await tempDir('reused-')
    const writes = holdWrites()
    const opened: number[] = []
    try {
      const extractor = new TarExtractor(
        await tempDir('destroyed-'),
        new EntryGuard(roots, { maxBytes: 1e9, maxEntries: 1e6 }),
      )
      extractor.on('error', () => undefined)
      const closed = new Promise((resolve) => extractor.once('close', resolve))
      extractor.write(archive)
      const fd = await writes.first
      extractor.destroy(new Error('the archive failed its SHA-256 check'))
      await new Promise((resolve) => setTimeout(resolve, 100))
      // Other files opened now take the lowest free numbers: the extractor's too, if it was closed.
      for (let i = 0; i < 20; i++) opened.push(fsSync.openSync(path.join(others, `file-${i}`), 'w'))
      writes.release()
      await Promise.all([closed, writes.settled])
      expect(writes.events).toEqual([`wrote ${fd}`, `close ${fd}`])
      for (let i = 0; i < 20; i++) expect(fsSync.readFileSync(path.join(others, `file-${i}`))).toHaveLength(0)
    } finally {
      writes.restore()
      for (const fd of opened) fsSync.closeSync(fd)
    }
  })
})
