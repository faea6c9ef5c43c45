import * as core from '@actions/core'
import { annotationProperties, type Where } from './annotations.js'
import { redact } from './secrets.js'

/** The few log calls the stages make, redacted, so stages don't reach for @actions/core directly. */
export interface Log {
  info(message: string): void
  /** `where` makes the annotation name the input or point at the file at fault. */
  warning(message: string, where?: Where): void
  debug(message: string): void
  group<T>(name: string, fn: () => Promise<T>): Promise<T>
}

export const actionLog: Log = {
  info: (m) => core.info(redact(m)),
  warning: (m, where) => core.warning(redact(m), where ? annotationProperties(where) : {}),
  debug: (m) => core.debug(redact(m)),
  group: (name, fn) => core.group(name, fn),
}
