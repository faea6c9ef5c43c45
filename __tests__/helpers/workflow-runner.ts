import { spawn } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { parse } from 'yaml'
import { root } from './s3-server.js'

/**
 * Runs one job of a workflow file on this machine the way a runner would, for the few things our own
 * workflows use: `run:` steps in bash (-e), `uses: ./` (the action's `runs.main` under node, inputs as INPUT_*
 * with action.yml's defaults), GITHUB_ENV and GITHUB_OUTPUT files, `::add-mask::`, `if: always()` and
 * `if: failure()`, and `${{ }}` expressions that read env, vars, matrix and steps.<id>.outputs (also as
 * toJSON(steps.<id>.outputs)). Anything else throws, so a workflow cannot grow logic the tests do not run.
 * Steps that only prepare a runner (actions/checkout, actions/setup-node, `npm ci`) are listed in `skip` and
 * reported as skipped.
 */

interface WorkflowStep {
  name?: string
  id?: string
  if?: string
  uses?: string
  run?: string
  with?: Record<string, unknown>
  env?: Record<string, unknown>
  shell?: string
}

interface WorkflowJob {
  steps: WorkflowStep[]
  env?: Record<string, unknown>
}

interface Workflow {
  env?: Record<string, unknown>
  jobs: Record<string, WorkflowJob>
}

export interface StepRun {
  label: string
  id?: string
  status: 'success' | 'failure' | 'skipped'
  code?: number
  output: string
  outputs: Record<string, string>
}

export interface JobRun {
  steps: StepRun[]
  masks: string[]
  /** Everything every step printed. */
  log: string
}

export interface RunJobOptions {
  workflow: string
  job: string
  matrix?: Record<string, string>
  vars?: Record<string, string>
  /** The runner's environment (PATH, RUNNER_TEMP, ...). */
  env: Record<string, string>
  /** `uses:` actions (owner/name, no ref) and `run:` commands treated as already done. */
  skip: { uses: string[]; run: string[] }
}

/** Reads a GITHUB_ENV or GITHUB_OUTPUT file: `name=value` lines and `name<<DELIMITER` ... `DELIMITER` blocks. */
export function parseCommandFile(text: string): Record<string, string> {
  const values: Record<string, string> = {}
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line)
    if (heredoc) {
      const value: string[] = []
      for (i++; i < lines.length && lines[i] !== heredoc[2]; i++) value.push(lines[i]!)
      values[heredoc[1]!] = value.join('\n')
    } else if (line.includes('=')) {
      values[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1)
    }
  }
  return values
}

interface Context {
  env: Record<string, string>
  vars: Record<string, string>
  matrix: Record<string, string>
  steps: Record<string, Record<string, string>>
}

function evaluate(expression: string, context: Context): string {
  const e = expression.trim()
  const json = /^toJSON\(steps\.([\w-]+)\.outputs\)$/.exec(e)
  if (json) return JSON.stringify(context.steps[json[1]!] ?? {}, null, 2)
  const m = /^(env|vars|matrix)\.([\w-]+)$/.exec(e) ?? /^steps\.([\w-]+)\.outputs\.([\w-]+)$/.exec(e)
  if (!m) throw new Error(`the workflow runner does not evaluate \${{ ${e} }}`)
  if (e.startsWith('steps.')) return context.steps[m[1]!]?.[m[2]!] ?? ''
  return context[m[1] as 'env' | 'vars' | 'matrix'][m[2]!] ?? ''
}

/** A value from the workflow file with its `${{ }}` expressions replaced, as the runner passes it (a string). */
export function substitute(value: unknown, context: Context): string {
  return String(value).replace(/\$\{\{(.*?)\}\}/g, (_, expression: string) => evaluate(expression, context))
}

function substituteAll(values: Record<string, unknown> | undefined, context: Context): Record<string, string> {
  return Object.fromEntries(Object.entries(values ?? {}).map(([k, v]) => [k, substitute(v, context)]))
}

async function execute(
  command: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; output: string }> {
  const child = spawn(command, args, { cwd: root, env })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)))
  return { code, output }
}

/** The action of `uses: ./`: its main script and its inputs' defaults. */
async function localAction(): Promise<{ main: string; defaults: Record<string, string> }> {
  const doc = parse(await fs.readFile(path.join(root, 'action.yml'), 'utf8')) as {
    runs: { using: string; main: string; post?: string }
    inputs: Record<string, { default?: unknown }>
  }
  if (doc.runs.post) throw new Error('the workflow runner does not run post steps')
  const defaults = Object.fromEntries(
    Object.entries(doc.inputs)
      .filter(([, i]) => i.default !== undefined)
      .map(([name, i]) => [name, String(i.default)]),
  )
  return { main: path.join(root, doc.runs.main), defaults }
}

export async function runJob(options: RunJobOptions): Promise<JobRun> {
  const workflow = parse(await fs.readFile(path.join(root, options.workflow), 'utf8')) as Workflow
  const job = workflow.jobs[options.job]
  if (!job) throw new Error(`${options.workflow} has no job ${options.job}`)
  const files = await fs.mkdtemp(path.join(os.tmpdir(), 'workflow-runner-'))
  const context: Context = { env: {}, vars: options.vars ?? {}, matrix: options.matrix ?? {}, steps: {} }
  Object.assign(context.env, substituteAll(workflow.env, context))
  Object.assign(context.env, substituteAll(job.env, context))
  const action = await localAction()
  const run: JobRun = { steps: [], masks: [], log: '' }
  let failed = false

  for (const [index, step] of job.steps.entries()) {
    const label = step.name ?? step.uses ?? step.run ?? `step ${index + 1}`
    const condition = step.if?.trim()
    if (condition !== undefined && !['always()', 'failure()', 'success()'].includes(condition))
      throw new Error(`${label}: the workflow runner does not evaluate if: ${condition}`)
    const runs = condition === 'always()' || (condition === 'failure()' ? failed : !failed)
    const skipped =
      (step.uses && options.skip.uses.includes(step.uses.split('@')[0]!)) ||
      (step.run && options.skip.run.includes(step.run.trim()))
    if (!runs || skipped) {
      run.steps.push({ label, ...(step.id ? { id: step.id } : {}), status: 'skipped', output: '', outputs: {} })
      continue
    }
    if (step.shell) throw new Error(`${label}: the workflow runner runs only the default shell`)
    const envFile = path.join(files, `env-${index}`)
    const outputFile = path.join(files, `output-${index}`)
    await fs.writeFile(envFile, '')
    await fs.writeFile(outputFile, '')
    const stepEnv = { ...context.env, ...substituteAll(step.env, context) }
    const env: Record<string, string> = {
      ...options.env,
      ...stepEnv,
      GITHUB_ENV: envFile,
      GITHUB_OUTPUT: outputFile,
      GITHUB_WORKSPACE: root,
    }
    let result: { code: number; output: string }
    if (step.uses === './') {
      const inputs = { ...action.defaults, ...substituteAll(step.with, context) }
      for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.toUpperCase()}`] = value
      result = await execute(process.execPath, [action.main], env)
    } else if (step.uses) {
      throw new Error(
        `${label}: the workflow runner cannot run ${step.uses}; list it in skip.uses if it only prepares the runner`,
      )
    } else if (step.run !== undefined) {
      const script = path.join(files, `run-${index}.sh`)
      await fs.writeFile(script, substitute(step.run, context))
      result = await execute('bash', ['--noprofile', '--norc', '-e', script], env)
    } else throw new Error(`${label}: neither uses nor run`)

    for (const m of result.output.matchAll(/^::add-mask::(.+)$/gm)) run.masks.push(m[1]!)
    const outputs = parseCommandFile(await fs.readFile(outputFile, 'utf8'))
    if (step.id) context.steps[step.id] = outputs
    Object.assign(context.env, parseCommandFile(await fs.readFile(envFile, 'utf8')))
    const status = result.code === 0 ? 'success' : 'failure'
    if (status === 'failure') failed = true
    run.steps.push({
      label,
      ...(step.id ? { id: step.id } : {}),
      status,
      code: result.code,
      output: result.output,
      outputs,
    })
    run.log += `--- ${label}\n${result.output}`
  }
  await fs.rm(files, { recursive: true, force: true })
  return run
}
