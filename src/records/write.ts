import { errorMessage, StorageError } from '../errors.js'
import type { Log } from '../log.js'
import type { RunReport } from '../report/report.js'
import type { RunSetup } from '../setup/setup.js'
import type { Storage } from '../storage/index.js'
import { buildRecord, recordName } from './build.js'
import { dayOf, recordKey } from './layout.js'
import { serializeRecord, type RecordVia } from './record.js'

/**
 * Writing a run's record: one PUT, started once the run's outcome is known and awaited before the process exits,
 * so it overlaps the end of the run (outputs, the job summary) and delays nothing before it. Records are optional:
 * a store that refuses the write (a read-only consumer's 403, a public URL that cannot write) or fails it costs one
 * debug line, never a warning and never the step.
 */

/** How long the one PUT may take, the SDK's own retries included: a record is never worth holding up a job. */
export const recordWriteTimeoutMs = 10_000

/** Writes `body` to `key`; never throws. Returns whether it was written. */
export async function writeRecord(storage: Storage, key: string, body: string, log: Log): Promise<boolean> {
  if (!storage.writable) {
    log.debug(`Run record not written: ${storage.description} is read-only (public-url).`)
    return false
  }
  try {
    await storage.put(key, Buffer.from(body), {
      contentType: 'application/json',
      publicRead: false,
      signal: AbortSignal.timeout(recordWriteTimeoutMs),
    })
    log.debug(`Run record written: ${key} (${Buffer.byteLength(body)} bytes).`)
    return true
  } catch (error) {
    const refused = error instanceof StorageError && error.status === 403
    log.debug(
      `Run record not written${refused ? ' (refused: these credentials may not write run records)' : ''}: ${errorMessage(error)}`,
    )
    return false
  }
}

export interface RecordOptions {
  now?: Date
  env?: NodeJS.ProcessEnv
}

/**
 * Starts writing the record of a run that has ended (`report` is final), unless `record-runs` is off. The promise
 * never rejects; the entry point awaits it after writing its outputs and summary.
 */
export function recordRun(
  setup: RunSetup,
  report: RunReport,
  via: RecordVia,
  log: Log,
  options: RecordOptions = {},
): Promise<boolean> {
  if (!setup.config.recordRuns) return Promise.resolve(false)
  try {
    const env = options.env ?? process.env
    const time = options.now ?? new Date()
    const record = buildRecord({
      via,
      report,
      toolchain: setup.toolchain,
      ...(setup.scipioInstall ? { scipioVersion: setup.scipioInstall.version } : {}),
      ...(setup.config.scope !== undefined ? { scope: setup.config.scope } : {}),
      time,
      env,
    })
    const key = recordKey(setup.config.prefix, dayOf(time), recordName(via, env))
    return writeRecord(setup.storage, key, serializeRecord(record), log)
  } catch (error) {
    log.debug(`Run record not written: ${errorMessage(error)}`)
    return Promise.resolve(false)
  }
}
