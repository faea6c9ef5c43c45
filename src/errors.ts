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
  ) {
    super(message)
    this.name = 'StorageError'
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
