import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { findCycles, importsAgainstOrder, readImportGraph, stageOf, type ImportGraph } from './helpers/imports.js'
import { root } from './helpers/s3-server.js'

/**
 * The layout of src/ (docs/development.md draws it): one folder per stage of the flow, bottom up. A stage imports
 * only stages below it and src/'s shared files; the entry points (action/, cli/) import stages, never each other.
 */
const tiers = [
  ['inputs'],
  ['keys'],
  ['storage'],
  ['archive'],
  ['bucket'],
  ['interop'],
  ['scipio'],
  ['setup'],
  ['restore'],
  ['save'],
  ['explain'],
  ['flow'],
  ['report'],
  ['records'],
  ['insights'],
  ['action', 'cli'],
]
const graph = readImportGraph(root)

describe('the layout of src/', () => {
  it('has no import circle, type-only imports included', () => {
    expect(findCycles(graph)).toEqual([])
  })

  it('imports only downwards: each stage from the stages below it and the shared files', () => {
    expect(importsAgainstOrder(graph, tiers, ['src/index.ts'])).toEqual([])
  })

  it('keeps at most 8 files at the root of src/, and every folder is a stage in the order', () => {
    const rootFiles = [...graph.keys()].filter((f) => stageOf(f) === '')
    expect(rootFiles.length, rootFiles.join(', ')).toBeLessThanOrEqual(8)
    const folders = fs
      .readdirSync(path.join(root, 'src'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
    expect(folders.sort()).toEqual(tiers.flat().sort())
  })

  it('is the map docs/development.md draws: every stage folder, bottom up', () => {
    const doc = fs.readFileSync(path.join(root, 'docs/development.md'), 'utf8')
    const map = /<!-- stage-order: ([^>]+) -->/.exec(doc)
    expect(map?.[1]?.trim().split(/\s+/)).toEqual(tiers.map((t) => t.join('+')))
  })
})

describe('the checks themselves', () => {
  const g = (edges: Record<string, string[]>): ImportGraph => new Map(Object.entries(edges))

  it('finds a circle, type-only or through a dynamic import alike', () => {
    const circle = g({
      'src/a/x.ts': ['src/b/y.ts'],
      'src/b/y.ts': ['src/c/z.ts'],
      'src/c/z.ts': ['src/a/x.ts'],
      'src/d/w.ts': ['src/a/x.ts'],
    })
    expect(findCycles(circle)).toEqual([['src/a/x.ts', 'src/b/y.ts', 'src/c/z.ts', 'src/a/x.ts']])
    expect(findCycles(g({ 'src/a.ts': ['src/a.ts'] }))).toEqual([['src/a.ts', 'src/a.ts']])
    expect(findCycles(g({ 'src/a/x.ts': ['src/b/y.ts'], 'src/b/y.ts': [] }))).toEqual([])
  })

  it('reads every form of import from the sources', () => {
    const dir = fs.mkdtempSync(path.join(root, 'node_modules', '.imports-'))
    try {
      fs.mkdirSync(path.join(dir, 'src/a'), { recursive: true })
      const files: Record<string, string> = {
        'src/a/x.ts':
          "import type { Y } from '../b/y.js'\nexport { z } from './z.js'\nconst w = await import('../w.js')\nimport '../side.js'\n",
        'src/a/z.ts': '',
      }
      for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text)
      expect(readImportGraph(dir).get('src/a/x.ts')?.sort()).toEqual([
        'src/a/z.ts',
        'src/b/y.ts',
        'src/side.ts',
        'src/w.ts',
      ])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses an import upwards, sideways between entry points, or from a shared file into a stage', () => {
    const t = [['low'], ['high'], ['one', 'two']]
    const wrong = importsAgainstOrder(
      g({
        'src/low/a.ts': ['src/high/b.ts'],
        'src/one/c.ts': ['src/two/d.ts', 'src/low/a.ts', 'src/log.ts'],
        'src/log.ts': ['src/low/a.ts'],
        'src/index.ts': ['src/one/c.ts'],
      }),
      t,
      ['src/index.ts'],
    )
    expect(wrong).toHaveLength(3)
    expect(wrong.join('\n')).toMatch(/src\/low\/a.ts -> src\/high\/b.ts/)
    expect(wrong.join('\n')).toMatch(/src\/one\/c.ts -> src\/two\/d.ts/)
    expect(wrong.join('\n')).toMatch(/src\/log.ts -> src\/low\/a.ts/)
  })
})
