import { StorageError } from '../errors.js'

/**
 * What a refused read means, in one place. Amazon S3 answers 403 AccessDenied, not 404, for a key that does not
 * exist when the caller may not list the bucket (no `s3:ListBucket`; every anonymous reader of a public bucket). So a
 * 403 on one object read says "not stored, or not readable with these credentials", and nothing more: it is a miss
 * for that key (an expired archive included), and the run goes on. Only a run whose every read was refused, none
 * answered, concludes that it cannot read the cache (ReadRule). Missing credentials, a rejected key or signature, a
 * wrong region and a missing bucket stay fatal (storage/s3.ts); a 403 on a write or a listing names its permission.
 */

/** A read (GET or HEAD of one object) that the store refused with 403: the key is absent, or forbidden. */
export class RefusedReadError extends StorageError {
  constructor(
    /** The request, e.g. `GetObject s3://bucket/key`: never a credential. */
    readonly where: string,
    /** What would make the key readable if it does exist: the permission or the publishing setting. */
    readonly fix: string,
    /** Why a missing key answers 403 on this store rather than 404. */
    readonly hides: string,
  ) {
    super(`${where}: not stored, or not readable with these credentials (403 AccessDenied)`, false, 403, false)
    this.name = 'RefusedReadError'
  }
}

export function isRefused(error: unknown): error is RefusedReadError {
  return error instanceof RefusedReadError
}

/** A read's answer as the rule sees it: a value (undefined for a 404), or a refusal. */
export type ReadAnswer<T> = { refused: false; value: T | undefined } | { refused: true; error: RefusedReadError }

/**
 * Runs `read` and notes its outcome in `rule`: a refusal, or an answer (a value, undefined for a 404, or a body
 * that is not what it should be, which throws as before). A storage fault throws and is neither.
 */
export async function answerOf<T>(read: () => Promise<T | undefined>, rule?: ReadRule): Promise<ReadAnswer<T>> {
  try {
    const value = await read()
    rule?.answered()
    return { refused: false, value }
  } catch (error) {
    if (!isRefused(error)) {
      if (!(error instanceof StorageError)) rule?.answered()
      throw error
    }
    rule?.refused(error)
    return { refused: true, error }
  }
}

/** `read`'s answer, or undefined where the store refused it (absent or forbidden); noted in `rule` as answerOf does. */
export async function unlessRefused<T>(read: () => Promise<T | undefined>, rule?: ReadRule): Promise<T | undefined> {
  const answer = await answerOf(read, rule)
  return answer.refused ? undefined : answer.value
}

/**
 * The run's rule: its credentials cannot read the cache only when every read it tried (the completion markers
 * and package indexes) was refused and none answered. A 200 or a 404 is an answer; a fault (network, 5xx) is
 * neither, since it says nothing about permissions.
 */
export class ReadRule {
  private answers = 0
  private readonly refusals: RefusedReadError[] = []

  answered(): void {
    this.answers += 1
  }

  refused(error: RefusedReadError): void {
    this.refusals.push(error)
  }

  /** The fatal fault to report when every read was refused; undefined while any read answered (or none was tried). */
  verdict(): StorageError | undefined {
    const first = this.refusals[0]
    if (this.answers > 0 || !first) return undefined
    return new StorageError(
      `every read of the cache was refused (403 AccessDenied): all ${this.refusals.length} of its completion markers ` +
        `and package indexes, none answered (first: ${first.where}). Either these credentials cannot read it (${first.fix}), ` +
        `or nothing is stored for this build yet and ${first.hides}.`,
      false,
      403,
      true,
    )
  }
}
