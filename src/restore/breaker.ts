import { StorageError } from '../errors.js'
import type { Log } from '../log.js'

/** The rule that decides when the cache is unusable for the rest of a restore (a configuration fault). */

/** Shared by one restore: the first configuration error stops every further request. */
export class Breaker {
  error: StorageError | undefined
  trip(error: unknown, log: Log): boolean {
    if (!(error instanceof StorageError) || !error.fatal) return false
    if (!this.error) {
      this.error = error
      log.warning(`The cache is unavailable: ${error.message} Every framework not yet restored will be built.`)
    }
    return true
  }
}
