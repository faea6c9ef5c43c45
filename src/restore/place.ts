import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { frameworkFolder, versionFileName } from '../keys/frameworks.js'

/** Moving a checked framework and its VersionFile into the output folder, never leaving a half-placed pair. */

/**
 * Removes a folder tar may still be writing into: after a failed extraction, writes already under way
 * (an open file, a folder being made) can finish after the failure and bring paths back, so remove until
 * the folder stays gone.
 */
export async function removeSettled(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    await fs.rm(dir, { recursive: true, force: true }).catch(() => undefined)
    await new Promise((resolve) => setTimeout(resolve, attempt === 0 ? 5 : 20))
    if (!(await exists(dir))) return
  }
}

export async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  )
}

/**
 * Moves an extracted framework and VersionFile into the output folder. The old VersionFile leaves first and
 * the new one arrives last, so no VersionFile ever stands beside a framework it doesn't describe; on any
 * failure the previous pair is put back.
 */
export async function placeFramework(
  staging: string,
  outputDirectory: string,
  targetName: string,
  trash: string,
): Promise<void> {
  const folder = frameworkFolder(targetName)
  const file = versionFileName(targetName)
  const moves: [from: string, to: string][] = []
  const move = async (from: string, to: string) => {
    await fs.rename(from, to)
    moves.push([from, to])
  }
  try {
    const oldFile = await exists(path.join(outputDirectory, file))
    const oldFolder = await exists(path.join(outputDirectory, folder))
    if (oldFile || oldFolder) await fs.mkdir(trash, { recursive: true })
    if (oldFile) await move(path.join(outputDirectory, file), path.join(trash, file))
    if (oldFolder) await move(path.join(outputDirectory, folder), path.join(trash, folder))
    await move(path.join(staging, folder), path.join(outputDirectory, folder))
    await move(path.join(staging, file), path.join(outputDirectory, file))
  } catch (error) {
    for (const [from, to] of moves.reverse()) await fs.rename(to, from).catch(() => undefined)
    throw error
  }
}
