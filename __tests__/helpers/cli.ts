import { spawn, type ChildProcess } from 'node:child_process'
import * as os from 'node:os'
import * as path from 'node:path'
import { doubleBin } from './workspace.js'
import { root, testCredentials } from './s3-server.js'

/** Credentials the way a developer has them: in the standard AWS environment variables, never as flags. */
export const awsEnv = {
  AWS_ACCESS_KEY_ID: testCredentials.accessKeyId,
  AWS_SECRET_ACCESS_KEY: testCredentials.secretAccessKey,
}

/** The command line's flags for a bucket behind the test store's endpoint, under `prefix`. */
export function storeFlags(bucket: string, endpoint: string, prefix: string): string[] {
  return ['--bucket', bucket, '--endpoint', endpoint, '--force-path-style', '--prefix', prefix]
}

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/** Runs the bundled command line (`node dist/cli/index.js`) with the Scipio and xcrun doubles on PATH. */
export async function runCli(args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<CliRun> {
  return startCli(args, options).result
}

/** Starts the command line as runCli does, without waiting: for a test that signals it midway. */
export function startCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): { child: ChildProcess; result: Promise<CliRun> } {
  const env: NodeJS.ProcessEnv = {
    PATH: `${doubleBin}${path.delimiter}${process.env.PATH ?? ''}`,
    HOME: options.cwd,
    TMPDIR: os.tmpdir(),
    AWS_EC2_METADATA_DISABLED: 'true',
    ...options.env,
  }
  const child = spawn(process.execPath, [path.join(root, 'dist/cli/index.js'), ...args], { env, cwd: options.cwd })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const result = new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1))).then((code) => ({
    code,
    stdout,
    stderr,
  }))
  return { child, result }
}
