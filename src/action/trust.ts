import * as fs from 'node:fs'
import { Inputs, TrustedEvents } from '../constants.js'
import type { Config } from '../inputs/inputs.js'
import { isRecord } from '../json.js'

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

/** Whether this pull request's head is in another repository (a fork): GitHub gives such runs no secrets. */
export function fromFork(env: NodeJS.ProcessEnv = process.env): boolean {
  if (!env.GITHUB_EVENT_PATH) return false
  try {
    const payload: unknown = JSON.parse(fs.readFileSync(env.GITHUB_EVENT_PATH, 'utf8'))
    const pr = isRecord(payload) && isRecord(payload.pull_request) ? payload.pull_request : undefined
    const repo = (side: unknown) =>
      isRecord(side) && isRecord(side.repo) && typeof side.repo.full_name === 'string' ? side.repo.full_name : ''
    return pr !== undefined && repo(pr.head) !== '' && repo(pr.head) !== repo(pr.base)
  } catch {
    return false
  }
}

/**
 * Why this run must not upload, or undefined when it may. A scoped run writes only into its scope, which no
 * other pull request and none of main's jobs read (and which its role alone may write: docs/storage.md), so it
 * needs no `allow-untrusted-upload`; a fork's run gets no secrets, so it uploads nothing, as before.
 */
export function uploadRefusal(
  config: Pick<Config, 'scope' | 'allowUntrustedUpload'>,
  env: NodeJS.ProcessEnv = process.env,
): { message: string; expected: boolean } | undefined {
  if (config.scope !== undefined) {
    if (!fromFork(env)) return undefined
    return {
      message: `Not uploading to scope '${config.scope}': this pull request comes from a fork, whose runs get no secrets. Reading only.`,
      expected: true,
    }
  }
  const untrusted = untrustedEvent(env)
  if (!untrusted || config.allowUntrustedUpload) return undefined
  return { message: untrustedUploadWarning(untrusted), expected: false }
}
