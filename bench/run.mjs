#!/usr/bin/env node
// npm run bench -- [--preset default|small|realistic|scale|macho|macho-check (bench/macho.mjs)|insights (bench/insights.mjs)]
//                  [--count N] [--total-size 1.5G] [--realistic]
//                  [--packages N[,N]] [--targets-per-package 2] [--reps N] [--rtt-ms N[,N]] [--mbit N]
//                  [--shaped-reps N] [--bandwidth 200mbit] [--no-shape] [--concurrency 8] [--out DIR]
//                  [--contenders a,b,...] [--scenarios cold,warm,partial,noop] [--aws PATH]
// Measures this action (the bundled dist/, run as a runner runs it) side by side with `aws s3 sync` of the raw
// folder, one tar.zst moved with `aws s3 cp`, one tar.zst per framework moved with curl, and the floor (parallel
// GETs of the same compressed bytes, and a local copy of the tree), against an S3 server on loopback behind a
// proxy that counts requests and bytes and can model the link (round-trip time, bandwidth).
// See docs/benchmarks.md.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { barChart } from './chart.mjs'
import { ensureDataset, ensureScaleDataset } from './dataset.mjs'
import { gnuTime, measure } from './measure.mjs'
import { startCountingProxy } from './proxy.mjs'
import { compare, snapshot } from './tree.mjs'
import {
  bucket,
  cpuOfPid,
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

// ---------------------------------------------------------------- flags
function parseSize(text) {
  const m = /^([\d.]+)\s*([kmgt]?)i?b?$/i.exec(text)
  if (!m) throw new Error(`--total-size: cannot read '${text}' (e.g. 1.5G, 24M)`)
  return Math.round(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()))
}

function parseFlags(argv) {
  const presets = {
    default: { count: 40, totalBytes: 1.5 * 1024 ** 3, reps: 3, shapedReps: 1, bandwidth: '200mbit', shape: true },
    small: { count: 6, totalBytes: 24 * MiB, reps: 1, shapedReps: 1, bandwidth: '200mbit', shape: false },
    // Slices that share files and near-identical binaries, as real XCFrameworks do (bench/dataset.mjs).
    realistic: {
      count: 40,
      totalBytes: 1.5 * 1024 ** 3,
      reps: 3,
      shapedReps: 1,
      bandwidth: '200mbit',
      shape: true,
      realistic: true,
    },
    // Issue 19: many small frameworks, a full hit on loopback and over a 40 ms link, 12 and 120 packages of 2.
    scale: {
      packages: [12, 120],
      perPackage: 2,
      reps: 3,
      shapedReps: 0,
      bandwidth: '200mbit',
      shape: false,
      rttMs: [0, 40],
      scenarios: ['cold', 'warm'],
    },
  }
  const presetName = argv.includes('--preset') ? argv[argv.indexOf('--preset') + 1] : 'default'
  const preset = presets[presetName]
  if (!preset) throw new Error(`--preset: '${presetName}' is not one of ${Object.keys(presets).join(', ')}`)
  const flags = {
    preset: presetName,
    rttMs: [0],
    mbit: 0,
    ...preset,
    concurrency: 8,
    out: path.join(root, 'bench/results', presetName),
    contenders: ['action', 'aws-sync', 'tar-zst', 'native-per-fw', 'floor'],
    verifyAll: presetName === 'small',
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () =>
      argv[++i] ??
      (() => {
        throw new Error(`${a} needs a value`)
      })()
    if (a === '--preset') i++
    else if (a === '--count') flags.count = Number(value())
    else if (a === '--total-size') flags.totalBytes = parseSize(value())
    else if (a === '--reps') flags.reps = Number(value())
    else if (a === '--shaped-reps') flags.shapedReps = Number(value())
    else if (a === '--bandwidth') flags.bandwidth = value()
    else if (a === '--no-shape') flags.shape = false
    else if (a === '--realistic') flags.realistic = true
    else if (a === '--shape') flags.shape = true
    else if (a === '--concurrency') flags.concurrency = Number(value())
    else if (a === '--out') flags.out = path.resolve(value())
    else if (a === '--contenders') flags.contenders = value().split(',')
    else if (a === '--verify-all') flags.verifyAll = true
    else if (a === '--scenarios') flags.scenarios = value().split(',')
    else if (a === '--rtt-ms') flags.rttMs = value().split(',').map(Number)
    else if (a === '--mbit') flags.mbit = Number(value())
    else if (a === '--packages') flags.packages = value().split(',').map(Number)
    else if (a === '--targets-per-package') flags.perPackage = Number(value())
    else if (a === '--aws') flags.aws = path.resolve(value())
    else throw new Error(`unknown flag '${a}'`)
  }
  if (!flags.packages && !(flags.count >= 2)) throw new Error('--count must be at least 2')
  if (flags.packages && !flags.packages.every((n) => n >= 2)) throw new Error('--packages must be at least 2')
  flags.perPackage ??= 2
  if (!flags.rttMs.every((n) => n >= 0)) throw new Error('--rtt-ms takes milliseconds, e.g. 0,40')
  if (!(flags.mbit >= 0)) throw new Error('--mbit takes megabits per second, e.g. 200')
  if (!/^\d+(\.\d+)?mbit$/i.test(flags.bandwidth))
    throw new Error(`--bandwidth: '${flags.bandwidth}' is not a rate like 200mbit`)
  if (!(flags.reps >= 1)) throw new Error('--reps must be at least 1')
  return flags
}

// ---------------------------------------------------------------- tools
// ---------------------------------------------------------------- the link the proxy models
/** 'loopback', or e.g. '40 ms RTT', '200 Mbit/s', '40 ms RTT, 200 Mbit/s'. */
function linkLabel({ rttMs = 0, mbit = 0 }) {
  const parts = [...(rttMs > 0 ? [`${rttMs} ms RTT`] : []), ...(mbit > 0 ? [`${mbit} Mbit/s`] : [])]
  return parts.length ? parts.join(', ') : 'loopback'
}

// ---------------------------------------------------------------- contenders
function makeContenders(ctx) {
  const { flags, proxy, data, work, node24, aws } = ctx
  const doubleBin = path.join(root, 'scipio-test-double/bin')
  const awsEnv = {
    ...process.env,
    AWS_ACCESS_KEY_ID: credentials.key,
    AWS_SECRET_ACCESS_KEY: credentials.secret,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: path.join(work, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'aws-credentials-none'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REQUEST_CHECKSUM_CALCULATION: 'when_required',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'when_required',
    AWS_PAGER: '',
  }
  fs.writeFileSync(awsEnv.AWS_CONFIG_FILE, '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n')
  const awsArgs = ['--endpoint-url', proxy.endpoint, '--only-show-errors']
  const sh = (script, env = awsEnv) => measure('bash', ['-o', 'pipefail', '-c', script], { env })
  const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`

  async function action(mode, packageDir, outputDir, prefix) {
    const files = path.join(work, 'action-io')
    fs.rmSync(files, { recursive: true, force: true })
    fs.mkdirSync(files, { recursive: true })
    const env = {
      PATH: `${doubleBin}${path.delimiter}${process.env.PATH}`,
      HOME: process.env.HOME ?? work,
      TMPDIR: os.tmpdir(),
      GITHUB_OUTPUT: path.join(files, 'output'),
      GITHUB_STEP_SUMMARY: path.join(files, 'summary'),
      GITHUB_EVENT_NAME: 'push',
      AWS_EC2_METADATA_DISABLED: 'true',
      // Experiments: BENCH_PASS_MALLOC_ARENA_MAX=1 runs the action with MALLOC_ARENA_MAX=1.
      ...Object.fromEntries(
        Object.entries(process.env)
          .filter(([k]) => k.startsWith('BENCH_PASS_'))
          .map(([k, v]) => [k.slice('BENCH_PASS_'.length), v]),
      ),
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
      'INPUT_SUPPORT-SIMULATORS': 'true',
      INPUT_CONCURRENCY: String(flags.concurrency),
      // The run record is one PUT after the restore (src/records/): no part of what the contenders are compared on.
      'INPUT_RECORD-RUNS': 'false',
    }
    fs.writeFileSync(env.GITHUB_OUTPUT, '')
    fs.writeFileSync(env.GITHUB_STEP_SUMMARY, '')
    // Profiling: BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' npm run bench -- ... (Node refuses it in NODE_OPTIONS)
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)
    const run = await measure(node24, [...nodeArgs, path.join(root, 'dist/index.js')], { env })
    if (process.env.BENCH_KEEP_LOG)
      fs.writeFileSync(`${process.env.BENCH_KEEP_LOG}-${mode}-${Date.now()}.log`, run.stdout + run.stderr)
    const outputs = readOutputs(env.GITHUB_OUTPUT)
    const list = (name) => JSON.parse(outputs[name] ?? '[]')
    const fail =
      run.code !== 0
        ? `exit ${run.code}: ${(run.stdout + run.stderr)
            .split('\n')
            .filter((l) => /error|warning/i.test(l))
            .slice(0, 3)
            .join(' | ')}`
        : undefined
    return {
      ...run,
      fail,
      facts: { restored: list('restored').length, built: list('built'), uploaded: list('uploaded').length },
    }
  }

  const all = {
    action: {
      label: 'this action',
      cold: ({ prefix }) => action('producer', data.packageDir, data.frameworksDir, prefix),
      warm: ({ prefix, dest }) => action('consumer', data.packageDir, dest, prefix),
      noop: ({ prefix, dest }) => action('producer', data.packageDir, dest, prefix),
      partial: ({ prefix, dest }) => action('consumer', data.changedPackageDir, dest, prefix),
    },
    'aws-sync': {
      label: 'aws s3 sync (raw folder)',
      needs: aws,
      cold: ({ prefix }) =>
        measure(aws, ['s3', 'sync', data.frameworksDir, `s3://${bucket}/${prefix}/`, ...awsArgs], { env: awsEnv }),
      warm: ({ prefix, dest }) =>
        measure(aws, ['s3', 'sync', `s3://${bucket}/${prefix}/`, dest, ...awsArgs], { env: awsEnv }),
      noop: ({ prefix, dest }) =>
        measure(aws, ['s3', 'sync', dest, `s3://${bucket}/${prefix}/`, ...awsArgs], { env: awsEnv }),
      // The folder's S3 path is keyed by Package.resolved; on a changed pin the best a team can do is fall back
      // to the previous set (like restore-keys) and let Scipio rebuild the changed one: the whole set again.
      partial: ({ prefix, dest }) =>
        measure(aws, ['s3', 'sync', `s3://${bucket}/${prefix}/`, dest, ...awsArgs], { env: awsEnv }),
    },
    'tar-zst': {
      label: 'one tar.zst + aws s3 cp',
      needs: aws && ctx.zstd,
      // actions/cache's own flags: tar of the folder, zstd -T0 --long=30 (default level 3).
      cold: ({ prefix }) =>
        sh(
          `tar -C ${q(data.frameworksDir)} -cf - . | zstd -T0 --long=30 -q -c | ${q(aws)} s3 cp - s3://${bucket}/${prefix}/all.tar.zst ${awsArgs.join(' ')}`,
        ),
      warm: ({ prefix, dest }) =>
        sh(
          `mkdir -p ${q(dest)} && ${q(aws)} s3 cp s3://${bucket}/${prefix}/all.tar.zst - ${awsArgs.join(' ')} | zstd -d --long=30 -q -c | tar -C ${q(dest)} -xf -`,
        ),
      // actions/cache saves nothing when its key already exists: one existence check.
      noop: ({ prefix }) =>
        sh(
          `${q(aws)} s3api head-object --bucket ${bucket} --key ${prefix}/all.tar.zst --endpoint-url ${proxy.endpoint} > /dev/null`,
        ),
      partial: ({ prefix, dest }) =>
        sh(
          `mkdir -p ${q(dest)} && ${q(aws)} s3 cp s3://${bucket}/${prefix}/all.tar.zst - ${awsArgs.join(' ')} | zstd -d --long=30 -q -c | tar -C ${q(dest)} -xf -`,
        ),
    },
    'native-per-fw': {
      label: `${flags.concurrency} × (curl, zstd -d, tar -x), one per framework`,
      needs: ctx.zstd && ctx.curl,
      // The same per-framework layout as the action, done by native tools: each framework is tar'ed
      // (GNU tar's order) and compressed as the action does (level 3, long-distance matching over 2^22),
      // stored with an unsigned PUT, and restored as `curl | zstd -d | tar -x`, `--concurrency` at a time.
      cold: ({ prefix }) =>
        sh(
          `cd ${q(data.frameworksDir)} && printf '%s\\n' ${data.targets.map((t) => q(t.name)).join(' ')} | xargs -P ${flags.concurrency} -I{} bash -o pipefail -c ` +
            q(
              `f=$(mktemp -p ${q(work)}) && tar -cf - {}.xcframework .{}.version | zstd -3 --long=22 -q -c > "$f" && curl -sf -T "$f" ${proxy.endpoint}/${bucket}/${prefix}/{}.tar.zst; r=$?; rm -f "$f"; exit $r`,
            ),
        ),
      warm: ({ prefix, dest }) =>
        sh(
          `mkdir -p ${q(dest)} && printf '%s\\n' ${data.targets.map((t) => q(t.name)).join(' ')} | xargs -P ${flags.concurrency} -I{} bash -o pipefail -c ` +
            q(
              `curl -sf ${proxy.endpoint}/${bucket}/${prefix}/{}.tar.zst | zstd -d --long=22 -q -c | tar -C ${q(dest)} -xf -`,
            ),
        ),
    },
    'floor-fetch': {
      label: 'floor: parallel GET, no processing',
      warm: ({ actionPrefix }) => floorFetch(ctx, actionPrefix, () => true),
      partial: ({ actionPrefix }) =>
        floorFetch(ctx, actionPrefix, (key) => !data.changedTargets.some((t) => key.includes(`/${t}/`))),
    },
    'floor-copy': {
      label: 'floor: local copy (cp -a)',
      warm: ({ dest }) => measure('cp', ['-a', data.frameworksDir, dest]),
    },
  }
  return all
}

function floorFetch(ctx, actionPrefix, keep) {
  const keys = [...storedObjects(ctx.s3Dir, actionPrefix).keys()].filter((k) => /\.tar\.(zst|gz)$/.test(k) && keep(k))
  return measure(ctx.node24, [path.join(root, 'bench/floor-fetch.mjs')], {
    stdin: JSON.stringify({ endpoint: ctx.proxy.endpoint, bucket, keys, concurrency: ctx.flags.concurrency }),
  })
}

// ---------------------------------------------------------------- one measured run
const scenarios = {
  cold: 'cold save',
  warm: 'warm restore',
  partial: 'partial restore',
  noop: 'no-op save',
}

/** The restored trees still on disk in the scratch folder (none, when every run removed its own). */
function treesOnDisk(work) {
  return fs.readdirSync(work).filter((n) => n.startsWith('dest-'))
}

/**
 * One measured run. `place.prefix` is this contender's S3 prefix in this data set and link, `place.actionPrefix`
 * the action's (the floor reads its archives). The restored tree is verified, then deleted before the next
 * contender runs; with `keep` (a no-op save follows on it) it is moved aside and the no-op run deletes it.
 */
async function runOne(ctx, place, rep, scenario, name, contender, { keep = false, verify = true } = {}) {
  const { prefix, actionPrefix, dataset, variant, link } = place
  const dest = path.join(ctx.work, `dest-${name}-${scenario}`)
  const kept = path.join(ctx.work, `kept-${name}`)
  fs.rmSync(dest, { recursive: true, force: true })
  if (scenario === 'noop') {
    // after a warm restore: the folder a consumer just filled
    fs.renameSync(kept, dest)
  } else if (name === 'floor-copy') {
    // cp -a SRC DEST creates DEST
  } else if (!['cold'].includes(scenario)) fs.mkdirSync(dest, { recursive: true })
  const leftover = treesOnDisk(ctx.work).filter((n) => n !== path.basename(dest))
  // No dirty pages left from the step before: otherwise the kernel's write-back of its 1.5 GB lands on this one.
  spawnSync('sync')
  const serverCpuBefore = cpuOfPid(ctx.serverPid)
  ctx.proxy.reset()
  const result = await contender[scenario]({ prefix, dest, actionPrefix })
  const traffic = ctx.proxy.reset()
  const serverCpuAfter = cpuOfPid(ctx.serverPid)
  const row = {
    dataset,
    variant,
    link,
    rep,
    scenario,
    contender: name,
    wallS: result.wallS,
    cpuS: result.cpuS,
    rssMB: result.rssMB,
    sentBytes: traffic.up,
    receivedBytes: traffic.down,
    connections: traffic.connections,
    requests: traffic.requests,
    methods: traffic.methods,
    treesOnDiskBefore: leftover,
    serverCpuS:
      serverCpuBefore !== undefined && serverCpuAfter !== undefined ? serverCpuAfter - serverCpuBefore : undefined,
    ok: result.code === 0 && !result.fail,
  }
  if (name === 'action' && scenario !== 'cold')
    row.requestLog = traffic.log.map((r) => `${r.ms} ${r.conn} ${r.method} ${r.path.replace(`/${bucket}/`, '')}`)
  if (!row.ok)
    row.error =
      result.fail ??
      `exit ${result.code}: ${(result.stderr || result.stdout)
        .split('\n')
        .filter((l) => /error/i.test(l))
        .slice(0, 3)
        .join(' | ')}`
  if (result.facts) row.facts = result.facts
  if (name === 'floor-fetch' && result.stdout) row.facts = JSON.parse(result.stdout)
  // correctness facts
  if ((scenario === 'warm' || scenario === 'partial') && !name.startsWith('floor-fetch') && verify) {
    // In the partial scenario the action leaves the changed frameworks to Scipio (here the test double, which
    // writes stand-ins): compare everything else.
    const changed = scenario === 'partial' && name === 'action' ? ctx.data.changedTargets : []
    const skip = (rel) =>
      rel.startsWith('.scipio-s3-cache') || changed.some((t) => rel === `${t}.xcframework` || rel === `.${t}.version`)
    const got = snapshot(dest, { skip })
    const want = changed.length ? ctx.expectedPartial : ctx.expected
    const c = compare(want, got)
    row.identical = c.identical
    if (!c.identical) row.treeIssues = c.issues
  }
  if (scenario === 'partial' && name === 'action') {
    const archives = storedObjects(ctx.s3Dir, prefix)
    const unchanged = [...archives].filter(
      ([k]) => /\.tar\.(zst|gz)$/.test(k) && !ctx.data.changedTargets.some((t) => k.includes(`/${t}/`)),
    )
    row.unchangedArchiveBytes = unchanged.reduce((a, [, size]) => a + size, 0)
    row.misses = ctx.data.targets.length - (row.facts?.restored ?? 0)
    row.builtTargets = row.facts?.built
  }
  if (scenario === 'noop' && name === 'action') row.uploadedArchives = row.facts?.uploaded
  // Fairness: no contender pays for the page cache and the reclaim of another's tree.
  if (keep) fs.renameSync(dest, kept)
  else fs.rmSync(dest, { recursive: true, force: true })
  row.treeRemoved = !fs.existsSync(dest)
  const mb = (b) => (b / MiB).toFixed(1)
  console.log(
    `  ${dataset} ${variant} rep ${rep + 1} ${scenarios[scenario].padEnd(15)} ${name.padEnd(13)} ${row.wallS.toFixed(2).padStart(7)} s  cpu ${row.cpuS?.toFixed(2) ?? '?'} s  rss ${row.rssMB?.toFixed(0) ?? '?'} MB  up ${mb(row.sentBytes)} MB  down ${mb(row.receivedBytes)} MB  ${row.requests} requests` +
      (row.identical === false ? `  tree: ${row.treeIssues.join(', ')}` : row.identical ? '  tree identical' : '') +
      (row.ok ? '' : `  FAILED ${row.error}`),
  )
  return row
}

// ---------------------------------------------------------------- summary, targets, outputs
function summarize(rows) {
  const groups = new Map()
  for (const r of rows) {
    const id = `${r.dataset}|${r.variant}|${r.scenario}|${r.contender}`
    if (!groups.has(id)) groups.set(id, [])
    groups.get(id).push(r)
  }
  return [...groups.values()].map((g) => {
    const { dataset, variant, link, scenario, contender } = g[0]
    const pick = (f) => median(g.map((r) => r[f]))
    return {
      dataset,
      variant,
      link,
      shaped: g[0].shaped,
      scenario,
      contender,
      n: g.length,
      allOk: g.every((r) => r.ok),
      wallS: pick('wallS'),
      cpuS: pick('cpuS'),
      rssMB: pick('rssMB'),
      maxRssMB: Math.max(...g.map((r) => r.rssMB ?? 0)),
      sentBytes: pick('sentBytes'),
      receivedBytes: pick('receivedBytes'),
      serverCpuS: pick('serverCpuS'),
      requests: pick('requests'),
      connections: pick('connections'),
      identical: g.some((r) => r.identical !== undefined) ? g.every((r) => r.identical !== false) : undefined,
      treeIssues: g.find((r) => r.treeIssues)?.treeIssues,
    }
  })
}

function evaluateTargets(summary, rows, ctx) {
  const get = (variant, scenario, contender) =>
    summary.find((s) => s.variant === variant && s.scenario === scenario && s.contender === contender)
  const t = []
  const add = (target, met, measured) => t.push({ target, met, measured })
  const fmt = (x) => (x === undefined ? 'n/a' : x.toFixed(2))
  const w = (s) => s?.wallS
  const act = get('loopback', 'warm', 'action')
  const floor =
    Math.max(w(get('loopback', 'warm', 'floor-fetch')) ?? 0, w(get('loopback', 'warm', 'floor-copy')) ?? 0) || undefined
  if (act && floor)
    add(
      'warm restore ≤ 1.5× the floor',
      w(act) <= 1.5 * floor,
      `${fmt(w(act))} s vs floor ${fmt(floor)} s: ${fmt(w(act) / floor)}×`,
    )
  if (act && floor)
    add(
      'warm restore ≤ 2× the floor (issue 19)',
      w(act) <= 2 * floor,
      `${fmt(w(act))} s vs floor ${fmt(floor)} s: ${fmt(w(act) / floor)}×`,
    )
  const sync = get('loopback', 'warm', 'aws-sync')
  if (act && sync)
    add(
      'warm restore ≥ 3× faster than aws s3 sync',
      w(sync) >= 3 * w(act),
      `${fmt(w(sync) / w(act))}× faster (${fmt(w(sync))} s vs ${fmt(w(act))} s)`,
    )
  const tz = get('loopback', 'warm', 'tar-zst')
  if (act && tz)
    add(
      'warm restore ≥ 1.5× faster than one tar.zst',
      w(tz) >= 1.5 * w(act),
      `${fmt(w(tz) / w(act))}× faster (${fmt(w(tz))} s vs ${fmt(w(act))} s)`,
    )
  const native = get('loopback', 'warm', 'native-per-fw')
  if (act && native)
    add(
      'warm restore faster than the native per-framework pipeline',
      w(act) < w(native),
      `${fmt(w(native) / w(act))}× faster (${fmt(w(native))} s vs ${fmt(w(act))} s)`,
    )
  const coldAct = get('loopback', 'cold', 'action')
  const coldTz = get('loopback', 'cold', 'tar-zst')
  if (coldAct && coldTz)
    add('cold save ≤ the single tar.zst save', w(coldAct) <= w(coldTz), `${fmt(w(coldAct))} s vs ${fmt(w(coldTz))} s`)
  if (coldAct && coldTz) {
    const mib = (b) => (b / MiB).toFixed(1)
    add(
      'bytes on the wire ≤ the single --long=30 tar.zst (cold save upload)',
      coldAct.sentBytes <= coldTz.sentBytes,
      `${mib(coldAct.sentBytes)} MiB vs ${mib(coldTz.sentBytes)} MiB (${((coldAct.sentBytes / coldTz.sentBytes - 1) * 100).toFixed(1)}%)`,
    )
  }
  const partialRows = rows.filter((r) => r.scenario === 'partial' && r.contender === 'action')
  if (partialRows.length) {
    const worst = Math.max(...partialRows.map((r) => r.receivedBytes / r.unchangedArchiveBytes))
    add(
      'partial restore fetches ≤ 10% more bytes than the unchanged archives',
      worst <= 1.1,
      `${((worst - 1) * 100).toFixed(2)}% more (worst repetition)`,
    )
    const misses = partialRows.map((r) => `${r.misses} miss, built ${JSON.stringify(r.builtTargets)}`)
    const want = [...ctx.data.changedTargets].sort().join(',')
    add(
      "partial restore: the changed package's frameworks are the only misses",
      partialRows.every(
        (r) => r.misses === ctx.data.changedTargets.length && [...(r.builtTargets ?? [])].sort().join(',') === want,
      ),
      [...new Set(misses)].join('; '),
    )
  }
  const noopRows = rows.filter((r) => r.scenario === 'noop' && r.contender === 'action')
  if (noopRows.length) {
    add(
      'no-op save uploads zero archives',
      noopRows.every((r) => r.uploadedArchives === 0),
      `uploaded ${[...new Set(noopRows.map((r) => r.uploadedArchives))].join(', ')} archives; ${fmt(median(noopRows.map((r) => r.sentBytes)) / 1024)} KiB sent in all`,
    )
    const noop = get('loopback', 'noop', 'action')
    add(`no-op save ≤ 5 s for ${ctx.data.targets.length} targets`, w(noop) <= 5, `${fmt(w(noop))} s`)
  }
  const actionRss = summary.filter((s) => s.contender === 'action')
  if (actionRss.length) {
    const peak = Math.max(...actionRss.map((s) => s.maxRssMB))
    add(
      'peak RSS of the action ≤ 200 MB in every scenario',
      peak <= 200,
      `${peak.toFixed(0)} MB at most (${actionRss.map((s) => `${s.variant === 'loopback' ? '' : `${s.variant} `}${scenarios[s.scenario]} ${s.maxRssMB.toFixed(0)}`).join(', ')})`,
    )
  }
  const shaped = summary.find((s) => s.shaped && s.scenario === 'warm' && s.contender === 'action')
  if (shaped) {
    const others = summary.filter(
      (s) =>
        s.variant === shaped.variant &&
        s.scenario === 'warm' &&
        (s.contender === 'aws-sync' || s.contender === 'tar-zst'),
    )
    if (others.length)
      add(
        `under ${shaped.variant}, warm restore beats aws s3 sync and the tar.zst`,
        others.every((o) => w(shaped) < w(o)),
        `${fmt(w(shaped))} s vs ${others.map((o) => `${o.contender} ${fmt(w(o))} s`).join(', ')}`,
      )
  }
  return t
}

/**
 * The scale scenario (issue 19): the action's full hit (warm restore) on each data set and link, its requests,
 * the ratio to loopback, and the marginal cost per framework between the smallest and the largest set.
 */
function scaleFigures(summary, datasets) {
  if (datasets.length < 2) return undefined
  const small = datasets[0]
  const large = datasets[datasets.length - 1]
  const links = [...new Set(summary.filter((s) => !s.shaped).map((s) => s.variant))]
  const hit = (ds, variant) =>
    summary.find(
      (s) =>
        s.dataset === ds.tag && s.variant === variant && s.scenario === 'warm' && s.contender === 'action' && !s.shaped,
    )
  const base = { small: hit(small, 'loopback'), large: hit(large, 'loopback') }
  // The same tree written by `cp -a` (the floor-copy contender): what the disk alone charges per framework.
  const copy = (ds) =>
    summary.find(
      (s) =>
        s.dataset === ds.tag &&
        s.variant === 'loopback' &&
        s.scenario === 'warm' &&
        s.contender === 'floor-copy' &&
        !s.shaped,
    )
  const copies = { small: copy(small), large: copy(large) }
  const rows = links.map((variant) => {
    const a = hit(small, variant)
    const b = hit(large, variant)
    if (!a || !b) return undefined
    const df = large.frameworks - small.frameworks
    return {
      variant,
      small: {
        tag: small.tag,
        frameworks: small.frameworks,
        packages: small.packages,
        wallS: a.wallS,
        requests: a.requests,
        vsLoopback: base.small ? a.wallS / base.small.wallS : undefined,
      },
      large: {
        tag: large.tag,
        frameworks: large.frameworks,
        packages: large.packages,
        wallS: b.wallS,
        requests: b.requests,
        vsLoopback: base.large ? b.wallS / base.large.wallS : undefined,
        rssMB: b.rssMB,
      },
      msPerFramework: ((b.wallS - a.wallS) * 1000) / df,
      requestsPerFramework: (b.requests - a.requests) / df,
      ...(copies.small && copies.large
        ? { copyMsPerFramework: ((copies.large.wallS - copies.small.wallS) * 1000) / df }
        : {}),
    }
  })
  return rows.filter(Boolean)
}

function markdown(result, labels) {
  const mb = (b) => (b === undefined ? '' : (b / MiB).toFixed(1))
  const f = (x, d = 2) => (x === undefined ? '' : x.toFixed(d))
  const lines = []
  const { meta } = result
  for (const ds of meta.datasets) {
    lines.push(
      `Data set ${ds.tag}: ${ds.count} XCFrameworks${ds.packages ? ` (${ds.packages} packages)` : ''}, ${mb(ds.totalBytes)} MiB on disk (${ds.files} entries), ${mb(ds.archiveBytes)} MiB as the action's tar.zst archives.`,
    )
  }
  lines.push('')
  lines.push(
    `${meta.reps} repetitions (medians), links: ${meta.links.join('; ')}; ${meta.shapedReps} warm restores at ${meta.bandwidth ?? 'no bandwidth limit'}. Concurrency ${meta.concurrency}. Machine: ${meta.cpus} × ${meta.cpuModel}, ${meta.memGiB} GiB; load average ${meta.loadBefore.join(' ')} before, ${meta.loadAfter.join(' ')} after. ` +
      `${meta.node24}, ${meta.aws ?? 'aws: not installed'}, ${meta.zstd ?? 'zstd: not installed'}, started ${meta.startedAt}.`,
  )
  lines.push('')
  const multi = meta.datasets.length > 1
  for (const ds of meta.datasets) {
    for (const variant of [...new Set(result.summary.filter((s) => s.dataset === ds.tag).map((s) => s.variant))]) {
      const title = variant === 'loopback' ? 'Loopback (no bandwidth limit)' : `Link: ${variant}`
      lines.push(`### ${multi ? `${ds.tag}: ` : ''}${title}`)
      lines.push('')
      lines.push(
        '| scenario | contender | wall s (median) | CPU s | peak RSS MB | sent MiB | received MiB | requests | S3 server CPU s | tree | runs ok |',
      )
      lines.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |')
      for (const scenario of Object.keys(scenarios)) {
        for (const s of result.summary.filter(
          (x) => x.dataset === ds.tag && x.variant === variant && x.scenario === scenario,
        )) {
          const tree =
            s.identical === undefined ? '' : s.identical ? 'identical' : `differs: ${s.treeIssues?.join(', ')}`
          lines.push(
            `| ${scenarios[scenario]} | ${labels[s.contender]} | ${f(s.wallS)} | ${f(s.cpuS)} | ${f(s.rssMB, 0)} | ${mb(s.sentBytes)} | ${mb(s.receivedBytes)} | ${s.requests ?? ''} | ${f(s.serverCpuS)} | ${tree} | ${s.allOk ? `${s.n}/${s.n}` : 'FAILED'} |`,
          )
        }
      }
      lines.push('')
    }
  }
  if (result.scale?.length) {
    lines.push("### Scale: the action's full hit (warm restore)")
    lines.push('')
    const [first] = result.scale
    lines.push(
      `| link | ${first.small.frameworks} frameworks: wall s | requests | × loopback | ${first.large.frameworks} frameworks: wall s | requests | × loopback | marginal ms / framework | marginal requests / framework | cp -a of the same trees: marginal ms / framework |`,
    )
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const r of result.scale) {
      lines.push(
        `| ${r.variant} | ${f(r.small.wallS)} | ${r.small.requests} | ${f(r.small.vsLoopback)} | ${f(r.large.wallS)} | ${r.large.requests} | ${f(r.large.vsLoopback)} | ${f(r.msPerFramework, 1)} | ${f(r.requestsPerFramework, 2)} | ${f(r.copyMsPerFramework, 1)} |`,
      )
    }
    lines.push('')
  }
  lines.push('### Targets')
  lines.push('')
  lines.push('| target | met | measured |')
  lines.push('| --- | --- | --- |')
  for (const t of result.targets) lines.push(`| ${t.target} | ${t.met ? 'yes' : '**no**'} | ${t.measured} |`)
  for (const note of result.notes) lines.push('', `Note: ${note}`)
  return lines.join('\n') + '\n'
}

// ---------------------------------------------------------------- main
/** The data sets of this run: the scale preset has two (the marginal cost per framework is their difference). */
function datasetsOf(flags) {
  if (flags.packages) {
    return flags.packages.map((packages) => {
      const tag = `${packages}x${flags.perPackage}`
      return {
        tag,
        packages,
        load: () =>
          ensureScaleDataset({
            dir: path.join(root, 'bench/.data', `scale-${tag}`),
            packages,
            perPackage: flags.perPackage,
          }),
      }
    })
  }
  const tag = `${flags.count}x${flags.totalBytes}${flags.realistic ? '-realistic' : ''}`
  return [
    {
      tag: `${flags.count}fw-${Math.round(flags.totalBytes / MiB)}MiB${flags.realistic ? '-realistic' : ''}`,
      load: () =>
        ensureDataset({
          dir: path.join(root, 'bench/.data', tag),
          count: flags.count,
          totalBytes: flags.totalBytes,
          realistic: Boolean(flags.realistic),
        }),
    },
  ]
}

async function main() {
  const argv = process.argv.slice(2)
  // The insights preset measures the insights command on the synthetic history: bench/insights.mjs.
  if (argv[argv.indexOf('--preset') + 1] === 'insights') return (await import('./insights.mjs')).main(argv)
  const flags = parseFlags(argv)
  const notes = []
  const node24 = which(path.join(root, '.node24/bin/node')) ?? process.execPath
  if (!which(path.join(root, '.node24/bin/node')))
    notes.push(
      `.node24/bin/node is missing (bash scripts/install-node24.sh): the action ran on ${process.version}, not Node 24.`,
    )
  if (!fs.existsSync(path.join(root, 'dist/index.js')))
    throw new Error('dist/index.js is missing: run npm run bundle first')
  const aws = flags.aws ? which(flags.aws) : (which('/usr/bin/aws') ?? which('/usr/local/bin/aws'))
  if (flags.aws && !aws) throw new Error(`--aws: ${flags.aws} does not exist`)
  const zstd = which('/usr/bin/zstd')
  const curl = which('/usr/bin/curl')
  if (!aws)
    notes.push(
      'aws CLI not found at /usr/bin/aws (or --aws PATH): the aws s3 sync and tar.zst contenders were skipped (apt-get install awscli).',
    )
  if (!zstd) notes.push('zstd not found at /usr/bin/zstd: the tar.zst contender was skipped (apt-get install zstd).')
  if (!gnuTime)
    notes.push('GNU time not found at /usr/bin/time: CPU time and peak RSS are not reported (apt-get install time).')

  const work = path.join(root, 'bench/.work', String(process.pid)) // one per run: the CI smoke test may run beside a full run
  fs.rmSync(work, { recursive: true, force: true })
  fs.mkdirSync(work, { recursive: true })
  const s3Dir = path.join(work, 's3')
  const datasets = datasetsOf(flags).map((ds) => {
    const data = ds.load()
    console.log(`Data set ${data.dir}; hashing the reference tree...`)
    const expected = snapshot(data.frameworksDir)
    const changed = (rel) =>
      data.changedTargets.some(
        (t) => rel === `.${t}.version` || rel === `${t}.xcframework` || rel.startsWith(`${t}.xcframework/`),
      )
    // The partial restore leaves the changed frameworks to Scipio; the test double builds stand-ins for them.
    const expectedPartial = new Map([...expected].filter(([rel]) => !changed(rel)))
    return { ...ds, data, expected, expectedPartial, frameworks: data.targets.length }
  })

  const server = await startServer(s3Dir)
  const proxy = await startCountingProxy(server.port)
  const links = flags.rttMs.map((rttMs) => ({ rttMs, mbit: flags.mbit }))
  const base = { flags, proxy, work, node24, aws, zstd, curl, s3Dir, serverPid: server.pid }
  const contextOf = (ds) => ({ ...base, data: ds.data, expected: ds.expected, expectedPartial: ds.expectedPartial })
  const contendersOf = new Map(datasets.map((ds) => [ds.tag, makeContenders(contextOf(ds))]))
  const all = contendersOf.get(datasets[0].tag)
  const wanted = new Set(flags.contenders.flatMap((c) => (c === 'floor' ? ['floor-fetch', 'floor-copy'] : [c])))
  const names = Object.keys(all).filter((n) => wanted.has(n) && (!('needs' in all[n]) || Boolean(all[n].needs)))
  const labels = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.label]))
  const wantScenario = (scenario) => !flags.scenarios || flags.scenarios.includes(scenario)
  const meta = {
    startedAt: new Date().toISOString(),
    preset: flags.preset,
    argv: process.argv.slice(2),
    reps: flags.reps,
    links: links.map(linkLabel),
    shapedReps: 0,
    concurrency: flags.concurrency,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '?',
    memGiB: Math.round(os.totalmem() / 1024 ** 3),
    loadBefore: os.loadavg().map((x) => x.toFixed(2)),
    node24: `action on Node ${versionOf(node24, ['--version'])}`,
    aws: aws ? versionOf(aws, ['--version']) : undefined,
    zstd: zstd ? versionOf(zstd, ['--version']) : undefined,
    datasets: datasets.map(({ tag, data, expected }) => ({
      tag,
      count: data.targets.length,
      packages: data.packages,
      totalBytes: data.targets.reduce((a, t) => a + t.size, 0),
      files: expected.size,
      largestBytes: Math.max(...data.targets.map((t) => t.size)),
    })),
  }
  meta.dataset = meta.datasets[meta.datasets.length - 1]
  console.log(
    `Contenders: ${names.join(', ')}; ${flags.reps} repetitions; links ${meta.links.join(', ')}; S3 server (s3rver) on 127.0.0.1:${server.port} behind a proxy on ${proxy.port}`,
  )
  const rows = []
  const prefixOf = (rep, ds, li, name) => `r${rep}-${ds.tag}-l${li}-${name}`
  try {
    for (let rep = 0; rep < flags.reps; rep++) {
      const order = names.map((_, i) => names[(i + rep) % names.length]) // rep r starts at contender r mod n
      for (const ds of datasets) {
        const ctx = contextOf(ds)
        const contenders = contendersOf.get(ds.tag)
        const verify = flags.verifyAll || Boolean(flags.packages) || rep === 0
        for (const [li, link] of links.entries()) {
          proxy.setLink(link)
          const place = (name) => ({
            prefix: prefixOf(rep, ds, li, name),
            actionPrefix: prefixOf(rep, ds, li, 'action'),
            dataset: ds.tag,
            variant: linkLabel(link),
            link,
          })
          for (const scenario of ['cold', 'warm', 'partial']) {
            if (!wantScenario(scenario)) continue
            for (const name of order) {
              const c = contenders[name]
              if (!c[scenario]) continue
              // The no-op save runs on the tree this contender's warm restore just filled, then removes it.
              const noop = scenario === 'warm' && wantScenario('noop') && Boolean(c.noop)
              rows.push(await runOne(ctx, place(name), rep, scenario, name, c, { keep: noop, verify }))
              if (noop) rows.push(await runOne(ctx, place(name), rep, 'noop', name, c))
            }
          }
          if (rep === 0 && li === 0)
            meta.datasets.find((d) => d.tag === ds.tag).archiveBytes = [
              ...storedObjects(s3Dir, prefixOf(0, ds, 0, 'action')),
            ]
              .filter(([k]) => /\.tar\.(zst|gz)$/.test(k))
              .reduce((a, [, size]) => a + size, 0)
          // keep only the last repetition's objects of the first link (the bandwidth-limited runs read them)
          if (rep < flags.reps - 1 || li > 0)
            for (const name of names)
              fs.rmSync(path.join(s3Dir, bucket, prefixOf(rep, ds, li, name)), { recursive: true, force: true })
        }
      }
    }
    proxy.setLink({})
    if (flags.shape && flags.shapedReps > 0) {
      const mbit = Number.parseFloat(flags.bandwidth)
      const link = { rttMs: 0, mbit }
      meta.shapedReps = flags.shapedReps
      meta.bandwidth = flags.bandwidth
      proxy.setLink(link)
      console.log(`The proxy's link: ${mbit} Mbit/s each way, shared by all connections`)
      const ds = datasets[datasets.length - 1]
      const ctx = contextOf(ds)
      const contenders = contendersOf.get(ds.tag)
      const last = flags.reps - 1
      try {
        for (let rep = 0; rep < flags.shapedReps; rep++) {
          const order = names.filter((n) => n !== 'floor-copy')
          for (const name of order.map((_, i) => order[(i + rep) % order.length])) {
            if (!contenders[name].warm) continue
            const place = {
              prefix: prefixOf(last, ds, 0, name),
              actionPrefix: prefixOf(last, ds, 0, 'action'),
              dataset: ds.tag,
              variant: `${mbit} Mbit/s`,
              link,
            }
            const row = await runOne(ctx, place, rep, 'warm', name, contenders[name], { verify: false })
            row.shaped = true
            rows.push(row)
          }
        }
      } finally {
        proxy.setLink({})
      }
    } else if (!flags.shape) notes.push('bandwidth-limited variant not run (--no-shape).')
  } finally {
    await proxy.close()
    await server.stop()
  }
  meta.loadAfter = os.loadavg().map((x) => x.toFixed(2))
  const summary = summarize(rows)
  const scale = scaleFigures(summary, datasets)
  const result = { meta, summary, scale, targets: [], notes, rows }
  const main = datasets[datasets.length - 1]
  result.targets = evaluateTargets(
    summary.filter((s) => s.dataset === main.tag),
    rows.filter((r) => r.dataset === main.tag),
    contextOf(main),
  )
  for (const r of scale ?? []) {
    if (r.variant === 'loopback') {
      result.targets.push({
        target: 'full hit: marginal cost ≤ 5 ms per framework on loopback (issue 19)',
        met: r.msPerFramework <= 5,
        measured:
          `${r.msPerFramework.toFixed(1)} ms and ${r.requestsPerFramework.toFixed(2)} requests per framework (${r.small.frameworks} → ${r.large.frameworks} frameworks: ${r.small.wallS.toFixed(2)} → ${r.large.wallS.toFixed(2)} s, ${r.small.requests} → ${r.large.requests} requests)` +
          (r.copyMsPerFramework !== undefined
            ? `; cp -a writes the same trees at ${r.copyMsPerFramework.toFixed(1)} ms per framework on this disk`
            : ''),
      })
      result.targets.push({
        target: 'full hit: one request beyond one per archive (issue 19)',
        met: r.large.requests <= r.large.frameworks + 1,
        measured: `${r.large.requests} requests for ${r.large.frameworks} archives (${r.large.packages} packages)`,
      })
    } else
      result.targets.push({
        target: `full hit at ${r.variant} ≤ 1.25× its loopback time (issue 19)`,
        met: r.large.vsLoopback <= 1.25,
        measured: `${r.large.wallS.toFixed(2)} s, ${r.large.vsLoopback?.toFixed(2)}× loopback (${r.large.frameworks} frameworks)`,
      })
  }
  fs.mkdirSync(flags.out, { recursive: true })
  fs.writeFileSync(path.join(flags.out, 'results.json'), JSON.stringify(result, null, 2) + '\n')
  const md = markdown(result, labels)
  fs.writeFileSync(path.join(flags.out, 'results.md'), md)
  const variants = [...new Set(summary.map((s) => `${s.dataset}|${s.variant}`))]
  const groups = variants.flatMap((dv) => {
    const [dataset, v] = dv.split('|')
    const tag = `${datasets.length > 1 ? `${dataset} ` : ''}${v === 'loopback' ? '' : `(${v})`}`.trim()
    return Object.keys(scenarios)
      .filter((sc) => summary.some((s) => s.dataset === dataset && s.variant === v && s.scenario === sc))
      .map((sc) => ({
        label: `${scenarios[sc]}${tag ? ` ${tag}` : ''}`,
        values: Object.fromEntries(
          summary
            .filter((s) => s.dataset === dataset && s.variant === v && s.scenario === sc)
            .map((s) => [labels[s.contender], s.wallS]),
        ),
      }))
  })
  fs.writeFileSync(
    path.join(flags.out, 'chart.svg'),
    barChart({
      title: `Median wall time per scenario (${meta.dataset.count} XCFrameworks, ${(meta.dataset.totalBytes / MiB).toFixed(0)} MiB)`,
      groups,
      series: names.map((n) => labels[n]),
    }),
  )
  console.log('\n' + md)
  console.log(`Wrote ${path.relative(root, flags.out)}/results.md, results.json, chart.svg`)
  fs.rmSync(work, { recursive: true, force: true })
  if (rows.some((r) => !r.ok)) process.exitCode = 1
}

// The real-Mach-O presets (issue 31) compare archive formats rather than contenders: bench/macho.mjs.
const preset = process.argv.includes('--preset') ? process.argv[process.argv.indexOf('--preset') + 1] : undefined
if (preset === 'macho' || preset === 'macho-check') await import('./macho.mjs')
else
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error)
    process.exit(1)
  })
