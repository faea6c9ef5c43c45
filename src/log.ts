import * as core from '@actions/core'
import { annotationProperties, type Where } from './annotations.js'
import { redact } from './secrets.js'

/** One archive on its way to or from the store, as a stage reports it to whoever shows progress. */
export interface Transfer {
  /** Bytes moved so far by the current attempt. */
  moved(bytes: number): void
  done(bytes: number): void
  failed(): void
}

/** The few log calls the stages make, redacted, so stages don't reach for @actions/core directly. */
export interface Log {
  info(message: string): void
  /** `where` makes the annotation name the input or point at the file at fault. */
  warning(message: string, where?: Where): void
  debug(message: string): void
  group<T>(name: string, fn: () => Promise<T>): Promise<T>
  /**
   * Starts reporting one archive's download or upload (`total`: its size, when known), for a progress display
   * (the command line's); absent where nothing shows progress. The stages report; the store is not wrapped.
   */
  transfer?(direction: 'download' | 'upload', target: string, total?: number): Transfer
}

export const actionLog: Log = {
  info: (m) => core.info(redact(m)),
  warning: (m, where) => core.warning(redact(m), where ? annotationProperties(where) : {}),
  debug: (m) => core.debug(redact(m)),
  group: (name, fn) => core.group(name, fn),
}
