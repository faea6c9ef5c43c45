#!/usr/bin/env node
// Validates action.yml offline with @action-validator/cli. Its schema predates `using: node24`, so the file is
// checked as written for that one field and validated by the tool with node20 in its place.
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const root = path.resolve(import.meta.dirname, '..')
const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : ['action.yml', 'restore/action.yml', 'save/action.yml']
let failed = false
for (const file of files) {
  const text = fs.readFileSync(path.join(root, file), 'utf8')
  if (!/^\s+using: node24$/m.test(text)) {
    console.error(`${file}: runs.using must be node24`)
    failed = true
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'validate-'))
  const copy = path.join(dir, path.basename(file))
  fs.writeFileSync(copy, text.replace(/^(\s+using:) node24$/m, '$1 node20'))
  try {
    execFileSync(path.join(root, 'node_modules/.bin/action-validator'), [copy], { stdio: 'inherit' })
    console.log(`${file}: valid`)
  } catch {
    failed = true
  }
}
process.exit(failed ? 1 : 0)
