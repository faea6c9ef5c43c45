import * as core from '@actions/core'
import { redact } from './secrets.js'

/** The few log calls the stages make, redacted, so stages don't reach for @actions/core directly. */
export interface Log {
  info(message: string): void
  warning(message: string): void
  debug(message: string): void
  group<T>(name: string, fn: () => Promise<T>): Promise<T>
}

export const actionLog: Log = {
  info: (m) => core.info(redact(m)),
  warning: (m) => core.warning(redact(m)),
  debug: (m) => core.debug(redact(m)),
  group: (name, fn) => core.group(name, fn),
}
