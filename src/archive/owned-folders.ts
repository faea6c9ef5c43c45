import { createHash, randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'

/**
 * The folders a run writes besides the frameworks it places: staging folders in the output folder
 * (`.scipio-s3-cache-tmp-*`: partial downloads, a framework moved aside) and folders for archives being packed
 * or copied (`scipio-s3-cache-save-*`, `-adopt-`, `-aar-`) in RUNNER_TEMP or the system's temporary folder.
 *
 * Each name carries its host and process (`<host hash>-<pid>-`). A run that starts removes the ones a killed run
 * left (sweepLeftovers): only those of this host whose process is gone, so a run still going on the same folder
 * keeps its own. A name from another host, or from an earlier release (no owner in it), is removed once unchanged
 * for longer than the longest cache phase (`cache-timeout-minutes` is at most 360): its run has ended by then.
 */

const host = createHash('sha256').update(os.hostname()).digest('hex').slice(0, 8)
const ownerTag = () => `${host}-${process.pid}-`

export const stagingPrefix = '.scipio-s3-cache-tmp-'

/** A staging folder's name for this run, in the output folder. */
export function stagingFolderName(): string {
  return `${stagingPrefix}${ownerTag()}${randomBytes(4).toString('hex')}`
}

/** The prefix for `fs.mkdtemp` of this run's temporary folders of one kind. */
export function tempFolderPrefix(kind: 'save' | 'adopt' | 'aar'): string {
  return `scipio-s3-cache-${kind}-${ownerTag()}`
}

const ownedName = /^(?:\.scipio-s3-cache-tmp-|scipio-s3-cache-(?:save|adopt|aar)-)([0-9a-f]{8})-(\d+)-/
/** Names of earlier releases, which carry no owner. */
const unownedName = /^(?:\.scipio-s3-cache-tmp-[0-9a-f]{8}|scipio-s3-cache-(?:save|adopt|aar)-[A-Za-z0-9]{6})$/
/** The longest a cache phase lasts (cache-timeout-minutes: 360): a folder unchanged for longer has no live run. */
export const abandonedAfterMs = 360 * 60_000

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM' // someone else's: alive
  }
}

async function leftBehind(dir: string, name: string, now: number): Promise<boolean> {
  const owner = ownedName.exec(name)
  if (owner && owner[1] === host) return Number(owner[2]) !== process.pid && !processAlive(Number(owner[2]))
  if (!owner && !unownedName.test(name)) return false
  const stat = await fs.lstat(path.join(dir, name)).catch(() => undefined)
  return stat !== undefined && stat.isDirectory() && now - stat.mtimeMs > abandonedAfterMs
}

/** Removes from `dir` the folders of this module's names that killed runs left; returns the names removed. */
export async function sweepLeftovers(dir: string, now = Date.now()): Promise<string[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[])
  const removed: string[] = []
  for (const name of names.filter((n) => n.includes('scipio-s3-cache-')).sort()) {
    if (!(await leftBehind(dir, name, now))) continue
    await fs.rm(path.join(dir, name), { recursive: true, force: true })
    removed.push(name)
  }
  return removed
}

const owned = new Set<string>()

/** Records `dir` as this run's until `disown`: a cancelled run that must exit at once removes it with `removeOwnedNow`. */
export function own(dir: string): string {
  owned.add(dir)
  return dir
}

export function disown(dir: string): void {
  owned.delete(dir)
}

/** Removes every folder this run still owns, synchronously: the last thing a cancelled run does before it exits. */
export function removeOwnedNow(): void {
  for (const dir of owned) {
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 })
    } catch {
      // A write still under way can bring a path back; the next run's sweep removes what is left.
    }
  }
  owned.clear()
}
