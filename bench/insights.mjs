// npm run bench -- --preset insights [--records 10000] [--days 90] [--reps 3] [--rtt-ms N] [--concurrency 8] [--out DIR]
// The time and requests of `scipio-s3-cache insights` (the bundle in dist/cli/) on the synthetic history
// (scripts/insights-history.mjs): the first report, which reads every record and writes a roll-up per past day, and
// the second, which reads the roll-ups and the last day's records. Each repetition deletes the roll-ups first, so
// that its first report is a first one again. An S3 server on loopback behind the counting proxy (bench/proxy.mjs).
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import { historyNow, putHistory, syntheticHistory } from '../scripts/insights-history.mjs'
import { gnuTime, measure } from './measure.mjs'
import { startCountingProxy } from './proxy.mjs'
import { startS3ServerProcess } from '../scripts/s3-server-process.mjs'

const root = path.resolve(import.meta.dirname, '..')
const bucket = 'bench'
const prefix = 'scipio'
const credentials = { key: 'AKIABENCH0000000', secret: 'bench-secret-000000000000000' }

function flagsOf(argv) {
  const flag = (name, fallback) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : fallback)
  return {
    records: Number(flag('--records', '10000')),
    days: Number(flag('--days', '90')),
    reps: Number(flag('--reps', '3')),
    rttMs: Number(flag('--rtt-ms', '0')),
    concurrency: flag('--concurrency', '8'),
    out: path.resolve(flag('--out', path.join(root, 'bench/results/insights'))),
  }
}

async function deleteRollups(client) {
  const page = await client.send(
    new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/.scipio-s3-cache-runs/rollups/` }),
  )
  const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }))
  if (keys.length) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }))
  return keys.length
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]
}
const sync = () => new Promise((resolve) => spawn('sync').once('exit', resolve))

export async function main(argv) {
  const flags = flagsOf(argv)
  const cli = path.join(root, 'dist/cli/index.js')
  if (!fs.existsSync(cli)) throw new Error('dist/cli/index.js is missing: run npm run bundle first')
  const node24 = fs.existsSync(path.join(root, '.node24/bin/node'))
    ? path.join(root, '.node24/bin/node')
    : process.execPath
  const work = path.join(root, 'bench/.work', String(process.pid))
  fs.rmSync(work, { recursive: true, force: true })
  fs.mkdirSync(work, { recursive: true })
  const server = await startS3ServerProcess({ dir: path.join(work, 's3'), bucket, ...credentials })
  const proxy = await startCountingProxy(server.port)
  proxy.setLink({ rttMs: flags.rttMs })
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: `http://127.0.0.1:${server.port}`,
    forcePathStyle: true,
    credentials: { accessKeyId: credentials.key, secretAccessKey: credentials.secret },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  const rows = []
  try {
    const history = syntheticHistory({ records: flags.records, days: flags.days })
    console.log(`Putting ${history.records.length} records over ${flags.days} days into the S3 server...`)
    await putHistory(client, bucket, prefix, history)
    const args = [
      cli,
      'insights',
      ...['--bucket', bucket, '--endpoint', proxy.endpoint, '--force-path-style', '--prefix', prefix],
      ...['--since', `${flags.days}d`, '--until', historyNow.toISOString(), '--json', '--quiet'],
      ...['--concurrency', flags.concurrency],
    ]
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? work,
      AWS_ACCESS_KEY_ID: credentials.key,
      AWS_SECRET_ACCESS_KEY: credentials.secret,
      AWS_EC2_METADATA_DISABLED: 'true',
    }
    for (let rep = 0; rep < flags.reps; rep++) {
      await deleteRollups(client)
      const outputs = []
      for (const report of ['first', 'second']) {
        await sync()
        proxy.reset()
        const run = await measure(node24, args, { env, cwd: work })
        const traffic = proxy.reset()
        if (run.code !== 0) throw new Error(`the ${report} report failed (${run.code}): ${run.stderr}`)
        const json = JSON.parse(run.stdout)
        outputs.push(JSON.stringify({ ...json, reads: undefined, cache: undefined }))
        const row = {
          rep: rep + 1,
          report,
          wallS: run.wallS,
          cpuS: run.cpuS,
          rssMB: run.rssMB,
          requests: traffic.requests,
          methods: traffic.methods,
          reads: json.reads,
        }
        rows.push(row)
        console.log(
          `  rep ${row.rep} ${report.padEnd(6)} ${row.wallS.toFixed(2).padStart(7)} s  cpu ${row.cpuS?.toFixed(2) ?? '?'} s  rss ${row.rssMB?.toFixed(0) ?? '?'} MB  ${row.requests} requests ${JSON.stringify(row.methods)}`,
        )
      }
      if (outputs[0] !== outputs[1]) throw new Error('the second report differs from the first')
    }
  } finally {
    await proxy.close()
    await server.stop()
    fs.rmSync(work, { recursive: true, force: true })
  }
  const summary = ['first', 'second'].map((report) => {
    const mine = rows.filter((r) => r.report === report)
    return {
      report,
      n: mine.length,
      wallS: median(mine.map((r) => r.wallS)),
      cpuS: gnuTime ? median(mine.map((r) => r.cpuS)) : undefined,
      rssMB: gnuTime ? median(mine.map((r) => r.rssMB)) : undefined,
      requests: median(mine.map((r) => r.requests)),
    }
  })
  fs.mkdirSync(flags.out, { recursive: true })
  const meta = {
    records: flags.records,
    days: flags.days,
    reps: flags.reps,
    rttMs: flags.rttMs,
    concurrency: Number(flags.concurrency),
    node: node24 === process.execPath ? process.version : '.node24',
    cpus: (await import('node:os')).cpus().length,
    date: new Date().toISOString(),
  }
  fs.writeFileSync(path.join(flags.out, 'results.json'), `${JSON.stringify({ meta, rows, summary }, null, 2)}\n`)
  const f = (n, digits = 2) => (n === undefined ? '' : n.toFixed(digits))
  const md = [
    `# insights on ${flags.records} records over ${flags.days} days (${flags.reps} repetitions, medians; RTT ${flags.rttMs} ms)`,
    '',
    '| report | wall s | CPU s | peak RSS MB | requests |',
    '| --- | --- | --- | --- | --- |',
    ...summary.map((s) => `| ${s.report} | ${f(s.wallS)} | ${f(s.cpuS)} | ${f(s.rssMB, 0)} | ${s.requests} |`),
    '',
  ].join('\n')
  fs.writeFileSync(path.join(flags.out, 'results.md'), md)
  console.log(`\n${md}`)
}
