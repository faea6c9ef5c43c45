#!/usr/bin/env node
// Runs the bundled action (dist/index.js) on this machine the way a runner would, against an S3 server it
// starts on loopback: a producer pass on the example dependencies package, then a consumer pass into a fresh
// output folder. Uses `scipio` from PATH when there is one, else the Scipio test double.
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { createInterface } from 'node:readline'

const root = path.resolve(import.meta.dirname, '..')
const work = path.join(root, '.local-run')
const bucket = 'scipio-cache-local'
const credentials = { key: 'AKIALOCALRUN0000', secret: 'local-run-secret-0000000000' }

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).stdout.trim() || undefined
}

const realScipio = onPath('scipio')
const doubleBin = path.join(root, 'scipio-test-double/bin')
const PATH = realScipio ? process.env.PATH : `${doubleBin}${path.delimiter}${process.env.PATH}`
console.log(realScipio ? `Using Scipio from PATH: ${realScipio}` : 'No scipio on PATH: using the Scipio test double (scipio-test-double/), which writes stand-in frameworks.')

fs.rmSync(work, { recursive: true, force: true })
fs.mkdirSync(work, { recursive: true })
const workspace = path.join(work, 'MyAppDependencies')
fs.cpSync(path.join(root, 'example/MyAppDependencies'), workspace, { recursive: true })

const server = spawn(process.execPath, ['--openssl-legacy-provider', path.join(root, 'scripts/s3-server.mjs'), '--dir', path.join(work, 's3'), '--bucket', bucket, '--credentials', `${credentials.key}:${credentials.secret}`], {
  stdio: ['pipe', 'pipe', 'inherit'],
})
const { port } = JSON.parse(await new Promise((resolve) => createInterface({ input: server.stdout }).once('line', resolve)))
const endpoint = `http://127.0.0.1:${port}`
console.log(`S3 server on ${endpoint}, bucket ${bucket}\n`)

function readOutputs(file) {
  const outputs = {}
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i])
    if (m) outputs[m[1]] = lines[++i]
  }
  return outputs
}

async function pass(name, inputs) {
  console.log(`==== ${name} ====`)
  const dir = path.join(work, name)
  fs.mkdirSync(dir, { recursive: true })
  const outputFile = path.join(dir, 'github-output')
  const summaryFile = path.join(dir, 'step-summary.md')
  fs.writeFileSync(outputFile, '')
  fs.writeFileSync(summaryFile, '')
  const env = { ...process.env, PATH, GITHUB_OUTPUT: outputFile, GITHUB_STEP_SUMMARY: summaryFile, GITHUB_EVENT_NAME: 'push', AWS_EC2_METADATA_DISABLED: 'true' }
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v
  const child = spawn(process.execPath, [path.join(root, 'dist/index.js')], { env, stdio: 'inherit', cwd: work })
  const code = await new Promise((resolve) => child.on('close', resolve))
  const outputs = readOutputs(outputFile)
  console.log(`\n${name}: exit ${code}; cache-hit ${outputs['cache-hit']}; restored ${outputs['restored']}; built ${outputs['built']}; uploaded ${outputs['uploaded']}`)
  console.log(`(job summary: ${path.relative(root, summaryFile)})\n`)
  return code
}

const common = { bucket, region: 'us-east-1', endpoint, 'force-path-style': 'true', 'access-key-id': credentials.key, 'secret-access-key': credentials.secret, 'package-directory': workspace }
let failed = 0
try {
  failed += (await pass('producer', { ...common, mode: 'consumer,producer', 'should-publish': 'true', 'output-directory': path.join(work, 'producer/XCFrameworks') })) ? 1 : 0
  failed += (await pass('consumer', { ...common, mode: 'consumer', 'output-directory': path.join(work, 'consumer/XCFrameworks') })) ? 1 : 0
} finally {
  server.stdin.end()
}
console.log(`Frameworks: ${path.relative(root, path.join(work, 'producer/XCFrameworks'))} (built and uploaded), ${path.relative(root, path.join(work, 'consumer/XCFrameworks'))} (restored).`)
process.exit(failed ? 1 : 0)
