import { spawn } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { parse } from 'yaml'
import { root } from './s3-server.js'

/**
 * Runs one job of a workflow file on this machine the way a runner would, for the few things our own
 * workflows and documented patterns use: `run:` steps in bash (-e), `uses: ./` and `uses: ./<folder>` (this
 * repository's action files: `runs.main` under node, inputs as INPUT_* with the action file's defaults, whose
 * `${{ }}` are evaluated too), GITHUB_ENV and GITHUB_OUTPUT files, `::add-mask::`, `if:` with `always()`,
 * `failure()`, `success()` or comparisons (`==`, `!=`) of a context value with a quoted string, joined by `&&`
 * (without a status function a step runs only while every step before it succeeded, as on GitHub), and `${{ }}`
 * expressions that read env, vars, matrix, secrets, github.ref, job.status and steps.<id>.outputs (also as
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
  /** A workflow file under the repository, or (`text`) a workflow's YAML itself. */
  workflow: string | { text: string }
  job: string
  matrix?: Record<string, string>
  vars?: Record<string, string>
  secrets?: Record<string, string>
  /** `github.ref` (default refs/heads/main). */
  ref?: string
  /** The checked-out workspace: `run:` steps start there, and it is GITHUB_WORKSPACE (default: the repository). */
  workspace?: string
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
  secrets: Record<string, string>
  github: { ref: string }
  job: { status: 'success' | 'failure' }
  steps: Record<string, Record<string, string>>
}

function evaluate(expression: string, context: Context): string {
  const e = expression.trim()
  const json = /^toJSON\(steps\.([\w-]+)\.outputs\)$/.exec(e)
  if (json) return JSON.stringify(context.steps[json[1]!] ?? {}, null, 2)
  if (e === 'github.ref') return context.github.ref
  if (e === 'job.status') return context.job.status
  const m = /^(env|vars|matrix|secrets)\.([\w-]+)$/.exec(e) ?? /^steps\.([\w-]+)\.outputs\.([\w-]+)$/.exec(e)
  if (!m) throw new Error(`the workflow runner does not evaluate \${{ ${e} }}`)
  if (e.startsWith('steps.')) return context.steps[m[1]!]?.[m[2]!] ?? ''
  return context[m[1] as 'env' | 'vars' | 'matrix' | 'secrets'][m[2]!] ?? ''
}

/**
 * Whether a step with this `if:` runs, after steps that `failed` or not: a status function alone, or comparisons
 * of a context value with a quoted string joined by `&&` (which, as on GitHub, run only while nothing failed).
 */
export function condition(text: string | undefined, failed: boolean, context: Context): boolean {
  const e = (text ?? '')
    .trim()
    .replace(/^\$\{\{(.*)\}\}$/, '$1')
    .trim()
  if (e === '' || e === 'success()') return !failed
  if (e === 'always()') return true
  if (e === 'failure()') return failed
  const parts = e.split('&&').map((part) => {
    const m = /^([\w.-]+)\s*(==|!=)\s*'([^']*)'$/.exec(part.trim())
    if (!m) throw new Error(`the workflow runner does not evaluate if: ${e}`)
    const equal = evaluate(m[1]!, context) === m[3]
    return m[2] === '==' ? equal : !equal
  })
  return !failed && parts.every(Boolean)
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
  cwd: string,
): Promise<{ code: number; output: string }> {
  const child = spawn(command, args, { cwd, env })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)))
  return { code, output }
}

/** The action of `uses: ./<folder>` in this repository: its main script and its inputs' defaults (unevaluated). */
async function localAction(uses: string): Promise<{ main: string; defaults: Record<string, string> }> {
  const folder = path.join(root, uses)
  if (!folder.startsWith(root)) throw new Error(`${uses} is outside the repository`)
  const doc = parse(await fs.readFile(path.join(folder, 'action.yml'), 'utf8')) as {
    runs: { using: string; main: string; post?: string }
    inputs: Record<string, { default?: unknown }>
  }
  if (doc.runs.post) throw new Error('the workflow runner does not run post steps')
  const defaults = Object.fromEntries(
    Object.entries(doc.inputs)
      .filter(([, i]) => i.default !== undefined)
      .map(([name, i]) => [name, String(i.default)]),
  )
  return { main: path.join(folder, doc.runs.main), defaults }
}

export async function runJob(options: RunJobOptions): Promise<JobRun> {
  const text =
    typeof options.workflow === 'string'
      ? await fs.readFile(path.join(root, options.workflow), 'utf8')
      : options.workflow.text
  const workflow = parse(text) as Workflow
  const name = typeof options.workflow === 'string' ? options.workflow : 'the workflow'
  const job = workflow.jobs[options.job]
  if (!job) throw new Error(`${name} has no job ${options.job}`)
  const files = await fs.mkdtemp(path.join(os.tmpdir(), 'workflow-runner-'))
  const workspace = options.workspace ?? root
  const context: Context = {
    env: {},
    vars: options.vars ?? {},
    matrix: options.matrix ?? {},
    secrets: options.secrets ?? {},
    github: { ref: options.ref ?? 'refs/heads/main' },
    job: { status: 'success' },
    steps: {},
  }
  Object.assign(context.env, substituteAll(workflow.env, context))
  Object.assign(context.env, substituteAll(job.env, context))
  const run: JobRun = { steps: [], masks: [], log: '' }
  let failed = false

  for (const [index, step] of job.steps.entries()) {
    const label = step.name ?? step.uses ?? step.run ?? `step ${index + 1}`
    context.job.status = failed ? 'failure' : 'success'
    const runs = condition(step.if, failed, context)
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
      GITHUB_WORKSPACE: workspace,
    }
    let result: { code: number; output: string }
    if (step.uses?.startsWith('./')) {
      const action = await localAction(step.uses)
      const inputs = { ...substituteAll(action.defaults, context), ...substituteAll(step.with, context) }
      for (const [input, value] of Object.entries(inputs)) env[`INPUT_${input.toUpperCase()}`] = value
      result = await execute(process.execPath, [action.main], env, workspace)
    } else if (step.uses) {
      throw new Error(
        `${label}: the workflow runner cannot run ${step.uses}; list it in skip.uses if it only prepares the runner`,
      )
    } else if (step.run !== undefined) {
      const script = path.join(files, `run-${index}.sh`)
      await fs.writeFile(script, substitute(step.run, context))
      result = await execute('bash', ['--noprofile', '--norc', '-e', script], env, workspace)
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
