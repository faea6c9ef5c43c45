#!/usr/bin/env node
// Rewrites the README's input and output tables from the action files, so the two never disagree
// (`npm run docs`; __tests__/docs.test.ts checks the result).
import * as fs from 'node:fs'
import * as path from 'node:path'
import { parse } from 'yaml'

const root = path.resolve(import.meta.dirname, '..')
export const documented = [
  { action: 'action.yml', inputs: '## Inputs', outputs: '## Outputs' },
  { action: 'restore/action.yml', inputs: '### Restore inputs', outputs: '### Restore outputs' },
  { action: 'save/action.yml', inputs: '### Save inputs', outputs: '### Save outputs' },
]

const cell = (text) => String(text).replace(/\|/g, '\\|')

function tables(file) {
  const doc = parse(fs.readFileSync(path.join(root, file), 'utf8'))
  const inputs = Object.entries(doc.inputs ?? {}).map(
    ([name, spec]) => `| \`${name}\` | ${spec.default !== undefined ? `\`${spec.default}\`` : ''} | ${cell(spec.description ?? '')} |`,
  )
  const outputs = Object.entries(doc.outputs ?? {}).map(([name, spec]) => `| \`${name}\` | ${cell(spec.description ?? '')} |`)
  return {
    inputs: ['| Input | Default | Description |', '| --- | --- | --- |', ...inputs],
    outputs: ['| Output | Description |', '| --- | --- |', ...outputs],
  }
}

/** Replaces the first table under `heading` (or inserts one right after the heading's paragraph). */
function replaceTable(lines, heading, table) {
  const start = lines.findIndex((l) => l.trim() === heading)
  if (start < 0) throw new Error(`README.md has no heading '${heading}'`)
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

const readmePath = path.join(root, 'README.md')
const lines = fs.readFileSync(readmePath, 'utf8').split('\n')
for (const { action, inputs, outputs } of documented) {
  const t = tables(action)
  replaceTable(lines, inputs, t.inputs)
  replaceTable(lines, outputs, t.outputs)
}
fs.writeFileSync(readmePath, lines.join('\n'))
console.log('README.md tables updated from', documented.map((d) => d.action).join(', '))
