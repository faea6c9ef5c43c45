#!/usr/bin/env node
// Rewrites the input and output tables of the README (the main action) and of docs/sub-actions.md (the restore
// and save actions) from the action files, so the two never disagree (`npm run docs`; __tests__/docs.test.ts
// checks the result).
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'

const root = path.resolve(import.meta.dirname, '..')
/** Each action file, the page that documents it, and the headings its tables sit under. */
export const documented = [
  { action: 'action.yml', file: 'README.md', inputs: '## Inputs', outputs: '## Outputs' },
  {
    action: 'restore/action.yml',
    file: 'docs/sub-actions.md',
    inputs: '## Restore inputs',
    outputs: '## Restore outputs',
  },
  { action: 'save/action.yml', file: 'docs/sub-actions.md', inputs: '## Save inputs', outputs: '## Save outputs' },
]

const cell = (text) => String(text).replace(/\|/g, '\\|')

/** The Markdown tables of an action file's inputs and outputs, as lists of lines. */
export function tables(actionYaml) {
  const doc = parse(actionYaml)
  const inputs = Object.entries(doc.inputs ?? {}).map(
    ([name, spec]) =>
      `| \`${name}\` | ${spec.default !== undefined ? `\`${spec.default}\`` : ''} | ${cell(spec.description ?? '')} |`,
  )
  const outputs = Object.entries(doc.outputs ?? {}).map(
    ([name, spec]) => `| \`${name}\` | ${cell(spec.description ?? '')} |`,
  )
  return {
    inputs: ['| Input | Default | Description |', '| --- | --- | --- |', ...inputs],
    outputs: ['| Output | Description |', '| --- | --- |', ...outputs],
  }
}

/** Replaces the first table under `heading` (or inserts one right after the heading's paragraph). */
function replaceTable(lines, heading, table, file) {
  const start = lines.findIndex((l) => l.trim() === heading)
  if (start < 0) throw new Error(`${file} has no heading '${heading}'`)
  let i = start + 1
  while (i < lines.length && !lines[i].trim().startsWith('|') && !/^#{1,6}\s/.test(lines[i])) i++
  if (i < lines.length && lines[i].trim().startsWith('|')) {
    let end = i
    while (end < lines.length && lines[end].trim().startsWith('|')) end++
    lines.splice(i, end - i, ...table)
  } else {
    lines.splice(start + 1, 0, '', ...table)
  }
}

/** A page's text with the tables of the given action files (`{ action, inputs, outputs }` entries) rewritten. */
export function updateTables(
  markdown,
  entries,
  file = 'the page',
  read = (action) => fs.readFileSync(path.join(root, action), 'utf8'),
) {
  const lines = markdown.split('\n')
  for (const { action, inputs, outputs } of entries) {
    const t = tables(read(action))
    replaceTable(lines, inputs, t.inputs, file)
    replaceTable(lines, outputs, t.outputs, file)
  }
  return lines.join('\n')
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = [...new Set(documented.map((d) => d.file))]
  for (const file of files) {
    const full = path.join(root, file)
    fs.writeFileSync(
      full,
      updateTables(
        fs.readFileSync(full, 'utf8'),
        documented.filter((d) => d.file === file),
        file,
      ),
    )
    console.log(
      `${file}: tables updated from ${documented
        .filter((d) => d.file === file)
        .map((d) => d.action)
        .join(', ')}`,
    )
  }
}
