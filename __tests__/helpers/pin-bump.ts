import * as path from 'node:path'
import { runAction, type ActionRun } from './action.js'
import type { RecordedRequest } from './proxy.js'
import { graphFixture, graphTargets, graphWorkspace, readDoubleLog } from './workspace.js'

/**
 * Issue 29's scenario: a producer with full rights stores five packages (nine frameworks), then a pull request
 * bumps swift-log, whose new key is not stored yet. On Amazon S3, a reader without s3:ListBucket then gets 403, not
 * 404, for the bumped package's index and for the new set's completion marker. Nothing depends on Logging
 * (__fixtures__/graphs/pin-bump.json), so the bumped set restores 8 frameworks and builds Logging alone.
 */

export const bumpedPackage = 'swift-log'
export const bumpedTarget = 'Logging'

export interface PinBump {
  /** Every framework of the set, sorted. */
  targets: string[]
  /** The set as main's producer stored it. */
  stored(): Promise<string>
  /** The same set with swift-log bumped: a fresh workspace each call. */
  bumped(): Promise<string>
}

export async function pinBump(): Promise<PinBump> {
  const graph = await graphFixture('pin-bump')
  return {
    targets: graphTargets(graph),
    stored: () => graphWorkspace(graph),
    bumped: () => graphWorkspace(graph, { [bumpedPackage]: '1.6.2' }),
  }
}

/** What a job did, as its outputs and the Scipio double's log tell. */
export interface Job {
  run: ActionRun
  /** Built by Scipio in this run, sorted. */
  built: string[]
  restored: string[]
  uploaded: string[]
  warnings: string[]
}

const listOutput = (run: ActionRun, name: string) => (JSON.parse(run.outputs[name] || '[]') as string[]).sort()

/** Runs the action on `ws` (`package-directory`) with `inputs` and `env`, and reads what it did. */
export async function actionJob(
  ws: string,
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  entry?: string,
): Promise<Job> {
  const log = path.join(ws, 'double.log')
  const run = await runAction({ ...inputs, 'package-directory': ws }, { SCIPIO_TEST_DOUBLE_LOG: log, ...env }, entry)
  const built = (await readDoubleLog(log))
    .filter((e) => e.event === 'built')
    .map((e) => e.target)
    .sort()
  return {
    run,
    built,
    restored: listOutput(run, 'restored'),
    uploaded: listOutput(run, 'uploaded'),
    warnings: run.stdout.split('\n').filter((l) => l.startsWith('::warning')),
  }
}

/** The requests among `requests` whose action the policies refused, as `METHOD path: action`. */
export function deniedRequests(requests: RecordedRequest[]): string[] {
  return requests.filter((r) => r.denied).map((r) => `${r.method} ${r.url.split('?')[0]}: ${r.denied}`)
}
