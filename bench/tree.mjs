// Compares a restored folder with the original, entry by entry: type, permission bits, symlink target and
// file contents. Returns what differs, so a contender that drops symlinks or mode bits says so.
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

export function snapshot(dir, { skip = () => false } = {}) {
  const out = new Map()
  const walk = (rel) => {
    const abs = path.join(dir, rel)
    const stat = fs.lstatSync(abs)
    const mode = (stat.mode & 0o777).toString(8)
    if (stat.isSymbolicLink()) out.set(rel, `link -> ${fs.readlinkSync(abs)}`)
    else if (stat.isDirectory()) {
      if (rel) out.set(rel, `dir`)
      for (const name of fs.readdirSync(abs).sort()) if (!skip(path.join(rel, name))) walk(path.join(rel, name))
    } else if (stat.isFile())
      out.set(rel, `file ${mode} ${createHash('sha256').update(fs.readFileSync(abs)).digest('hex')}`)
    else out.set(rel, 'other')
  }
  walk('')
  return out
}

/** { identical, issues: string[] } of `actual` against `expected` (snapshots). */
export function compare(expected, actual) {
  const counts = {}
  const bump = (what) => (counts[what] = (counts[what] ?? 0) + 1)
  for (const [rel, want] of expected) {
    const got = actual.get(rel)
    if (got === want) continue
    if (got === undefined)
      bump(want.startsWith('dir') ? 'folders missing' : want.startsWith('link') ? 'symlinks missing' : 'files missing')
    else if (want.startsWith('link')) bump('symlinks turned into copies')
    else if (want.startsWith('file') && got.startsWith('file') && want.split(' ')[2] === got.split(' ')[2])
      bump('permission bits lost')
    else bump('contents differ')
  }
  for (const rel of actual.keys()) if (!expected.has(rel)) bump('extra entries')
  const issues = Object.entries(counts).map(([what, n]) => `${n} ${what}`)
  return { identical: issues.length === 0, issues }
}
