import { StorageError } from '../errors.js'
import type { Log } from '../log.js'
import { ReadRule } from '../storage/refusals.js'

/** The rules that decide when the cache is unusable for the rest of a restore (a configuration fault). */

/**
 * Shared by one restore: the first configuration error stops every further request, and so does finding that
 * every read of a marker or an index was refused (storage/refusals.ts); one refusal alone is a miss.
 */
export class Breaker {
  error: StorageError | undefined
  /** The restore's reads of completion markers and package indexes, answered or refused. */
  readonly reads = new ReadRule()

  trip(error: unknown, log: Log): boolean {
    if (!(error instanceof StorageError) || !error.fatal) return false
    if (!this.error) {
      this.error = error
      log.warning(`The cache is unavailable: ${error.message} Every framework not yet restored will be built.`)
    }
    return true
  }

  /** Once every marker and index read is in: trips when all of them were refused and none answered. */
  judgeReads(log: Log): void {
    const verdict = this.reads.verdict()
    if (verdict) this.trip(verdict, log)
  }
}
