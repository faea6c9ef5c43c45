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
  const cells = line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split(/(?<!\\)\|/)
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
export function stepsUsingAction(
  workflow: unknown,
  repoName = 'scipio-s3-cache',
): { step: Step; actionFile: string }[] {
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

/** The markdown with fenced code blocks blanked out (their lines kept, so line numbers stay right). */
function withoutFences(markdown: string): string[] {
  let fence = false
  return markdown.split('\n').map((line) => {
    if (/^\s*```/.test(line)) {
      fence = !fence
      return ''
    }
    return fence ? '' : line
  })
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as '-', repeats numbered. */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  for (const line of withoutFences(markdown)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (!m) continue
    const text = m[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link in a heading keeps its text
    const slug = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\p{Pc} -]/gu, '')
      .replace(/ /g, '-')
    const n = seen.get(slug) ?? 0
    seen.set(slug, n + 1)
    anchors.add(n === 0 ? slug : `${slug}-${n}`)
  }
  return anchors
}

export interface Link {
  target: string
  line: number
}

/** Inline links and images of a markdown text, outside code blocks and code spans. */
export function markdownLinks(markdown: string): Link[] {
  const links: Link[] = []
  for (const [i, line] of withoutFences(markdown).entries()) {
    const text = line.replace(/`[^`]*`/g, '')
    for (const m of text.matchAll(/\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      links.push({ target: m[1]!, line: i + 1 })
  }
  return links
}

/**
 * The relative links of `file` (a path under `root`) that lead nowhere: a missing file, or an `#anchor` that no
 * heading of the target page has. Links with a scheme (https:, mailto:) are not checked.
 */
export function brokenLinks(root: string, file: string, read = (p: string) => fs.readFileSync(p, 'utf8')): string[] {
  const broken: string[] = []
  const source = path.join(root, file)
  for (const { target, line } of markdownLinks(read(source))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue
    const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined]
    const resolved = pathPart ? path.resolve(path.dirname(source), decodeURIComponent(pathPart)) : source
    const where = `${file}:${line}: ${target}`
    if (!resolved.startsWith(root + path.sep) && resolved !== root) broken.push(`${where} (outside the repository)`)
    else if (!fs.existsSync(resolved)) broken.push(`${where} (no such file)`)
    else if (anchor !== undefined) {
      if (!resolved.endsWith('.md')) broken.push(`${where} (an anchor into a file that is not markdown)`)
      else if (!headingAnchors(read(resolved)).has(anchor)) broken.push(`${where} (no heading with that anchor)`)
    }
  }
  return broken
}

export interface JsonBlock {
  text: string
  /** The line of the opening fence, from 1. */
  line: number
  /** The `<!-- kind: name -->` comment on the line right before the fence, when there is one. */
  marker?: { kind: string; name: string }
}

/** The JSON code blocks of a markdown document, each with the comment that names it. */
export function jsonBlocks(markdown: string): JsonBlock[] {
  const lines = markdown.split('\n')
  const blocks: JsonBlock[] = []
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```json') continue
    const end = lines.findIndex((l, j) => j > i && l.trim() === '```')
    const marker = /^<!--\s*([\w-]+):\s*([\w-]+)\s*-->$/.exec(lines[i - 1]?.trim() ?? '')
    blocks.push({
      text: lines.slice(i + 1, end).join('\n'),
      line: i + 1,
      ...(marker ? { marker: { kind: marker[1]!, name: marker[2]! } } : {}),
    })
    i = end
  }
  return blocks
}
