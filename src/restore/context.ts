import { type IndexEntry } from '../bucket/cache-index.js'
import { type KeyPlan } from '../keys/keys.js'
import type { Log } from '../log.js'
import { type RetryPolicy } from '../retry.js'
import { sharedLayout, type Layout } from '../bucket/layout.js'
import { type Storage } from '../storage/index.js'
import { StallError } from '../storage/plain-get.js'

/** What one restore is given, and the request helpers every part of it shares (answer deadlines, retry sleeps). */

export interface RestoreContext {
  storage: Storage
  plan: KeyPlan
  prefix: string
  outputDirectory: string
  concurrency: number
  log: Log
  retry?: RetryPolicy
  /** No bytes for this long aborts a download (and retries it). */
  stallTimeoutMs?: number
  /** Aborts when the cache phase's time limit is reached or the run is cancelled: what is left becomes a miss. */
  signal?: AbortSignal
  /** Report what is stored without downloading anything. */
  lookupOnly?: boolean
  /** A scope read before the shared cache (`plan`, `prefix`): the first hit per framework wins. */
  scope?: Layout
}

/** The layouts this restore reads, in order: the scope first, then the shared cache. */
export function layoutsOf(ctx: RestoreContext): Layout[] {
  const shared = sharedLayout(ctx.prefix, ctx.plan)
  return ctx.scope ? [ctx.scope, shared] : [shared]
}

/** The scope that holds `entry`'s archive, when it is the scope's own object. */
export function scopeOf(ctx: RestoreContext, entry: IndexEntry): { scope?: string } {
  return ctx.scope?.scope && entry.key.startsWith(`${ctx.scope.prefix}/`) ? { scope: ctx.scope.scope } : {}
}

/**
 * Runs a request that must answer (headers, or a whole small object) within `ms`; the abort it sends on
 * expiry is a retryable stall, unlike the cache-wide time limit in `outer`.
 */
export async function answerWithin<T>(
  ms: number,
  outer: AbortSignal | undefined,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const stall = new AbortController()
  const timer = setTimeout(() => stall.abort(), ms)
  try {
    return await fn(outer ? AbortSignal.any([outer, stall.signal]) : stall.signal)
  } catch (error) {
    if (stall.signal.aborted && !outer?.aborted) throw new StallError(`no answer for ${Math.round(ms / 1000)} s`)
    throw error
  } finally {
    clearTimeout(timer)
  }
}

/** The retry policy with its back-off cut short when `signal` aborts: a cancelled run does not sleep out a delay. */
export function interruptible(policy: RetryPolicy, signal: AbortSignal | undefined): RetryPolicy {
  if (!signal) return policy
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (signal.aborted) return resolve()
      const done = () => {
        signal.removeEventListener('abort', done)
        resolve()
      }
      signal.addEventListener('abort', done, { once: true })
      policy.sleep(ms).then(done, done)
    })
  return { ...policy, sleep }
}
