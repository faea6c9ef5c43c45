#!/usr/bin/env node
// `npm run local [-- --verbose]`: runs the bundled action (dist/index.js) on this machine the way a GitHub runner
// would, on Node.js 24 (the runtime action.yml declares; installed from npm into .node24/ when the machine's node
// is another release), against an S3 server it starts on loopback: a producer pass on the example dependencies
// package, then a consumer pass into a fresh output folder. The action's output is shown as a runner's log shows
// it (scripts/runner-log.mjs); the job summaries are printed as text and written as one HTML page; a comparison
// of the two passes ends the run. Uses `scipio` from PATH when there is one, else the Scipio test double.
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { createInterface } from 'node:readline'
import { columns, createRunnerLog, formatDuration, summariesToHtml, summaryToText } from './runner-log.mjs'
import { startS3ServerProcess } from './s3-server-process.mjs'

const args = process.argv.slice(2)
if (args.includes('--help') || args.includes('-h')) {
  console.log(
    'Usage: npm run local [-- --verbose]\n\n  --verbose   also show the debug lines (a runner shows them when ACTIONS_STEP_DEBUG is set)',
  )
  process.exit(0)
}
const unknown = args.filter((a) => !['--verbose', '-v'].includes(a))
if (unknown.length) {
  console.error(`Unknown argument: ${unknown[0]} (npm run local -- --help)`)
  process.exit(2)
}
const verbose = args.includes('--verbose') || args.includes('-v')
const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR
const bold = (text) => (color ? `\x1b[1m${text}\x1b[0m` : text)

const root = path.resolve(import.meta.dirname, '..')
const work = path.join(root, '.local-run')
const rel = (p) => path.relative(root, p) || '.'
const bucket = 'scipio-cache-local'
// Credentials of the throwaway local S3 server; the action masks them, and this script never prints them.
const credentials = { key: 'AKIALOCALRUN0000', secret: 'local-run-secret-0000000000' }
const secretInputs = new Set(['access-key-id', 'secret-access-key', 'session-token'])

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).stdout.trim() || undefined
}

/** The Node.js 24 to run the action on: this one if it is 24, else .node24/ (installed from npm if need be). */
function node24() {
  if (process.versions.node.split('.')[0] === '24') return { node: process.execPath, from: 'this machine' }
  const r = spawnSync('bash', [path.join(root, 'scripts/install-node.sh'), '24'], {
    cwd: root,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  if (r.status !== 0) {
    console.error('Could not install Node.js 24 from npm (bash scripts/install-node.sh 24), which the action runs on.')
    console.error('Install Node.js 24 yourself and run `node scripts/local-run.mjs` with it.')
    process.exit(1)
  }
  return { node: path.join(root, '.node24/bin/node'), from: '.node24/ (npm package node-<platform>-<arch>@24)' }
}

const { node, from } = node24()
const nodeVersion = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim()
const realScipio = onPath('scipio')
const doubleBin = path.join(root, 'scipio-test-double/bin')
const PATH = `${path.dirname(node)}${path.delimiter}${realScipio ? '' : `${doubleBin}${path.delimiter}`}${process.env.PATH}`

fs.rmSync(work, { recursive: true, force: true })
fs.mkdirSync(work, { recursive: true })
fs.cpSync(path.join(root, 'example/MyAppDependencies'), path.join(work, 'MyAppDependencies'), { recursive: true })

const server = await startS3ServerProcess({ dir: path.join(work, 's3'), bucket, ...credentials })
const { endpoint } = server

console.log(bold('Local run of the scipio-s3-cache action (dist/index.js), as a GitHub runner runs it'))
console.log(`  Node.js ${nodeVersion}, from ${from}: the runtime action.yml declares (node24)`)
console.log(
  `  Scipio: ${realScipio ? realScipio : 'the test double (scipio-test-double/), which writes stand-in frameworks; put a real scipio on PATH to use it'}`,
)
console.log(`  S3: a local server (s3rver) on ${endpoint}, bucket ${bucket}, files in ${rel(path.join(work, 's3'))}/`)
console.log(
  `  Workspace: ${rel(work)}/ (a copy of example/MyAppDependencies)${verbose ? '' : '; debug lines hidden (npm run local -- --verbose shows them)'}`,
)

function readOutputs(file) {
  const outputs = {}
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i])
    if (m) {
      const value = []
      while (++i < lines.length && lines[i] !== m[2]) value.push(lines[i])
      outputs[m[1]] = value.join('\n')
    }
  }
  return outputs
}

const list = (json) => {
  try {
    return JSON.parse(json ?? '[]')
  } catch {
    return []
  }
}

/** Bytes of the archives stored for these targets (the server keeps each object as <Target>/<key>/<sha256>.<ext>._S3rver_object). */
function archiveBytes(targets) {
  let bytes = 0
  const formats = new Set()
  for (const target of targets) {
    const dir = path.join(work, 's3', bucket, target)
    for (const f of fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true }) : []) {
      const m = /[0-9a-f]\.((?:code\.)?tar\.\w+)\._S3rver_object$/.exec(f)
      if (!m) continue
      bytes += fs.statSync(path.join(dir, f)).size
      formats.add(m[1])
    }
  }
  return { bytes, formats: [...formats] }
}

function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB']
  let v = bytes / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(1)} ${units[u]}`
}

async function pass(name, what, inputs) {
  console.log(`\n${bold(`━━ ${name}: ${what} ━━`)}`)
  const dir = path.join(work, name)
  fs.mkdirSync(dir, { recursive: true })
  const outputFile = path.join(dir, 'github-output')
  const summaryFile = path.join(dir, 'step-summary.md')
  fs.writeFileSync(outputFile, '')
  fs.writeFileSync(summaryFile, '')
  const env = {
    ...process.env,
    PATH,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    GITHUB_WORKSPACE: work,
    GITHUB_EVENT_NAME: 'push',
    AWS_EC2_METADATA_DISABLED: 'true',
  }
  delete env.ACTIONS_STEP_DEBUG
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v

  // The step header a runner prints: the action and its inputs, secrets as ***.
  console.log(bold('Run <owner>/scipio-s3-cache@v1'))
  console.log('  with:')
  for (const [k, v] of Object.entries(inputs)) console.log(`    ${k}: ${secretInputs.has(k) ? '***' : v}`)

  const log = createRunnerLog({ write: (l) => console.log(l), verbose, color })
  const started = Date.now()
  const child = spawn(node, [path.join(root, 'dist/index.js')], { env, cwd: work, stdio: ['ignore', 'pipe', 'pipe'] })
  // A runner merges the two streams into one log; commands are only read from standard output.
  createInterface({ input: child.stdout }).on('line', (l) => log.line(l))
  createInterface({ input: child.stderr }).on('line', (l) => log.line(l, { stderr: true }))
  const [code] = await Promise.all([
    new Promise((resolve) => child.on('close', resolve)),
    new Promise((resolve) => child.stdout.on('end', resolve)),
  ])
  const ms = Date.now() - started
  const { groups, annotations } = log.end()
  const outputs = readOutputs(outputFile)

  const summary = fs.readFileSync(summaryFile, 'utf8')
  console.log(`\n${code === 0 ? 'Step succeeded' : `Step failed (exit code ${code})`} in ${formatDuration(ms)}.`)
  const shown = Object.entries(outputs).filter(([k]) => !k.endsWith('-count'))
  if (shown.length) console.log(`Outputs:\n${shown.map(([k, v]) => `  ${k}: ${log.mask(v)}`).join('\n')}`)
  if (summary.trim()) {
    console.log(`\n${bold('Job summary')} (${rel(summaryFile)}):`)
    for (const l of log.mask(summaryToText(summary)).split('\n')) console.log(l ? `  ${l}` : '')
  }
  return { name, code, ms, groups, annotations, outputs, summary: log.mask(summary) }
}

const common = {
  bucket,
  region: 'us-east-1',
  endpoint,
  'force-path-style': 'true',
  'access-key-id': credentials.key,
  'secret-access-key': credentials.secret,
  'package-directory': 'MyAppDependencies',
}
const passes = []
try {
  passes.push(
    await pass('producer', 'restore what is stored, build the rest with Scipio, upload it', {
      ...common,
      mode: 'consumer,producer',
      'should-publish': 'true',
      'output-directory': 'producer/XCFrameworks',
    }),
  )
  passes.push(
    await pass('consumer', 'restore into a fresh output folder, build only what is missing', {
      ...common,
      mode: 'consumer',
      'output-directory': 'consumer/XCFrameworks',
    }),
  )
} finally {
  await server.stop()
}

// The comparison: what each pass did, and how long each phase (a log group) took.
const row = (label, f) => [label, ...passes.map(f)]
const counted = (p, output) => {
  const targets = list(p.outputs[output])
  if (!targets.length) return '0'
  const { bytes } = archiveBytes(targets)
  return `${targets.length} frameworks${output === 'built' ? '' : ` (${formatBytes(bytes)})`}`
}
const titles = [...new Set(passes.flatMap((p) => p.groups.map((g) => g.title)))]
const rows = [
  ['', ...passes.map((p) => p.name)],
  row('result', (p) => (p.code === 0 ? 'succeeded' : `failed (exit ${p.code})`)),
  row('cache hit', (p) => p.outputs['cache-hit'] ?? '?'),
  row('restored', (p) => counted(p, 'restored')),
  row('built', (p) => counted(p, 'built')),
  row('uploaded', (p) => counted(p, 'uploaded')),
  row(
    'warnings, errors',
    (p) =>
      `${p.annotations.filter((a) => a.kind === 'warning').length}, ${p.annotations.filter((a) => a.kind === 'error').length}`,
  ),
  row('step time', (p) => formatDuration(p.ms)),
  ...titles.map((t) =>
    row(`  ${t}`, (p) => {
      const g = p.groups.find((x) => x.title === t)
      return g?.ms !== undefined ? formatDuration(g.ms) : '-'
    }),
  ),
]
const formats = archiveBytes(
  fs.existsSync(path.join(work, 's3', bucket)) ? fs.readdirSync(path.join(work, 's3', bucket)) : [],
).formats
const html = path.join(work, 'job-summaries.html')
fs.writeFileSync(
  html,
  summariesToHtml(
    passes.map((p) => ({ title: `${p.name}: job summary`, markdown: p.summary })),
    'scipio-s3-cache local run',
  ),
)

console.log(`\n${bold('━━ Producer and consumer ━━')}`)
for (const l of columns(rows)) console.log(`  ${l}`)
console.log(`\n  Archives: ${formats.join(', ') || 'none'}, written on Node.js ${nodeVersion}.`)
console.log(
  `  Frameworks: ${rel(path.join(work, 'producer/XCFrameworks'))}/ (built by the producer), ${rel(path.join(work, 'consumer/XCFrameworks'))}/ (restored by the consumer).`,
)
console.log(`  Job summaries as a page to open in a browser: ${rel(html)}`)
process.exit(passes.every((p) => p.code === 0) ? 0 : 1)
