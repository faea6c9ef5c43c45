import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { compressionLabel, extractArchive, Measure, packArchive, strongestCompression } from './archive.js'
import { CorruptArchiveError, defaultExtractLimits } from './guard.js'
import { frameworkFolder, versionFileName } from '../keys/frameworks.js'
import { scipioKey, type ArchiveFormat } from '../keys/keys.js'
import type { Storage } from '../storage/index.js'

/**
 * One archive packed again at the strongest setting (`scipio-s3-cache repack`, cli/repack.ts): downloaded and
 * checked against its index entry, unpacked with the restore's guards, packed as `code.tar.zst` with
 * `strongestCompression`, and unpacked once more to prove that the new archive gives back exactly the same tree
 * (every file's bytes, mode and time, every symlink, every folder) before anything is uploaded.
 */

export interface RepackedArchive {
  /** The new archive, in `folder`. */
  file: string
  sha256: string
  size: number
  compression: string
}

/** What an index entry says of the stored archive (bucket/cache-index.ts's IndexEntry has these fields). */
export interface StoredArchive {
  key: string
  targetName: string
  scipioKey: string
  sha256: string
  size: number
  format: ArchiveFormat
}

export async function repackArchive(storage: Storage, entry: StoredArchive, folder: string): Promise<RepackedArchive> {
  const roots = { folder: frameworkFolder(entry.targetName), file: versionFileName(entry.targetName) }
  const original = path.join(folder, 'original')
  const again = path.join(folder, 'again')
  await fs.mkdir(original)
  await fs.mkdir(again)
  const object = await storage.get(entry.key)
  if (!object) throw new Error(`${entry.key} is listed but not stored`)
  const hash = createHash('sha256')
  const measure = new Measure(hash)
  await extractArchive(object.body, original, entry.format, roots, defaultExtractLimits, [measure])
  const sha256 = hash.digest('hex')
  if (sha256 !== entry.sha256 || measure.bytes !== entry.size)
    throw new CorruptArchiveError(`${entry.key} is not the archive its index entry describes`)
  const versionFile = await fs.readFile(path.join(original, roots.file))
  if (scipioKey(versionFile) !== entry.scipioKey)
    throw new CorruptArchiveError(`${entry.key} holds a VersionFile of another key`)

  const file = path.join(folder, 'archive')
  const out = createHash('sha256')
  const written = new Measure(out)
  await pipeline(
    packArchive(original, [roots.folder, roots.file], 'code.tar.zst', strongestCompression),
    written,
    createWriteStream(file),
  )
  await extractArchive(createReadStream(file), again, 'code.tar.zst', roots)
  const [before, after] = await Promise.all([treeDigest(original), treeDigest(again)])
  const differs = [...new Set([...before.keys(), ...after.keys()])].find((rel) => before.get(rel) !== after.get(rel))
  if (differs !== undefined) throw new Error(`the repacked ${entry.targetName} would restore '${differs}' differently`)
  return { file, sha256: out.digest('hex'), size: written.bytes, compression: compressionLabel(strongestCompression) }
}

/** Every entry below `dir`: its type, mode, time and content digest or link target. */
async function treeDigest(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const walk = async (rel: string): Promise<void> => {
    const abs = path.join(dir, rel)
    const stat = await fs.lstat(abs)
    const meta = `${(stat.mode & 0o7777).toString(8)} ${Math.floor(stat.mtimeMs / 1000)}`
    if (stat.isSymbolicLink()) out.set(rel, `link ${await fs.readlink(abs)}`)
    else if (stat.isDirectory()) {
      if (rel) out.set(rel, `dir ${meta}`) // the folder it was unpacked into is not the archive's
      for (const name of (await fs.readdir(abs)).sort()) await walk(path.join(rel, name))
    } else {
      const digest = createHash('sha256')
      await pipeline(createReadStream(abs), digest)
      out.set(rel, `file ${meta} ${digest.digest('hex')}`)
    }
  }
  await walk('')
  return out
}
