import * as fs from 'node:fs'
import { Inputs, PullRequestScope } from '../constants.js'
import { InputError } from '../errors.js'
import { isRecord } from '../json.js'

/**
 * The `scope` input: empty for the shared cache; `pull-request` for this pull request's own scope, `pr-<number>`;
 * on the command line, also any name (`--scope NAME`, a developer's branch). A scoped run reads its scope first,
 * then the shared cache, and writes only into its scope (bucket/layout.ts). The action takes no other name: a
 * scoped run uploads without `allow-untrusted-upload`, so a named scope there would let a pull request write what a
 * trusted job with the same name then restores.
 */

const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/

export function pullRequestScopeName(number: number): string {
  return `pr-${number}`
}

/** The pull request's number, from `refs/pull/<N>/merge` (or `/head`), else from the event payload. */
export function pullRequestNumber(env: NodeJS.ProcessEnv): number | undefined {
  const fromRef = /^refs\/pull\/(\d+)\/(merge|head)$/.exec(env.GITHUB_REF ?? '')
  if (fromRef) return Number(fromRef[1])
  if (!env.GITHUB_EVENT_PATH) return undefined
  let payload: unknown
  try {
    payload = JSON.parse(fs.readFileSync(env.GITHUB_EVENT_PATH, 'utf8'))
  } catch {
    return undefined
  }
  const number = isRecord(payload) && isRecord(payload.pull_request) ? payload.pull_request.number : undefined
  return typeof number === 'number' && Number.isSafeInteger(number) && number > 0 ? number : undefined
}

function notAPullRequest(env: NodeJS.ProcessEnv): InputError {
  const what = env.GITHUB_EVENT_NAME
    ? `this run was triggered by '${env.GITHUB_EVENT_NAME}'${env.GITHUB_REF ? ` (${env.GITHUB_REF})` : ''}`
    : 'this is not a GitHub Actions run'
  return new InputError(
    Inputs.Scope,
    `'${PullRequestScope}' needs a pull request's run, but ${what} and no pull request number was found in GITHUB_REF or the event payload. ` +
      `Set it only in jobs that run on pull_request events; leave it empty for main's jobs.`,
  )
}

/** The scope's name, or undefined for the shared cache. */
export function readScope(
  read: ((name: string) => string) & { readonly commandLine?: true },
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const raw = read(Inputs.Scope)
  if (raw === '') return undefined
  if (raw.toLowerCase() === PullRequestScope) {
    const number = pullRequestNumber(env)
    if (number === undefined) throw notAPullRequest(env)
    return pullRequestScopeName(number)
  }
  if (!read.commandLine) {
    throw new InputError(
      Inputs.Scope,
      `'${raw}' is not a scope the action accepts: use '${PullRequestScope}' (this pull request's own scope, pr-<number>) ` +
        `or leave it empty for the shared cache. Named scopes are for the command line (--scope NAME).`,
    )
  }
  if (!namePattern.test(raw)) {
    throw new InputError(
      Inputs.Scope,
      `'${raw}' is not a scope name: use '${PullRequestScope}', or up to 100 letters, digits, '.', '_' and '-' ` +
        `starting with a letter or digit (for a branch 'feature/login', write 'feature-login').`,
    )
  }
  return raw
}
