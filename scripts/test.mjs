#!/usr/bin/env node
// `npm test`: runs the test suite on each supported Node.js release in turn (22, then 24, the action's runtime),
// whatever the machine's own `node` is. A release other than the machine's comes from npm through
// scripts/install-node.sh (into .node22/, .node24/).
//
//   npm test                                  # the whole suite on Node 22 and on Node 24
//   npm test -- __tests__/docs.test.ts        # arguments after -- go to `vitest run`
//   npm test -- --node 24 __tests__/e2e.test.ts   # only on Node 24
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'

const root = path.resolve(import.meta.dirname, '..')
export const supported = ['22', '24']

function parse(argv) {
  const majors = []
  const rest = []
  for (let i = 0; i < argv.length; i++) {
    const m = /^--node(?:=(.*))?$/.exec(argv[i])
    if (m) majors.push(m[1] ?? argv[++i])
    else rest.push(argv[i])
  }
  for (const major of majors) {
    if (!supported.includes(major)) {
      console.error(`--node ${major}: the tests run on Node.js ${supported.join(' and ')}.`)
      process.exit(2)
    }
  }
  return { majors: majors.length ? majors : supported, vitestArgs: rest }
}

/**
 * Tools some tests run: zip and unzip (a Scipio artifact bundle), awscli, zstd, curl and GNU time (the benchmark
 * smoke test), and chromium (the insights page, headless).
 */
function missingTools() {
  const tools = [
    ['zip', 'zip'],
    ['unzip', 'unzip'],
    ['aws', 'awscli'],
    ['zstd', 'zstd'],
    ['curl', 'curl'],
    ['/usr/bin/time', 'time'],
    ['/usr/bin/chromium', 'chromium'],
  ]
  return tools
    .filter(([cmd]) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status !== 0)
    .map(([, pkg]) => pkg)
}

function nodeFor(major) {
  if (process.versions.node.split('.')[0] === major) return process.execPath
  const r = spawnSync('bash', [path.join(root, 'scripts/install-node.sh'), major], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  if (r.status !== 0) {
    console.error(`Could not install Node.js ${major} (scripts/install-node.sh ${major}).`)
    process.exit(1)
  }
  return path.join(root, `.node${major}`, 'bin', 'node')
}

const { majors, vitestArgs } = parse(process.argv.slice(2))
const missing = missingTools()
if (missing.length) {
  console.error(`The tests need these programs, which are not installed: ${missing.join(', ')}.`)
  console.error(`On Debian or Ubuntu: sudo apt-get install ${missing.join(' ')}   (CI's .ci/run does this.)`)
  process.exit(1)
}

const results = []
for (const major of majors) {
  const node = nodeFor(major)
  const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()
  console.log(`\n--- tests on Node.js ${version}\n`)
  const started = Date.now()
  const r = spawnSync(node, [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', ...vitestArgs], {
    cwd: root,
    stdio: 'inherit',
    // Child processes the tests start with a bare `node` get this release too.
    env: { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}` },
  })
  results.push({ version, ok: r.status === 0, seconds: Math.round((Date.now() - started) / 1000) })
}

console.log('\n--- summary')
for (const r of results)
  console.log(
    `Node.js ${r.version}: ${r.ok ? 'passed' : 'FAILED'} in ${Math.floor(r.seconds / 60)} min ${r.seconds % 60} s`,
  )
process.exit(results.every((r) => r.ok) ? 0 : 1)
