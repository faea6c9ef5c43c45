import { execFile } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'

/**
 * Running Apple's `aa` (Apple Archive, /usr/bin/aa on macOS 11 and later), with exactly the argument lists that
 * make and read the archives scipio-s3-storage stores: the *contents* of `<Name>.xcframework` (root entry with an
 * empty path), LZFSE in 1 MiB blocks, with the field set of its `ArchiveEncodeStream.writeDirectoryContents`
 * call. Only `aa` reads LZFSE-compressed Apple Archives, so where there is none (Linux, a CLI on another OS)
 * these objects cannot be restored.
 */

/** scipio-s3-storage's field key set (`TYP,PAT,LNK,DEV,DAT,UID,GID,MOD,FLG,MTM,BTM,CTM`), in aa(1)'s spelling. */
export const scipioS3StorageFields = 'typ,pat,lnk,dev,dat,uid,gid,mod,flg,mtm,btm,ctm'

/** `aa archive`: the contents of `frameworkDir` into `archiveFile`, LZFSE in 1 MiB blocks, only scipio-s3-storage's fields. */
export function aaArchiveArgs(frameworkDir: string, archiveFile: string): string[] {
  // aa(1) applies -exclude-field and -include-field in order: clear the default set, then name every field.
  return [
    'archive',
    '-d',
    frameworkDir,
    '-o',
    archiveFile,
    '-a',
    'lzfse',
    '-b',
    '1m',
    '-exclude-field',
    'all',
    '-include-field',
    scipioS3StorageFields,
  ]
}

/** `aa extract`: the archive's entries below `frameworkDir`; owners that cannot be set (not root) are skipped, as scipio-s3-storage does. */
export function aaExtractArgs(frameworkDir: string, archiveFile: string): string[] {
  return ['extract', '-d', frameworkDir, '-i', archiveFile, '-ignore-eperm']
}

export const aaMissing = "Apple's aa tool (Apple Archive, part of macOS 11 and later) is not on PATH"

const found = new Map<string, Promise<string | undefined>>()

/** The `aa` executable on PATH (on macOS, /usr/bin/aa), or undefined. Looked up once per PATH. */
export function findAa(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const searchPath = env.PATH ?? ''
  let result = found.get(searchPath)
  if (!result) {
    result = (async () => {
      for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
        const candidate = path.join(dir, 'aa')
        const ok = await fs.stat(candidate).then(
          async (s) =>
            s.isFile() &&
            (await fs.access(candidate, fs.constants.X_OK).then(
              () => true,
              () => false,
            )),
          () => false,
        )
        if (ok) return candidate
      }
      return undefined
    })()
    found.set(searchPath, result)
  }
  return result
}

/** aa exited with an error; the message carries the end of what it printed. */
export class AaError extends Error {
  override name = 'AaError'
}

/** Runs `aa` with `args`; rejects with AaError (its last error lines) when it fails. */
export function runAa(aa: string, args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(aa, args, { maxBuffer: 4 * 1024 * 1024, ...(signal ? { signal } : {}) }, (error, _stdout, stderr) => {
      if (!error) return resolve()
      if (signal?.aborted) return reject(error)
      const detail = String(stderr).trim().split('\n').slice(-3).join(' ').slice(0, 500)
      const code = (error as { code?: unknown }).code
      reject(
        new AaError(
          `aa ${args[0]} failed (${typeof code === 'number' ? `exit code ${code}` : String(code ?? error.message)})${detail ? `: ${detail}` : ''}`,
        ),
      )
    })
  })
}
