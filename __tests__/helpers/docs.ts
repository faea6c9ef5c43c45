import * as fs from 'node:fs'
import * as path from 'node:path'
import { parse } from 'yaml'
import { root } from './s3-server.js'

export interface ActionInput {
  name: string
  description: string
  default?: string
}

export interface ActionOutput {
  name: string
  description: string
}

export interface ActionFile {
  inputs: ActionInput[]
  outputs: ActionOutput[]
}

/** An action.yml's inputs and outputs, in file order. Defaults read as strings, the way the runner passes them. */
export function readActionFile(file: string): ActionFile {
  const doc = parse(fs.readFileSync(path.resolve(root, file), 'utf8')) as {
    inputs?: Record<string, { description?: string; default?: unknown }>
    outputs?: Record<string, { description?: string }>
  }
  return {
    inputs: Object.entries(doc.inputs ?? {}).map(([name, spec]) => ({
      name,
      description: spec.description ?? '',
      ...(spec.default !== undefined ? { default: String(spec.default) } : {}),
    })),
    outputs: Object.entries(doc.outputs ?? {}).map(([name, spec]) => ({ name, description: spec.description ?? '' })),
  }
}

function splitRow(line: string): string[] {
  const cells = line.trim().replace(/^\|/, '').replace(/\|$/, '').split(/(?<!\\)\|/)
  return cells.map((c) => c.trim().replace(/\\\|/g, '|'))
}

/** Body rows of the first table under `heading` (an exact heading line), before the next heading. */
export function readmeTable(markdown: string, heading: string): string[][] {
  const lines = markdown.split('\n')
  const start = lines.findIndex((l) => l.trim() === heading)
  if (start < 0) throw new Error(`README has no heading '${heading}'`)
  const rows: string[][] = []
  let inTable = false
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,6}\s/.test(line)) break
    if (line.trim().startsWith('|')) {
      inTable = true
      rows.push(splitRow(line))
    } else if (inTable) break
  }
  if (rows.length < 2) throw new Error(`README has no table under '${heading}'`)
  return rows.slice(2) // header and separator
}

/** `name` from a cell written as `name` in backticks, else the cell as it is. */
export function code(cell: string): string {
  return /^`[^`]*`$/.test(cell) ? cell.slice(1, -1) : cell
}

/** The YAML code blocks of a markdown document. */
export function yamlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```ya?ml\n([\s\S]*?)```/g)].map((m) => m[1]!)
}

export interface Step {
  id?: string
  uses?: string
  with?: Record<string, unknown>
}

/**
 * Every step of a workflow document that uses this action, with the action file it runs:
 * `<owner>/scipio-s3-cache@v1` → action.yml, `<owner>/scipio-s3-cache/restore@v1` → restore/action.yml.
 */
export function stepsUsingAction(workflow: unknown, repoName = 'scipio-s3-cache'): { step: Step; actionFile: string }[] {
  const jobs = (workflow as { jobs?: Record<string, { steps?: Step[] }> }).jobs ?? {}
  const found: { step: Step; actionFile: string }[] = []
  for (const step of Object.values(jobs).flatMap((job) => job.steps ?? [])) {
    if (typeof step.uses !== 'string') continue
    const [, repo, ...sub] = step.uses.split('@')[0]!.split('/')
    if (repo !== repoName) continue
    found.push({ step, actionFile: path.join(...sub, 'action.yml') })
  }
  return found
}
