import * as path from 'node:path'

/**
 * What an archive may contain, judged entry by entry before anything touches the disk, and the errors that
 * say an archive was refused (unsafe) or could not be read (corrupt).
 */

export class UnsafeArchiveError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UnsafeArchiveError'
  }
}

/** The bytes do not decompress or do not parse as tar: the archive is damaged. */
export class CorruptArchiveError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'CorruptArchiveError'
  }
}

export interface ExtractLimits {
  /** Sum of the entries' sizes; extraction stops past it (decompression bombs). */
  maxBytes: number
  maxEntries: number
}

export const defaultExtractLimits: ExtractLimits = { maxBytes: 16 * 1024 ** 3, maxEntries: 500_000 }

const allowedTypes = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink'])

/** Checks each entry against the archive's expected shape before tar may write it. */
export class EntryGuard {
  private bytes = 0
  private entries = 0
  private readonly symlinks = new Set<string>()

  constructor(
    private readonly roots: { folder: string; file: string },
    private readonly limits: ExtractLimits,
  ) {}

  /** Returns why the entry is refused, or undefined when it may be written. */
  check(entryPath: string, type: string, size: number, linkpath: string | undefined): string | undefined {
    const p = entryPath.replace(/\/+$/, '')
    if (!allowedTypes.has(type)) return `'${p}' is a ${type} entry; only files, folders and symlinks are allowed`
    if (p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.includes('\\')) return `'${p}' is an absolute path`
    const parts = p.split('/')
    if (parts.some((part) => part === '..' || part === '.' || part === ''))
      return `'${p}' has a '..', '.' or empty component`
    const [root] = parts
    if (root === this.roots.file) {
      if (parts.length !== 1 || (type !== 'File' && type !== 'OldFile')) return `'${p}' must be a plain file`
    } else if (root !== this.roots.folder) {
      return `'${p}' lies outside ${this.roots.folder}`
    }
    for (let i = 1; i < parts.length; i++) {
      if (this.symlinks.has(parts.slice(0, i).join('/')))
        return `'${p}' would be written through the symlink '${parts.slice(0, i).join('/')}'`
    }
    if (type === 'SymbolicLink') {
      if (!linkpath || linkpath.startsWith('/')) return `symlink '${p}' points to an absolute path`
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(p), linkpath))
      if (resolved !== root && !resolved.startsWith(`${root}/`))
        return `symlink '${p}' -> '${linkpath}' points outside ${root}`
      this.symlinks.add(p)
    }
    this.entries += 1
    this.bytes += size
    if (this.entries > this.limits.maxEntries) return `more than ${this.limits.maxEntries} entries`
    if (this.bytes > this.limits.maxBytes) return `more than ${this.limits.maxBytes} bytes once unpacked`
    return undefined
  }
}
