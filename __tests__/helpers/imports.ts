import * as fs from 'node:fs'
import * as path from 'node:path'

/** A module graph: every source file (relative to the root, with `/`) and the files it imports. */
export type ImportGraph = Map<string, string[]>

// Static imports and re-exports (`import type` included), and dynamic `import('...')`: every way a module names another.
const specifiers =
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|^import\s*['"](\.[^'"]+)['"]/gm

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? sourceFiles(p) : e.name.endsWith('.ts') ? [p] : []
  })
}

/** The relative imports of every `.ts` file under `dir` (`./x.js` names `./x.ts`). */
export function readImportGraph(root: string, dir = 'src'): ImportGraph {
  const graph: ImportGraph = new Map()
  for (const file of sourceFiles(path.join(root, dir))) {
    const from = path.relative(root, file).split(path.sep).join('/')
    const text = fs.readFileSync(file, 'utf8')
    const targets = [...text.matchAll(specifiers)].map((m) => {
      const spec = (m[1] ?? m[2] ?? m[3])!
      return path.posix.normalize(path.posix.join(path.posix.dirname(from), spec)).replace(/\.js$/, '.ts')
    })
    graph.set(from, [...new Set(targets)])
  }
  return graph
}

/** Every elementary circle found by a depth-first walk, each as its files in order (first file repeated last). */
export function findCycles(graph: ImportGraph): string[][] {
  const cycles: string[][] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (file: string): void => {
    state.set(file, 'open')
    stack.push(file)
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next])
      else if (!state.has(next)) visit(next)
    }
    stack.pop()
    state.set(file, 'done')
  }
  for (const file of [...graph.keys()].sort()) if (!state.has(file)) visit(file)
  return cycles
}

/** The folder under src/ a file belongs to, or '' for src/'s own files. */
export function stageOf(file: string): string {
  const parts = file.split('/')
  return parts.length > 2 ? parts[1]! : ''
}

/**
 * Imports that break the order. `tiers` lists src/'s folders from the bottom up, a tier being one folder or
 * several that stand side by side. A file may import files of its own folder, of folders in lower tiers, and
 * src/'s shared files; src/'s shared files import only each other. `entries` may import anything (src/index.ts
 * runs the action).
 */
export function importsAgainstOrder(graph: ImportGraph, tiers: string[][], entries: string[] = []): string[] {
  const tierOf = (stage: string): number => tiers.findIndex((tier) => tier.includes(stage))
  const wrong: string[] = []
  for (const [from, targets] of graph) {
    if (entries.includes(from)) continue
    for (const to of targets) {
      const [a, b] = [stageOf(from), stageOf(to)]
      if (a === b || b === '') continue
      if (a === '') wrong.push(`${from} -> ${to}: src/'s shared files import no stage`)
      else if (tierOf(a) < 0 || tierOf(b) < 0) wrong.push(`${from} -> ${to}: ${tierOf(a) < 0 ? a : b}/ is in no tier`)
      else if (tierOf(b) >= tierOf(a))
        wrong.push(`${from} -> ${to}: ${a}/ may import only the stages below it, and ${b}/ is not`)
    }
  }
  return wrong
}
