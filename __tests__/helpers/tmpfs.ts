import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

/**
 * Small tmpfs mounts, for a disk that fills up. Mounting needs root (CI runs the tests as root); elsewhere the
 * tests that need one are skipped, and `tmpfsUnavailable` says why.
 */

function probe(): string | undefined {
  if (process.platform !== 'linux') return `tmpfs mounts need Linux (this is ${process.platform})`
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tmpfs-probe-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'pipe' })
    execFileSync('umount', [dir], { stdio: 'pipe' })
    return undefined
  } catch (error) {
    const detail = String((error as { stderr?: unknown }).stderr ?? (error as Error).message).trim()
    return `cannot mount a tmpfs here (${detail || 'mount failed'}); run the tests as root to include them`
  }
}

/** Why no tmpfs can be mounted here, or undefined when it can. */
export const tmpfsUnavailable: string | undefined = probe()

/** Mounts a tmpfs of `bytes` on `dir` (made if absent); the returned function unmounts it. */
export function mountTmpfs(dir: string, bytes: number): () => void {
  fs.mkdirSync(dir, { recursive: true })
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(bytes / 1024)}k`, 'tmpfs', dir], { stdio: 'pipe' })
  return () => execFileSync('umount', ['-l', dir], { stdio: 'pipe' })
}
