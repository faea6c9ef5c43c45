import { CancelledError } from '../errors.js'
import { removeOwnedNow } from '../archive/owned-folders.js'

/**
 * Cancellation. GitHub cancels a step with SIGINT, then SIGTERM about 7.5 s later, then SIGKILL; a terminal's
 * Ctrl-C is SIGINT. The first signal aborts `cancelSignal`, which every stage's transfers listen to (with the
 * cache time limit): the restore and the save stop, remove their staging and temporary folders and return what
 * they did, and the entry point writes its outputs and summary and exits. Should that take longer than
 * `graceMs`, or a second signal come, the folders the run still owns are removed at once and the process exits.
 */

export const graceMs = 4_000

const controller = new AbortController()

/** Aborted, with a CancelledError as its reason, once the process is told to stop. */
export const cancelSignal: AbortSignal = controller.signal

/** The stages' signal: the cache time limit of `ms`, or a cancellation, whichever comes first. */
export function stageSignal(ms: number): AbortSignal {
  return AbortSignal.any([AbortSignal.timeout(ms), cancelSignal])
}

export function cancellation(): CancelledError | undefined {
  return cancelSignal.aborted ? (cancelSignal.reason as CancelledError) : undefined
}

/** `work`'s result, or undefined as soon as the run is cancelled (`work` is left to finish or be killed). */
export function untilCancelled<T>(work: Promise<T>): Promise<T | undefined> {
  if (cancelSignal.aborted) return Promise.resolve(undefined)
  const cancelled = new Promise<undefined>((resolve) =>
    cancelSignal.addEventListener('abort', () => resolve(undefined), { once: true }),
  )
  return Promise.race([work, cancelled])
}

const signals = ['SIGINT', 'SIGTERM'] as const

/**
 * Exits as soon as the log has reached its reader (a pipe may take writes asynchronously), after removing what the
 * run still owns, so a cancelled run leaves nothing behind.
 */
function exitNow(code: number): void {
  process.exitCode = code
  removeOwnedNow()
  let waiting = 2
  const done = () => {
    if (--waiting === 0) process.exit(code)
  }
  process.stdout.write('', done)
  process.stderr.write('', done)
  setTimeout(() => process.exit(code), 500).unref()
}

/**
 * Handles SIGINT and SIGTERM until `stop()` is called. `exitCode` is the status a cancelled run exits with when
 * it has to be cut short; a run that finishes in time sets its own.
 */
export function watchSignals(exitCode: (signal: NodeJS.Signals) => number): { stop(): void } {
  const onSignal = (signal: NodeJS.Signals) => {
    if (cancelSignal.aborted) return exitNow(exitCode(signal))
    controller.abort(new CancelledError(signal))
    setTimeout(() => exitNow(exitCode(signal)), graceMs).unref()
  }
  for (const signal of signals) process.on(signal, onSignal)
  return {
    stop: () => {
      for (const signal of signals) process.off(signal, onSignal)
    },
  }
}

/**
 * After a cancelled run has written what it did: ends the process now rather than waiting for whatever an aborted
 * transfer still holds open (a socket, an extraction thread winding down).
 */
export function exitIfCancelled(code: number): void {
  if (cancelSignal.aborted) exitNow(code)
}

/**
 * Runs an action's flow (the action or a sub-action) with SIGINT and SIGTERM watched: cancelled, the flow stops
 * where it is, and once it has written what it did the process exits with the step failed.
 */
export async function runCancellable(flow: () => Promise<void>): Promise<void> {
  const signals = watchSignals(() => 1)
  try {
    await flow()
  } finally {
    if (!cancellation()) signals.stop()
    exitIfCancelled(Number(process.exitCode ?? 1) || 1)
  }
}
