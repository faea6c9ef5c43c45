import { type IndexEntry } from '../bucket/cache-index.js'
import { frameworkFolder } from '../keys/frameworks.js'
import { type PackagePlan } from '../keys/keys.js'
import type { Log } from '../log.js'

/** One restore job per framework folder, whichever indexes list it. */

export interface RestoreJob {
  pkg: PackagePlan
  entry: IndexEntry
}

/**
 * One job per framework folder, however many indexes list it: two jobs for one folder would race to place it
 * (and one's cleanup could remove what the other placed). Jobs are taken in Package.resolved order, so the
 * first package to list a framework keeps it; a second build of the same folder is left to Scipio.
 */
export class FrameworkClaims {
  private readonly byFolder = new Map<string, RestoreJob>()
  constructor(private readonly log: Log) {}

  /** The jobs of `jobs` whose folder no earlier job claimed. */
  take(jobs: RestoreJob[]): RestoreJob[] {
    const taken: RestoreJob[] = []
    for (const job of jobs) {
      const folder = frameworkFolder(job.entry.targetName)
      const first = this.byFolder.get(folder)
      if (!first) {
        this.byFolder.set(folder, job)
        taken.push(job)
      } else if (first.entry.targetName === job.entry.targetName && first.entry.scipioKey === job.entry.scipioKey)
        continue
      else
        this.log.warning(
          `${folder} is listed by the cache indexes of ${first.pkg.pin.identity} (${first.entry.targetName}, key ${first.entry.scipioKey.slice(0, 12)}) ` +
            `and ${job.pkg.pin.identity} (${job.entry.targetName}, key ${job.entry.scipioKey.slice(0, 12)}): restoring the first; Scipio rebuilds it if it is not the one this build needs.`,
        )
    }
    return taken
  }
}

export function onePerFramework(jobs: RestoreJob[], log: Log): RestoreJob[] {
  return new FrameworkClaims(log).take(jobs)
}
