/** A problem the user fixes by changing an input; the message names the input and the fix. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(`Input '${input}': ${message}`)
    this.name = 'InputError'
  }
}

/** A problem with the project's files (Package.resolved, the output folder); fatal before any network call. */
export class ProjectError extends Error {
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(message)
    this.name = 'ProjectError'
  }
}

/** A storage fault; the message is written for the user and carries no credentials. */
export class StorageError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    /** The configuration is at fault (credentials, permissions, bucket, region): every other request would fail too. */
    readonly fatal = false,
  ) {
    super(message)
    this.name = 'StorageError'
  }
}

/**
 * A conditional write (`If-None-Match: *`, `If-Match: <etag>`) that the store refused because the object is not
 * as the writer last saw it: 412 (condition false), 409 (another conditional write to the key was in flight),
 * 404 (`If-Match` on a key that is gone) or 304 (older MinIO). Nothing was written. Routine when several
 * producers run at once: the writer reads again and merges, so it is neither retried blindly nor a cache problem.
 */
export class PreconditionFailedError extends StorageError {
  constructor(message: string, status: 304 | 404 | 409 | 412) {
    super(message, false, status, false)
    this.name = 'PreconditionFailedError'
  }
}

/** An object an index or manifest lists is not in the store (404): deleted by hand or by a lifecycle rule. */
export class MissingObjectError extends StorageError {
  constructor(readonly key: string) {
    super(`the archive ${key} listed in the index is missing`, false, 404)
    this.name = 'MissingObjectError'
  }
}

/** The cache phase ran out of its time limit (`cache-timeout-minutes`). */
export class CacheTimeoutError extends Error {
  constructor() {
    super('the cache time limit was reached')
    this.name = 'CacheTimeoutError'
  }
}

/** The run was cancelled (GitHub sends SIGINT, then SIGTERM, then kills): what is left is not done. */
export class CancelledError extends Error {
  constructor(readonly signalName: string) {
    super(`the run was cancelled (${signalName})`)
    this.name = 'CancelledError'
  }
}

/** The disk of the output folder (or of the temporary folder) is full; `message` names the folder and the bytes. */
export class DiskFullError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DiskFullError'
  }
}

/** ENOSPC (no space left) or EDQUOT (quota exceeded), however it was raised. */
export function isDiskFull(error: unknown): boolean {
  if (error instanceof DiskFullError) return true
  const code = (error as { code?: unknown } | undefined)?.code
  return code === 'ENOSPC' || code === 'EDQUOT'
}

/** Why work stopped once `signal` aborted: a cancellation, a full disk, or else the cache time limit. */
export function stopReason(signal: AbortSignal | undefined): string {
  const reason: unknown = signal?.reason
  if (reason instanceof CancelledError) return reason.message
  if (reason instanceof DiskFullError) return 'the disk is full'
  return 'the cache time limit was reached'
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
