import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

/** Every entry below `dir`: type, permission bits, and content hash or link target. Two equal snapshots mean identical trees. */
export async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  async function walk(rel: string) {
    const abs = path.join(dir, rel)
    const stat = await fs.lstat(abs)
    const mode = (stat.mode & 0o777).toString(8)
    if (stat.isSymbolicLink()) out[rel] = `link -> ${await fs.readlink(abs)}`
    else if (stat.isDirectory()) {
      if (rel) out[rel] = `dir ${mode}`
      for (const name of (await fs.readdir(abs)).sort()) await walk(path.join(rel, name))
    } else if (stat.isFile())
      out[rel] = `file ${mode} ${createHash('sha256')
        .update(await fs.readFile(abs))
        .digest('hex')}`
    else out[rel] = 'other'
  }
  await walk('')
  return out
}
