import * as actionsCache from '@actions/cache'
import { errorMessage } from '../errors.js'
import type { Log } from '../log.js'

/**
 * GitHub's Actions cache (what actions/cache uses), behind the two calls this action needs. It is an
 * optimisation only: every fault is a warning and reads as a miss, never a failed step.
 */
export interface CacheService {
  /** False when the service is missing (outside GitHub Actions, or a runner that does not offer it). */
  available(): boolean
  /** The key that was restored (the primary key or a restore key's match), or undefined on a miss or fault. */
  restore(paths: string[], primaryKey: string, restoreKeys?: string[]): Promise<string | undefined>
  /** Whether the entry was saved. */
  save(paths: string[], key: string): Promise<boolean>
}

/** The service's address comes from the runner; outside GitHub Actions (a local run) it is absent by design. */
export function cacheServiceMissing(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (actionsCache.isFeatureAvailable()) return undefined
  const onRunner = env.GITHUB_ACTIONS === 'true'
  return onRunner
    ? "GitHub's cache service is not available to this step (ACTIONS_CACHE_URL / ACTIONS_RESULTS_URL unset)"
    : ''
}

/** @actions/cache, with every fault turned into a warning. Says once per run when the service is missing. */
export function actionsCacheService(log: Log): CacheService {
  let toldMissing = false
  const available = (): boolean => {
    const missing = cacheServiceMissing()
    if (missing === undefined) return true
    if (!toldMissing) {
      // On a runner this is a fault worth a warning; on a developer's machine it is expected.
      if (missing) log.warning(`${missing}: the Actions cache is not used in this run.`)
      else log.info('Not running on GitHub Actions: the Actions cache is not used in this run.')
      toldMissing = true
    }
    return false
  }
  return {
    available,
    async restore(paths, primaryKey, restoreKeys = []) {
      if (!available()) return undefined
      try {
        return await actionsCache.restoreCache(paths, primaryKey, restoreKeys)
      } catch (error) {
        log.warning(`Could not restore '${primaryKey}' from the Actions cache: ${errorMessage(error)}`)
        return undefined
      }
    },
    async save(paths, key) {
      if (!available()) return false
      try {
        // saveCache returns -1 when it did not save (it has already logged why, for example another job saved first).
        return (await actionsCache.saveCache(paths, key)) !== -1
      } catch (error) {
        log.warning(`Could not save '${key}' to the Actions cache: ${errorMessage(error)}`)
        return false
      }
    },
  }
}
