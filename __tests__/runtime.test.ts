import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { minimumNodeMajor, unsupportedNode } from '../src/cli/runtime.js'
import { root } from './helpers/s3-server.js'

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  engines: { node: string }
  scripts: Record<string, string>
}

describe('supported Node.js releases', () => {
  it('the command line refuses releases before 22 and accepts 22 and later', () => {
    expect(minimumNodeMajor).toBe(22)
    expect(unsupportedNode('v20.20.2')).toBe('scipio-s3-cache needs Node.js 22 or later; this is v20.20.2.')
    expect(unsupportedNode('v18.0.0')).toMatch(/needs Node.js 22/)
    expect(unsupportedNode('v22.0.0')).toBeUndefined()
    expect(unsupportedNode('v24.21.0')).toBeUndefined()
    expect(unsupportedNode('v100.1.0')).toBeUndefined()
  })

  it('package.json engines says the same', () => {
    expect(pkg.engines.node).toBe(`>=${minimumNodeMajor}`)
  })

  it.each(['action.yml', 'restore/action.yml', 'save/action.yml'])('%s runs on node24', (file) => {
    const doc = parse(fs.readFileSync(path.join(root, file), 'utf8')) as { runs: { using: string } }
    expect(doc.runs.using).toBe('node24')
  })

  it('this suite runs on a supported release', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(minimumNodeMajor)
  })

  it("the README's set-up is two commands, and CI runs the README's test command", () => {
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
    const block = /## Set-up\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)![1]!
    const commands = block
      .split('\n')
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter(Boolean)
    expect(commands).toEqual(['npm ci && npm run local', 'npm test'])
    const ci = fs.readFileSync(path.join(root, '.ci/run'), 'utf8').split('\n')
    expect(ci).toContain(commands[1])
    expect(pkg.scripts.local).toBe('node scripts/local-run.mjs')
  })

  it('`npm test` runs the suite on Node 22 and 24, and CI runs `npm test`', () => {
    expect(pkg.scripts.test).toBe('node scripts/test.mjs')
    expect(fs.readFileSync(path.join(root, 'scripts/test.mjs'), 'utf8')).toContain(
      "export const supported = ['22', '24']",
    )
    const ci = fs.readFileSync(path.join(root, '.ci/run'), 'utf8')
    expect(ci.split('\n').filter((l) => /^npm test\b/.test(l))).toEqual(['npm test'])
  })
})
