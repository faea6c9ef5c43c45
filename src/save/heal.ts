import { errorMessage, StorageError } from '../errors.js'
import type { Log } from '../log.js'
import type { Storage } from '../storage/index.js'
import { afterRunsFolder } from '../bucket/layout.js'

/**
 * What vanished from the store (issue 23): objects deleted by hand or by a lifecycle rule while an index, a
 * completion marker or a pin record still counts on them. A producer lists its prefix once (one ListObjectsV2
 * request per 1,000 objects) and checks the entries it would otherwise trust against that listing. An object
 * the listing lacks is asked about once more with a HEAD before it counts as gone: it may have been stored
 * after its page of the listing was read (another producer at work), and only a 404 condemns it.
 *
 * A store that cannot list (a public URL) or a listing that fails (no s3:ListBucket, a fault) knows nothing:
 * every entry is then trusted as stored, as before, and nothing fails because of it.
 */

export interface SurveyContext {
  storage: Storage
  prefix: string
  log: Log
  signal?: AbortSignal
}

export class StoreSurvey {
  private readonly confirmed = new Map<string, Promise<boolean>>()
  private readonly gone = new Set<string>()

  private constructor(
    private readonly ctx: SurveyContext,
    private readonly listing: Promise<Set<string> | undefined>,
  ) {}

  /** Starts the listing of the prefix now; its answers wait for it. Never throws. */
  static start(ctx: SurveyContext): StoreSurvey {
    return new StoreSurvey(ctx, listKeys(ctx))
  }

  /** Whether the listing ran: without it nothing is ever found gone. */
  async knows(): Promise<boolean> {
    return (await this.listing) !== undefined
  }

  /**
   * Whether the object at `key` is gone: the listing lacks it and a HEAD answers 404. false when the listing
   * has it, when there is no listing, and when the HEAD fails otherwise (nothing is replaced on a doubt).
   */
  isGone(key: string): Promise<boolean> {
    let answer = this.confirmed.get(key)
    if (!answer) this.confirmed.set(key, (answer = this.confirm(key)))
    return answer
  }

  /** The keys found gone so far (a synchronous view of `isGone`'s answers, for merges). */
  foundGone(key: string): boolean {
    return this.gone.has(key)
  }

  /** Whether the listing lacks `key` (a document, read next anyway: no HEAD); false without a listing. */
  async unlisted(key: string): Promise<boolean> {
    const keys = await this.listing
    return keys !== undefined && !keys.has(key)
  }

  private async confirm(key: string): Promise<boolean> {
    if (!(await this.unlisted(key))) return false
    try {
      if (await this.ctx.storage.head(key)) return false
    } catch (error) {
      this.ctx.log.debug(`Could not check whether ${key} is still stored: ${errorMessage(error)}`)
      return false
    }
    this.ctx.log.info(`${key} is named by the cache but no longer stored (expired or deleted).`)
    this.gone.add(key)
    return true
  }
}

async function listKeys(ctx: SurveyContext): Promise<Set<string> | undefined> {
  if (!ctx.storage.writable || !ctx.storage.list) return undefined
  const folder = ctx.prefix ? `${ctx.prefix}/` : ''
  try {
    // Run records (records/layout.ts) sort first under the prefix and matter nothing here: the listing starts after them.
    const objects = await ctx.storage.list(folder, ctx.signal, afterRunsFolder(ctx.prefix))
    ctx.log.debug(`Listed ${objects.length} objects under '${folder}' to find what vanished.`)
    return new Set(objects.map((o) => o.key))
  } catch (error) {
    if (ctx.signal?.aborted) return undefined
    // The one warning of a producer without s3:ListBucket: everything else works without it (storage/refusals.ts).
    if (error instanceof StorageError && error.status === 403) {
      ctx.log.warning(
        `Could not list the cache prefix (${errorMessage(error)}): healing objects that expired or were deleted needs ` +
          's3:ListBucket, so this run cannot find them and trusts that every index entry is still stored. ' +
          'Nothing else needs it; the build is not affected.',
      )
      return undefined
    }
    ctx.log.warning(
      `Could not list the cache prefix to find archives and pin records that expired (${errorMessage(error)}). ` +
        'This run trusts that every index entry is still stored; the build is not affected.',
    )
    return undefined
  }
}
