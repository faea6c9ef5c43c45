// npm run bench -- --preset macho|macho-check [--reps N] [--restore-reps N] [--shaped-reps N] [--bandwidth 200mbit]
//                  [--baseline REF] [--concurrency 8] [--out DIR]
// Issue 31: real macOS binaries from pinned npm packages (bench/dataset.mjs, machoSets), one framework per binary,
// stored and restored by today's format (the action as built at --baseline, a commit before code.tar.zst) and by
// this checkout's dist/ (code.tar.zst as a producer stores it, then after `scipio-s3-cache repack`), in one run, in
// turn. Reports bytes, restore wall and CPU time, the producer's time and CPU, repack's cost, and the warm restore
// over a shaped link. See docs/benchmarks.md.
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { ensureMachoDataset } from './dataset.mjs'
import {
  bucket,
  credentials,
  median,
  MiB,
  readOutputs,
  root,
  startServer,
  storedObjects,
  versionOf,
  which,
} from './harness.mjs'
import { measure } from './measure.mjs'
import { startCountingProxy } from './proxy.mjs'
import { compare, snapshot } from './tree.mjs'

/** The last commit before code.tar.zst: its dist/ is "today's" action. */
const defaultBaseline = 'f6682e0'

function parseFlags(argv) {
  const flags = {
    preset: 'macho',
    reps: 3,
    // Warm restores of today's and the repacked archives, in turn, after the repetitions: restores are cheap next
    // to a repack, and their CPU is the figure that needs the most samples.
    restoreReps: 6,
    shapedReps: 1,
    bandwidth: '200mbit',
    baseline: defaultBaseline,
    concurrency: 8,
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () =>
      argv[++i] ??
      (() => {
        throw new Error(`${a} needs a value`)
      })()
    if (a === '--preset') flags.preset = value()
    else if (a === '--reps') flags.reps = Number(value())
    else if (a === '--restore-reps') flags.restoreReps = Number(value())
    else if (a === '--shaped-reps') flags.shapedReps = Number(value())
    else if (a === '--bandwidth') flags.bandwidth = value()
    else if (a === '--baseline') flags.baseline = value()
    else if (a === '--concurrency') flags.concurrency = Number(value())
    else if (a === '--out') flags.out = path.resolve(value())
    else throw new Error(`unknown flag '${a}' for --preset ${flags.preset}`)
  }
  if (!(flags.reps >= 1)) throw new Error('--reps must be at least 1')
  if (!/^\d+(\.\d+)?mbit$/i.test(flags.bandwidth))
    throw new Error(`--bandwidth: '${flags.bandwidth}' is not a rate like 200mbit`)
  flags.out ??= path.join(root, 'bench/results', flags.preset)
  return flags
}

/** The baseline's bundled action, from git (`git archive REF dist`), kept between runs. */
function baselineDist(ref) {
  const sha = execFileSync('git', ['rev-parse', '--short=12', `${ref}^{commit}`], {
    cwd: root,
    encoding: 'utf8',
  }).trim()
  const dir = path.join(root, 'bench/.data', `baseline-${sha}`)
  if (!fs.existsSync(path.join(dir, 'dist/index.js'))) {
    fs.mkdirSync(dir, { recursive: true })
    const tar = path.join(dir, 'dist.tar')
    execFileSync('git', ['archive', '--format=tar', '-o', tar, sha, 'dist'], { cwd: root })
    execFileSync('tar', ['-xf', tar, '-C', dir])
    fs.rmSync(tar)
  }
  return { sha, dist: path.join(dir, 'dist') }
}

const isArchive = (key) => /\.tar\.(zst|gz)$/.test(key)

async function main() {
  const flags = parseFlags(process.argv.slice(2))
  const node24 = which(path.join(root, '.node24/bin/node')) ?? process.execPath
  if (!fs.existsSync(path.join(root, 'dist/index.js')))
    throw new Error('dist/index.js is missing: run npm run bundle first')
  const baseline = baselineDist(flags.baseline)
  const data = ensureMachoDataset({
    dir: path.join(root, 'bench/.data', flags.preset),
    set: flags.preset,
    npmCache: path.join(root, 'bench/.data/npm'),
  })
  const expected = snapshot(data.frameworksDir)
  const work = path.join(root, 'bench/.work', String(process.pid))
  fs.rmSync(work, { recursive: true, force: true })
  fs.mkdirSync(work, { recursive: true })
  const s3Dir = path.join(work, 's3')
  const server = await startServer(s3Dir)
  const proxy = await startCountingProxy(server.port)
  const dists = { today: baseline.dist, new: path.join(root, 'dist') }
  const labels = {
    today: `today: tar.zst (${baseline.sha})`,
    stored: 'new: code.tar.zst as a producer stores it',
    repacked: 'new: code.tar.zst after repack',
  }

  const env = (mode, packageDir, outputDir, prefix) => ({
    PATH: `${path.join(root, 'scipio-test-double/bin')}${path.delimiter}${process.env.PATH}`,
    HOME: process.env.HOME ?? work,
    TMPDIR: os.tmpdir(),
    GITHUB_EVENT_NAME: 'push',
    AWS_EC2_METADATA_DISABLED: 'true',
    INPUT_BUCKET: bucket,
    INPUT_REGION: 'us-east-1',
    INPUT_ENDPOINT: proxy.endpoint,
    'INPUT_FORCE-PATH-STYLE': 'true',
    'INPUT_ACCESS-KEY-ID': credentials.key,
    'INPUT_SECRET-ACCESS-KEY': credentials.secret,
    INPUT_MODE: mode,
    INPUT_PREFIX: prefix,
    'INPUT_PACKAGE-DIRECTORY': packageDir,
    'INPUT_OUTPUT-DIRECTORY': outputDir,
    // The run record is one PUT after the restore (src/records/): no part of what the formats are compared on.
    'INPUT_RECORD-RUNS': 'false',
    'INPUT_SUPPORT-SIMULATORS': 'true', // as the data set's VersionFiles were written (bench/dataset.mjs)
    INPUT_CONCURRENCY: String(flags.concurrency),
  })
  const runAction = async (who, mode, outputDir, prefix) => {
    const files = path.join(work, 'io')
    fs.rmSync(files, { recursive: true, force: true })
    fs.mkdirSync(files)
    const e = {
      ...env(mode, data.packageDir, outputDir, prefix),
      GITHUB_OUTPUT: path.join(files, 'out'),
      GITHUB_STEP_SUMMARY: path.join(files, 'sum'),
    }
    fs.writeFileSync(e.GITHUB_OUTPUT, '')
    const run = await measure(node24, [path.join(dists[who], 'index.js')], { env: e })
    const outputs = readOutputs(e.GITHUB_OUTPUT)
    return {
      ...run,
      restored: JSON.parse(outputs.restored ?? '[]').length,
      uploaded: JSON.parse(outputs.uploaded ?? '[]').length,
    }
  }
  const runRepack = (prefix) =>
    measure(
      node24,
      [
        path.join(dists.new, 'cli/index.js'),
        'repack',
        '--bucket',
        bucket,
        '--region',
        'us-east-1',
        '--endpoint',
        proxy.endpoint,
        '--force-path-style',
        '--prefix',
        prefix,
        '--older-than',
        '0',
      ],
      {
        env: {
          ...process.env,
          AWS_ACCESS_KEY_ID: credentials.key,
          AWS_SECRET_ACCESS_KEY: credentials.secret,
          AWS_EC2_METADATA_DISABLED: 'true',
          TMPDIR: os.tmpdir(),
        },
      },
    )

  const rows = []
  const step = async (rep, scenario, format, link, fn) => {
    spawnSync('sync')
    proxy.reset()
    const result = await fn()
    const traffic = proxy.reset()
    const row = {
      rep,
      scenario,
      format,
      link,
      wallS: result.wallS,
      cpuS: result.cpuS,
      rssMB: result.rssMB,
      sent: traffic.up,
      received: traffic.down,
      ok: result.code === 0,
      ...result.extra,
    }
    if (!row.ok)
      row.error = (result.stderr || result.stdout)
        .split('\n')
        .filter((l) => /error|warning/i.test(l))
        .slice(0, 3)
        .join(' | ')
    rows.push(row)
    console.log(
      `  rep ${rep + 1} ${scenario.padEnd(13)} ${format.padEnd(9)} ${link.padEnd(9)} ${row.wallS.toFixed(2).padStart(7)} s  cpu ${row.cpuS?.toFixed(2)} s  rss ${row.rssMB?.toFixed(0)} MB  up ${(row.sent / MiB).toFixed(1)} MiB  down ${(row.received / MiB).toFixed(1)} MiB${row.identical === false ? '  TREE DIFFERS' : ''}${row.ok ? '' : `  FAILED ${row.error}`}`,
    )
    return row
  }
  const restore = async (who, prefix) => {
    const dest = path.join(work, 'dest')
    fs.rmSync(dest, { recursive: true, force: true })
    fs.mkdirSync(dest)
    const run = await runAction(who, 'consumer', dest, prefix)
    const c = compare(expected, snapshot(dest, { skip: (rel) => rel.startsWith('.scipio-s3-cache') }))
    fs.rmSync(dest, { recursive: true, force: true })
    return {
      ...run,
      code: run.code === 0 && run.restored === data.targets.length ? 0 : 1,
      extra: { identical: c.identical, restored: run.restored },
    }
  }
  const archiveBytes = (prefix, keys) =>
    [...storedObjects(s3Dir, prefix)].filter(([k]) => isArchive(k) && (!keys || keys(k))).reduce((a, [, n]) => a + n, 0)

  console.log(
    `Data set ${data.dir}: ${data.targets.map((t) => `${t.spec} ${(t.size / MiB).toFixed(1)} MiB`).join(', ')}`,
  )
  const loadBefore = os.loadavg().map((x) => x.toFixed(2))
  try {
    for (let rep = 0; rep < flags.reps; rep++) {
      for (const who of rep % 2 ? ['new', 'today'] : ['today', 'new']) {
        const prefix = `r${rep}-${who}`
        const cold = await step(rep, 'cold save', who === 'new' ? 'stored' : 'today', 'loopback', async () => {
          const run = await runAction(who, 'producer', data.frameworksDir, prefix)
          return {
            ...run,
            code: run.code === 0 && run.uploaded === data.targets.length ? 0 : 1,
            extra: { archiveBytes: archiveBytes(prefix) },
          }
        })
        await step(rep, 'warm restore', cold.format, 'loopback', () => restore(who, prefix))
        if (who !== 'new') continue
        const before = new Set(storedObjects(s3Dir, prefix).keys())
        await step(rep, 'repack', 'repacked', 'loopback', async () => ({
          ...(await runRepack(prefix)),
          extra: { archiveBytes: archiveBytes(prefix, (k) => !before.has(k)) },
        }))
        await step(rep, 'warm restore', 'repacked', 'loopback', () => restore('new', prefix))
      }
    }
    const last = flags.reps - 1
    for (let rep = 0; rep < flags.restoreReps; rep++) {
      for (const who of rep % 2 ? ['new', 'today'] : ['today', 'new'])
        await step(flags.reps + rep, 'warm restore', who === 'new' ? 'repacked' : 'today', 'loopback', () =>
          restore(who, `r${last}-${who}`),
        )
    }
    const mbit = Number.parseFloat(flags.bandwidth)
    proxy.setLink({ rttMs: 0, mbit })
    for (let rep = 0; rep < flags.shapedReps; rep++) {
      for (const [who, format] of rep % 2
        ? [
            ['new', 'repacked'],
            ['today', 'today'],
          ]
        : [
            ['today', 'today'],
            ['new', 'repacked'],
          ])
        await step(rep, 'warm restore', format, `${mbit} Mbit/s`, () => restore(who, `r${last}-${who}`))
    }
  } finally {
    proxy.setLink({})
    await proxy.close()
    await server.stop()
  }

  const groups = new Map()
  for (const r of rows) {
    const id = `${r.scenario}|${r.format}|${r.link}`
    if (!groups.has(id)) groups.set(id, [])
    groups.get(id).push(r)
  }
  const summary = [...groups.values()].map((g) => ({
    scenario: g[0].scenario,
    format: g[0].format,
    link: g[0].link,
    n: g.length,
    ok: g.every((r) => r.ok && r.identical !== false),
    wallS: median(g.map((r) => r.wallS)),
    cpuS: median(g.map((r) => r.cpuS)),
    rssMB: Math.max(...g.map((r) => r.rssMB ?? 0)),
    sent: median(g.map((r) => r.sent)),
    received: median(g.map((r) => r.received)),
    archiveBytes: median(g.map((r) => r.archiveBytes)),
  }))
  const get = (scenario, format, link = 'loopback') =>
    summary.find((s) => s.scenario === scenario && s.format === format && s.link === link)
  const mb = (b) => (b === undefined ? '' : (b / MiB).toFixed(1))
  const f = (x) => (x === undefined ? '' : x.toFixed(2))
  const totalBytes = data.targets.reduce((a, t) => a + t.size, 0)
  const lines = [
    `Data set ${flags.preset}: ${data.targets.length} frameworks, one per binary, ${mb(totalBytes)} MiB on disk: ${data.targets.map((t) => t.spec).join(', ')}.`,
    '',
    `${flags.reps} repetitions (medians; today and new in turn, the order swapped every repetition), then ${flags.restoreReps} more warm restores of today's and the repacked archives in turn (counted in the warm restores' medians), ${flags.shapedReps} warm restores at ${flags.bandwidth}. Concurrency ${flags.concurrency}. Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}; load average ${loadBefore.join(' ')} before, ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} after. Action on Node ${versionOf(node24, ['--version'])}.`,
    '',
    '| scenario | archives | link | wall s | CPU s | peak RSS MB | archive MiB stored | sent MiB | received MiB | runs ok |',
    '| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...summary.map(
      (s) =>
        `| ${s.scenario} | ${labels[s.format]} | ${s.link} | ${f(s.wallS)} | ${f(s.cpuS)} | ${s.rssMB.toFixed(0)} | ${mb(s.archiveBytes)} | ${mb(s.sent)} | ${mb(s.received)} | ${s.ok ? `${s.n}/${s.n}` : 'FAILED'} |`,
    ),
    '',
  ]
  const todayBytes = get('cold save', 'today')?.archiveBytes
  const ratio = (a, b) => (a !== undefined && b ? a / b : undefined)
  const targets = [
    ['bytes ≤ 0.80× today’s archives (after repack)', ratio(get('repack', 'repacked')?.archiveBytes, todayBytes), 0.8],
    [
      'bytes as a producer stores them, × today’s',
      ratio(get('cold save', 'stored')?.archiveBytes, todayBytes),
      undefined,
    ],
    [
      'restore CPU ≤ 1.10× today’s (after repack)',
      ratio(get('warm restore', 'repacked')?.cpuS, get('warm restore', 'today')?.cpuS),
      1.1,
    ],
    [
      'restore CPU of the stored archives, × today’s',
      ratio(get('warm restore', 'stored')?.cpuS, get('warm restore', 'today')?.cpuS),
      undefined,
    ],
    ['producer run CPU ≤ 3× today’s', ratio(get('cold save', 'stored')?.cpuS, get('cold save', 'today')?.cpuS), 3],
    [
      `warm restore at ${flags.bandwidth}, × today’s`,
      ratio(
        get('warm restore', 'repacked', `${Number.parseFloat(flags.bandwidth)} Mbit/s`)?.wallS,
        get('warm restore', 'today', `${Number.parseFloat(flags.bandwidth)} Mbit/s`)?.wallS,
      ),
      undefined,
    ],
  ]
  lines.push('| target | ratio | met |', '| --- | ---: | --- |')
  for (const [name, value, limit] of targets)
    lines.push(
      `| ${name} | ${value === undefined ? 'n/a' : value.toFixed(3)} | ${limit === undefined ? '' : value !== undefined && value <= limit ? 'yes' : '**no**'} |`,
    )
  const md = `${lines.join('\n')}\n`
  fs.mkdirSync(flags.out, { recursive: true })
  fs.writeFileSync(path.join(flags.out, 'results.md'), md)
  fs.writeFileSync(path.join(flags.out, 'results.json'), JSON.stringify({ flags, summary, rows }, null, 2) + '\n')
  console.log(`\n${md}\nWrote ${path.relative(root, flags.out)}/results.md, results.json`)
  fs.rmSync(work, { recursive: true, force: true })
  if (rows.some((r) => !r.ok || r.identical === false)) process.exitCode = 1
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
