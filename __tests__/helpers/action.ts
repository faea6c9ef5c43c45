import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { root, testCredentials } from './s3-server.js'
import { doubleBin } from './workspace.js'

export interface ActionRun {
  code: number
  stdout: string
  stderr: string
  outputs: Record<string, string>
  summary: string
}

/** Reads the runner's GITHUB_OUTPUT file format (`name<<DELIMITER` ... `DELIMITER`). */
export function parseOutputFile(text: string): Record<string, string> {
  const outputs: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i]!)
    if (!m) continue
    const value: string[] = []
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]!)
    outputs[m[1]!] = value.join('\n')
  }
  return outputs
}

/** Runs `node dist/index.js` the way the runner does: inputs as INPUT_* variables, outputs and summary as files. */
export async function runAction(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  entry = 'dist/index.js',
): Promise<ActionRun> {
  return (await startAction(inputs, env, entry)).result
}

export interface StartedAction {
  child: ChildProcess
  /** Settles once the process has exited: its status, what it printed, its outputs and summary. */
  result: Promise<ActionRun>
}

/** Starts the action as runAction does, without waiting: for a test that signals it midway. */
export async function startAction(
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  entry = 'dist/index.js',
): Promise<StartedAction> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'action-run-'))
  const outputFile = path.join(dir, 'output')
  const summaryFile = path.join(dir, 'summary')
  await fs.writeFile(outputFile, '')
  await fs.writeFile(summaryFile, '')
  const inputEnv: Record<string, string> = {}
  for (const [k, v] of Object.entries(inputs)) inputEnv[`INPUT_${k.toUpperCase()}`] = v
  const childEnv: NodeJS.ProcessEnv = {
    PATH: `${doubleBin}${path.delimiter}${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? dir,
    TMPDIR: os.tmpdir(),
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_EVENT_NAME: 'push',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...inputEnv,
    ...env,
  }
  const child = spawn(process.execPath, [path.join(root, entry)], { env: childEnv, cwd: dir })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const result = (async () => {
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)))
    const outputs = parseOutputFile(await fs.readFile(outputFile, 'utf8'))
    const summary = await fs.readFile(summaryFile, 'utf8')
    await fs.rm(dir, { recursive: true, force: true })
    return { code, stdout, stderr, outputs, summary }
  })()
  return { child, result }
}

/** The inputs that point the action at a test S3 server with the test credentials, plus `extra`. */
export function s3TestInputs(
  endpoint: string,
  bucket: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    bucket,
    region: 'us-east-1',
    endpoint,
    'force-path-style': 'true',
    'access-key-id': testCredentials.accessKeyId,
    'secret-access-key': testCredentials.secretAccessKey,
    ...extra,
  }
}

/** A pull request's event payload, with its head in `headRepo` (another repository: a fork). */
export async function pullRequestEvent(number: number, headRepo = 'acme/app'): Promise<string> {
  const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'event-')), 'event.json')
  const payload = {
    number,
    pull_request: { number, head: { repo: { full_name: headRepo } }, base: { repo: { full_name: 'acme/app' } } },
  }
  await fs.writeFile(file, JSON.stringify(payload))
  return file
}

/** The environment of a pull request's job: the event, its merge ref, and the payload. */
export async function pullRequestEnv(number: number, headRepo?: string): Promise<Record<string, string>> {
  return {
    GITHUB_ACTIONS: 'true',
    GITHUB_EVENT_NAME: 'pull_request',
    GITHUB_REF: `refs/pull/${number}/merge`,
    GITHUB_EVENT_PATH: await pullRequestEvent(number, headRepo),
  }
}
