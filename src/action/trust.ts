import { Inputs, TrustedEvents } from '../constants.js'

/**
 * Whether this run may upload: code from a pull request (above all a fork's) must not be able to put
 * binaries in the cache that main's builds and every developer would then restore.
 */
export function untrustedEvent(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const event = env.GITHUB_EVENT_NAME
  if (!event || !env.GITHUB_ACTIONS) return undefined // not on GitHub Actions: a developer's or another CI's run
  return (TrustedEvents as readonly string[]).includes(event) ? undefined : event
}

export function untrustedUploadWarning(event: string): string {
  return (
    `Not uploading: this run was triggered by '${event}', whose code may come from a pull request or a fork, ` +
    `and uploading from it could poison the cache. Running as a consumer only. ` +
    `Set '${Inputs.AllowUntrustedUpload}: true' only if every workflow run for this event is trusted.`
  )
}
