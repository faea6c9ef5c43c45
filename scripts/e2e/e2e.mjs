#!/usr/bin/env node
// The end-to-end run's logic, one subcommand per workflow step of .github/workflows/e2e-macos.yml. On a macOS
// runner it drives MinIO, the real Scipio (installed by the action), Xcode and /usr/bin/aa; the tests
// (__tests__/e2e-workflow.test.ts) run the very same workflow steps on Linux with s3rver and the doubles.
// The workflow holds no logic of its own: it calls these subcommands around its `uses: ./` steps.
//
//   preflight                          SCIPIO_CHECKSUM must be set; E2E_XCODE=16.2 selects /Applications/Xcode_16.2.app
//                                      (DEVELOPER_DIR for the next steps); prints Xcode, clang and aa
//   store start | store stop           an S3 API on 127.0.0.1 (E2E_STORE=minio, the default, or s3rver); endpoint,
//                                      bucket and fresh credentials go to GITHUB_ENV as E2E_*
//   workspace NAME                     copies e2e/Dependencies to a fresh folder: E2E_WS_<NAME> in GITHUB_ENV, output `dir`
//   bump DIR                           moves the bumped pin (e2e/expected.json) in DIR's Package.swift and Package.resolved
//   check PHASE --dir DIR [--reference DIR] [--prefix P]
//                                      asserts what the action did (E2E_OUTPUTS: its outputs as JSON) for
//                                      PHASE: producer, consumer, bumped, adopted or adopted-consumer
//   aar-readback --dir DIR --prefix P  every .aar the action stored is read back by `aa extract`, identical
//   swift-store --dir DIR --prefix P   stores each framework as scipio-s3-storage does (aa archive, PUT, no index)
//
// Work files live in E2E_DIR (default: $RUNNER_TEMP/scipio-s3-cache-e2e).
import { execFileSync, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = path.resolve(import.meta.dirname, '../..')
export const packageSource = path.join(root, 'e2e/Dependencies')
export const expected = JSON.parse(fs.readFileSync(path.join(root, 'e2e/expected.json'), 'utf8'))
export const bucket = 'scipio-e2e'

/** scipio-s3-storage's field set and aa(1) argument lists (the tests check them against src/interop/apple-archive.ts). */
export const scipioS3StorageFields = 'typ,pat,lnk,dev,dat,uid,gid,mod,flg,mtm,btm,ctm'
export const aaArchiveArgs = (frameworkDir, archiveFile) => [
  'archive',
  '-d',
  frameworkDir,
  '-o',
  archiveFile,
  '-a',
  'lzfse',
  '-b',
  '1m',
  '-exclude-field',
  'all',
  '-include-field',
  scipioS3StorageFields,
]
export const aaExtractArgs = (frameworkDir, archiveFile) => [
  'extract',
  '-d',
  frameworkDir,
  '-i',
  archiveFile,
  '-ignore-eperm',
]

class Failure extends Error {}
const fail = (message) => {
  throw new Failure(message)
}

const workDir = () => process.env.E2E_DIR || path.join(process.env.RUNNER_TEMP || os.tmpdir(), 'scipio-s3-cache-e2e')

function setOutput(name, value) {
  if (process.env.GITHUB_OUTPUT) fs.appendFileSync(process.env.GITHUB_OUTPUT, `${name}=${value}\n`)
  console.log(`output ${name}=${value}`)
}

function exportEnv(name, value, secret = false) {
  if (secret) console.log(`::add-mask::${value}`)
  if (process.env.GITHUB_ENV) fs.appendFileSync(process.env.GITHUB_ENV, `${name}=${value}\n`)
  process.env[name] = value
  console.log(`env ${name}=${secret ? '***' : value}`)
}

function option(args, name, required = true) {
  const at = args.indexOf(name)
  if (at < 0 || at + 1 >= args.length) {
    if (required) fail(`${name} is missing`)
    return undefined
  }
  return args[at + 1]
}

/** The executable `name` on PATH, or undefined. */
function which(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const file = path.join(dir, name)
    try {
      fs.accessSync(file, fs.constants.X_OK)
      if (fs.statSync(file).isFile()) return file
    } catch {
      // not there, or not executable: the next folder on PATH
    }
  }
  return undefined
}

// ---------------------------------------------------------------- toolchain

function preflight() {
  if (!/^[0-9a-f]{64}$/.test(process.env.SCIPIO_CHECKSUM ?? '')) {
    fail(
      `SCIPIO_CHECKSUM is ${process.env.SCIPIO_CHECKSUM ? 'not a SHA-256 (64 hex digits)' : 'not set'}: set the repository variable SCIPIO_CHECKSUM to the "Artifact bundle checksum" of Scipio ${process.env.SCIPIO_VERSION ?? ''}'s release notes, so that the action refuses any other download`,
    )
  }
  const version = process.env.E2E_XCODE ?? ''
  if (version) {
    const applications = process.env.E2E_APPLICATIONS_DIR || '/Applications'
    const app = path.join(applications, `Xcode_${version}.app`)
    if (!fs.existsSync(app)) {
      const found = fs.existsSync(applications)
        ? fs.readdirSync(applications).filter((n) => /^Xcode.*\.app$/.test(n))
        : []
      fail(`${app} is not on this runner image (it has: ${found.join(', ') || 'no Xcode'}); change the matrix's xcode`)
    }
    exportEnv('DEVELOPER_DIR', path.join(app, 'Contents/Developer'))
  }
  console.log(execFileSync('xcrun', ['xcodebuild', '-version'], { encoding: 'utf8' }).trim())
  console.log(execFileSync('xcrun', ['clang', '--version'], { encoding: 'utf8' }).split('\n')[0])
  console.log(`aa: ${which('aa') ?? 'not on PATH'}`)
}

// ---------------------------------------------------------------- the store

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function waitFor(what, test, seconds) {
  const until = Date.now() + seconds * 1000
  for (;;) {
    const result = await test().catch(() => undefined)
    if (result) return result
    if (Date.now() > until) fail(`${what} did not come up within ${seconds} s`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

async function s3Client() {
  const { S3Client } = await import('@aws-sdk/client-s3')
  return new S3Client({
    region: 'us-east-1',
    endpoint: process.env.E2E_ENDPOINT ?? fail('E2E_ENDPOINT is not set: run `store start` first'),
    forcePathStyle: true,
    credentials: { accessKeyId: process.env.E2E_ACCESS_KEY_ID, secretAccessKey: process.env.E2E_SECRET_ACCESS_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
}

function minioBinary() {
  const onPath = which('minio')
  if (onPath) return onPath
  const env = { ...process.env, HOMEBREW_NO_AUTO_UPDATE: '1', HOMEBREW_NO_INSTALL_CLEANUP: '1' }
  for (const formula of ['minio', 'minio/stable/minio']) {
    console.log(`brew install ${formula}`)
    try {
      execFileSync('brew', ['install', formula], { stdio: 'inherit', env })
      const installed = which('minio')
      if (installed) return installed
    } catch {
      // this formula failed: try the next one
    }
  }
  return fail('could not install MinIO with Homebrew')
}

async function storeStart() {
  const kind = process.env.E2E_STORE || 'minio'
  const dir = path.join(workDir(), 'store')
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true })
  const accessKeyId = `E2E${randomBytes(8).toString('hex').toUpperCase()}`
  const secretAccessKey = randomBytes(20).toString('hex')
  const log = fs.openSync(path.join(dir, 'server.log'), 'a')
  let child
  let port
  if (kind === 's3rver') {
    const ready = path.join(dir, 'ready.json')
    const out = fs.openSync(ready, 'w')
    const args = [
      '--openssl-legacy-provider',
      path.join(root, 'scripts/s3-server.mjs'),
      '--ignore-stdin',
      '--dir',
      path.join(dir, 'data'),
      '--bucket',
      bucket,
      '--credentials',
      `${accessKeyId}:${secretAccessKey}`,
    ]
    child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', out, log] })
    port = await waitFor('s3rver', async () => JSON.parse(fs.readFileSync(ready, 'utf8').split('\n')[0]).port, 30)
  } else if (kind === 'minio') {
    const minio = minioBinary()
    port = await freePort()
    const consolePort = await freePort()
    const env = {
      ...process.env,
      MINIO_ROOT_USER: accessKeyId,
      MINIO_ROOT_PASSWORD: secretAccessKey,
      MINIO_BROWSER: 'off',
    }
    const args = [
      'server',
      path.join(dir, 'data'),
      '--address',
      `127.0.0.1:${port}`,
      '--console-address',
      `127.0.0.1:${consolePort}`,
    ]
    child = spawn(minio, args, { detached: true, stdio: ['ignore', log, log], env })
    await waitFor('MinIO', async () => (await fetch(`http://127.0.0.1:${port}/minio/health/live`)).ok, 60)
    console.log(execFileSync(minio, ['--version'], { encoding: 'utf8' }).split('\n')[0])
  } else fail(`E2E_STORE must be minio or s3rver (got ${kind})`)
  child.unref()
  fs.writeFileSync(path.join(dir, 'pid'), String(child.pid))
  exportEnv('E2E_ENDPOINT', `http://127.0.0.1:${port}`)
  exportEnv('E2E_BUCKET', bucket)
  exportEnv('E2E_ACCESS_KEY_ID', accessKeyId, true)
  exportEnv('E2E_SECRET_ACCESS_KEY', secretAccessKey, true)
  const { CreateBucketCommand, HeadBucketCommand } = await import('@aws-sdk/client-s3')
  const client = await s3Client()
  if (kind === 'minio') await client.send(new CreateBucketCommand({ Bucket: bucket }))
  await client.send(new HeadBucketCommand({ Bucket: bucket }))
  console.log(`${kind} serves bucket ${bucket} at http://127.0.0.1:${port} (pid ${child.pid})`)
}

function storeStop() {
  const file = path.join(workDir(), 'store/pid')
  if (!fs.existsSync(file)) return console.log('no store was started')
  const pid = Number(fs.readFileSync(file, 'utf8'))
  try {
    process.kill(pid, 'SIGTERM')
    console.log(`stopped the store (pid ${pid})`)
  } catch (error) {
    console.log(`the store (pid ${pid}) had already stopped: ${error.code ?? error}`)
  }
  fs.rmSync(file)
}

// ---------------------------------------------------------------- workspaces

function workspace(name) {
  if (!/^[\w-]+$/.test(name ?? '')) fail('workspace needs a NAME (letters, digits, - and _)')
  const dir = path.join(workDir(), 'workspaces', name)
  if (fs.existsSync(dir)) fail(`${dir} exists already: every run gets a fresh folder`)
  fs.cpSync(packageSource, dir, { recursive: true })
  exportEnv(`E2E_WS_${name.toUpperCase().replace(/-/g, '_')}`, dir)
  setOutput('dir', dir)
}

/** Moves the bumped package from its old pin to its new one, in Package.swift (exact:) and Package.resolved. */
export function bump(dir) {
  const { identity, from, to } = expected.bump
  const manifestFile = path.join(dir, 'Package.swift')
  const manifest = fs.readFileSync(manifestFile, 'utf8')
  const pattern = new RegExp(`(/${identity}\\.git", exact: ")${from.version.replace(/\./g, '\\.')}"`)
  if (!pattern.test(manifest)) fail(`Package.swift does not pin ${identity} at exactly ${from.version}`)
  fs.writeFileSync(manifestFile, manifest.replace(pattern, `$1${to.version}"`))
  const resolvedFile = path.join(dir, 'Package.resolved')
  const resolved = JSON.parse(fs.readFileSync(resolvedFile, 'utf8'))
  const pin = resolved.pins.find((p) => p.identity === identity)
  if (pin?.state.revision !== from.revision) fail(`Package.resolved does not pin ${identity} at ${from.revision}`)
  pin.state = { revision: to.revision, version: to.version }
  fs.writeFileSync(resolvedFile, JSON.stringify(resolved, null, 2).replace(/": /g, '" : ') + '\n')
  console.log(`${identity}: ${from.version} (${from.revision}) -> ${to.version} (${to.revision})`)
}

// ---------------------------------------------------------------- what a run left

const allTargets = () => Object.values(expected.targets).flat().sort()
const frameworkName = (target) => {
  const name = target.replace(/[^0-9A-Za-z]/g, '_')
  return /^[0-9]/.test(name) ? `_${name}` : name
}
const outputDir = (dir) => path.join(dir, 'XCFrameworks')
const versionFile = (dir, target) => path.join(outputDir(dir), `.${target}.version`)
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex')
/** Scipio's key of a target: the SHA-256 of its VersionFile's bytes. */
const scipioKey = (dir, target) => sha256(fs.readFileSync(versionFile(dir, target)))

/** Every entry below `dir` (not `dir` itself): type, permission bits, and content hash or link target. */
export function snapshotTree(dir) {
  const out = {}
  const walk = (rel) => {
    const abs = path.join(dir, rel)
    const stat = fs.lstatSync(abs)
    if (stat.isSymbolicLink()) out[rel] = `link -> ${fs.readlinkSync(abs)}`
    else if (stat.isDirectory()) {
      if (rel) out[rel] = `dir ${(stat.mode & 0o777).toString(8)}`
      for (const name of fs.readdirSync(abs).sort()) walk(path.join(rel, name))
    } else if (stat.isFile()) out[rel] = `file ${(stat.mode & 0o777).toString(8)} ${sha256(fs.readFileSync(abs))}`
    else out[rel] = 'other'
  }
  walk('')
  return out
}

/** Names the entries where two snapshots differ (at most 10), or returns []. */
function treeDifferences(a, b) {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
  return keys
    .filter((k) => a[k] !== b[k])
    .slice(0, 10)
    .map((k) => `${k}: ${a[k] ?? 'absent'} / ${b[k] ?? 'absent'}`)
}

class Checks {
  failures = []
  ok(condition, message) {
    console.log(`${condition ? 'ok  ' : 'FAIL'} ${message}`)
    if (!condition) this.failures.push(message)
  }
  equal(actual, wanted, message) {
    const a = JSON.stringify(actual)
    const w = JSON.stringify(wanted)
    this.ok(a === w, a === w ? `${message}: ${a}` : `${message}: got ${a}, wanted ${w}`)
  }
  done(phase) {
    if (this.failures.length)
      fail(`${phase}: ${this.failures.length} check(s) failed:\n  ${this.failures.join('\n  ')}`)
    console.log(`${phase}: every check passed`)
  }
}

function stepOutputs() {
  const text = process.env.E2E_OUTPUTS ?? fail("E2E_OUTPUTS is not set (the action step's outputs as JSON)")
  const outputs = JSON.parse(text)
  const list = (name) =>
    JSON.parse(outputs[name] ?? 'null')
      ?.slice()
      .sort() ?? null
  return {
    raw: outputs,
    cacheHit: outputs['cache-hit'],
    restored: list('restored'),
    built: list('built'),
    uploaded: list('uploaded'),
    missReasons: JSON.parse(outputs['miss-reasons'] ?? 'null'),
  }
}

/** Each expected framework and its VersionFile are in DIR's output folder. */
function checkFrameworks(checks, dir, targets = allTargets()) {
  for (const target of targets) {
    checks.ok(
      fs.existsSync(path.join(outputDir(dir), `${frameworkName(target)}.xcframework/Info.plist`)),
      `${target}: ${frameworkName(target)}.xcframework with its Info.plist`,
    )
    checks.ok(fs.existsSync(versionFile(dir, target)), `${target}: VersionFile .${target}.version`)
  }
}

/** DIR's frameworks and VersionFiles are byte for byte those of REFERENCE (mode bits and symlinks included). */
function checkSameAs(checks, dir, reference, targets) {
  for (const target of targets) {
    const name = `${frameworkName(target)}.xcframework`
    const differences = treeDifferences(
      snapshotTree(path.join(outputDir(dir), name)),
      snapshotTree(path.join(outputDir(reference), name)),
    )
    checks.ok(
      differences.length === 0,
      `${target}: the framework is identical to the producer's${differences.length ? `\n      ${differences.join('\n      ')}` : ''}`,
    )
    checks.ok(
      fs.readFileSync(versionFile(dir, target)).equals(fs.readFileSync(versionFile(reference, target))),
      `${target}: the VersionFile is the producer's`,
    )
  }
}

async function storedKeys(prefix) {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3')
  const client = await s3Client()
  const keys = []
  let token
  do {
    const page = await client.send(
      new ListObjectsV2Command({ Bucket: process.env.E2E_BUCKET, Prefix: `${prefix}/`, ContinuationToken: token }),
    )
    keys.push(...(page.Contents ?? []).map((o) => o.Key))
    token = page.NextContinuationToken
  } while (token)
  return keys.sort()
}

async function check(phase, args) {
  const dir = option(args, '--dir')
  const reference = option(args, '--reference', false)
  const prefix = option(args, '--prefix', false)
  const out = stepOutputs()
  const checks = new Checks()
  const all = allTargets()
  const bumped = expected.targets[expected.bump.identity].slice().sort()
  const others = all.filter((t) => !bumped.includes(t))
  switch (phase) {
    case 'producer': {
      checks.equal(out.built, all, 'Scipio built every target')
      checks.equal(out.uploaded, all, 'the producer uploaded every target')
      checks.equal(out.cacheHit, 'false', 'cache-hit')
      checkFrameworks(checks, dir)
      if (prefix) {
        const stored = await storedKeys(prefix)
        for (const target of all) {
          const key = scipioKey(dir, target)
          // Archives are named by their own SHA-256: <prefix>/<Target>/<scipio key>/<sha256>.code.tar.zst (Node without
          // zstd: .tar.gz).
          const archive = new RegExp(`^${prefix}/${target}/${key}/[0-9a-f]{64}\\.(code\\.tar\\.zst|tar\\.gz)$`)
          checks.ok(
            stored.some((k) => archive.test(k)),
            `${target}: its archive ${prefix}/${target}/${key}/<sha256>.tar.* is stored`,
          )
          checks.ok(
            stored.includes(`${prefix}/${target}/${key}.aar`),
            `${target}: the scipio-s3-storage object ${prefix}/${target}/${key}.aar is stored`,
          )
        }
      }
      break
    }
    case 'consumer':
    case 'adopted-consumer': {
      checks.equal(out.cacheHit, 'true', 'cache-hit')
      checks.equal(out.restored, all, 'every target was restored')
      checks.equal(out.built, [], 'nothing was built')
      checks.equal(out.missReasons, {}, 'miss-reasons')
      // Scipio (through SwiftPM) leaves .build in the package folder whenever it runs; cache-swiftpm is off here.
      checks.ok(!fs.existsSync(path.join(dir, '.build')), 'Scipio did not run (no .build in the package folder)')
      checkFrameworks(checks, dir)
      checkSameAs(checks, dir, reference ?? fail('--reference is missing'), all)
      break
    }
    case 'bumped': {
      const { identity, to } = expected.bump
      checks.equal(out.built, bumped, `exactly the bumped package's targets (${identity}) were built`)
      checks.equal(out.restored, others, 'every other target was restored')
      checks.equal(out.cacheHit, 'false', 'cache-hit')
      checks.equal(Object.keys(out.missReasons ?? {}), [identity], 'miss-reasons names the bumped package only')
      console.log(`     ${identity}: ${out.missReasons?.[identity]}`)
      checkFrameworks(checks, dir)
      for (const target of bumped) {
        const pin = JSON.parse(fs.readFileSync(versionFile(dir, target), 'utf8')).pin
        checks.equal(
          pin,
          { revision: to.revision, version: to.version },
          `${target}: its VersionFile records the new pin`,
        )
      }
      checkSameAs(checks, dir, reference ?? fail('--reference is missing'), others)
      break
    }
    case 'adopted': {
      // No index of ours under this prefix yet: Scipio builds everything, then the producer indexes the .aar
      // objects scipio-s3-storage stored instead of uploading archives of its own.
      checks.equal(out.built, all, 'Scipio built every target (nothing of ours was stored)')
      checks.equal(out.uploaded, [], 'nothing was uploaded: the .aar objects were adopted')
      const stored = await storedKeys(prefix ?? fail('--prefix is missing'))
      checks.equal(
        stored.filter((k) => /\.tar\.\w+$/.test(k)),
        [],
        `no archive of ours under ${prefix}/`,
      )
      for (const target of all)
        checks.ok(
          stored.includes(`${prefix}/${target}/${scipioKey(dir, target)}.aar`),
          `${target}: the adopted .aar is stored under this build's key`,
        )
      checks.ok(
        stored.some((k) => k.startsWith(`${prefix}/.scipio-s3-cache/packages/`)),
        'the producer wrote its indexes',
      )
      break
    }
    default:
      fail(`unknown phase ${phase}`)
  }
  checks.done(phase)
}

// ---------------------------------------------------------------- scipio-s3-storage interop

function aa() {
  return which('aa') ?? fail("Apple's aa is not on PATH")
}

async function aarReadback(args) {
  const dir = option(args, '--dir')
  const prefix = option(args, '--prefix')
  const { GetObjectCommand } = await import('@aws-sdk/client-s3')
  const client = await s3Client()
  const tmp = fs.mkdtempSync(path.join(workDir(), 'aar-readback-'))
  const checks = new Checks()
  for (const target of allTargets()) {
    const key = `${prefix}/${target}/${scipioKey(dir, target)}.aar`
    const object = await client.send(new GetObjectCommand({ Bucket: process.env.E2E_BUCKET, Key: key }))
    const bytes = Buffer.from(await object.Body.transformToByteArray())
    const file = path.join(tmp, `${target}.aar`)
    fs.writeFileSync(file, bytes)
    checks.ok(
      bytes.subarray(0, 3).toString('latin1') === 'pbz',
      `${key}: an Apple Archive (${bytes.subarray(0, 4).toString('latin1')} block container, ${bytes.length} bytes)`,
    )
    const extracted = path.join(tmp, target, `${frameworkName(target)}.xcframework`)
    fs.mkdirSync(extracted, { recursive: true })
    execFileSync(aa(), aaExtractArgs(extracted, file), { stdio: 'inherit' })
    const differences = treeDifferences(
      snapshotTree(extracted),
      snapshotTree(path.join(outputDir(dir), `${frameworkName(target)}.xcframework`)),
    )
    checks.ok(
      differences.length === 0,
      `${target}: aa extract gives back the producer's framework, identical${differences.length ? `\n      ${differences.join('\n      ')}` : ''}`,
    )
    checks.ok(
      !fs.readdirSync(extracted).some((n) => n.endsWith('.version')),
      `${target}: no VersionFile inside the .aar`,
    )
  }
  checks.done('aar-readback')
}

async function swiftStore(args) {
  const dir = option(args, '--dir')
  const prefix = option(args, '--prefix')
  const { PutObjectCommand } = await import('@aws-sdk/client-s3')
  const client = await s3Client()
  const tmp = fs.mkdtempSync(path.join(workDir(), 'swift-store-'))
  for (const target of allTargets()) {
    const key = `${prefix}/${target}/${scipioKey(dir, target)}.aar`
    const file = path.join(tmp, `${target}.aar`)
    execFileSync(aa(), aaArchiveArgs(path.join(outputDir(dir), `${frameworkName(target)}.xcframework`), file), {
      stdio: 'inherit',
    })
    // As scipio-s3-storage does: one PUT of the whole archive, authenticated-read without shouldPublishObject.
    await client.send(
      new PutObjectCommand({
        Bucket: process.env.E2E_BUCKET,
        Key: key,
        Body: fs.readFileSync(file),
        ACL: 'authenticated-read',
      }),
    )
    console.log(`stored ${key} (${fs.statSync(file).size} bytes)`)
  }
}

// ---------------------------------------------------------------- main

const commands = {
  preflight: () => preflight(),
  store: (args) =>
    args[0] === 'start' ? storeStart() : args[0] === 'stop' ? storeStop() : fail('store start | store stop'),
  workspace: (args) => workspace(args[0]),
  bump: (args) => bump(args[0] ?? fail('bump needs a DIR')),
  check: (args) => check(args[0], args.slice(1)),
  'aar-readback': (args) => aarReadback(args),
  'swift-store': (args) => swiftStore(args),
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [command, ...args] = process.argv.slice(2)
  try {
    await (
      commands[command] ??
      (() => fail(`unknown command '${command ?? ''}'; one of: ${Object.keys(commands).join(', ')}`))
    )(args)
  } catch (error) {
    console.error(`::error::e2e ${command}: ${error instanceof Failure ? error.message : (error.stack ?? error)}`)
    process.exit(1)
  }
}
