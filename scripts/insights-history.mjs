#!/usr/bin/env node
// A synthetic history of run records, for the insights tests, the README's screenshot (scripts/insights-page.mjs)
// and the insights benchmark (bench/insights.mjs): by default 10,000 records over the 90 days up to
// 2026-11-30T10:00:00Z, made from a seeded generator, so every run of it makes the same bytes.
//
//   node scripts/insights-history.mjs --endpoint URL --bucket NAME [--prefix P] [--records N] [--days N]
//     puts the history into a bucket (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
//
// The story it tells: two repositories; pull requests (some in their own scope) restore, `main` produces, a nightly
// job saves with the sub-action, developers restore with the command line. On 2026-10-27 a new runner image brings
// Xcode 16.4; consumers that get it before the producers have built for it miss everything until 2026-10-29.
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { pathToFileURL } from 'node:url'

export const historyNow = new Date('2026-11-30T10:00:00Z')
const dayMs = 24 * 3600 * 1000

/** A small seeded generator (mulberry32): the same seed, the same history. */
function random(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const frameworks = [
  ['Alamofire', 6_200_000, 95_000],
  ['Kingfisher', 8_900_000, 120_000],
  ['Logging', 1_100_000, 30_000],
  ['OrderedCollections', 2_400_000, 45_000],
  ['DequeModule', 1_900_000, 40_000],
  ['ComposableArchitecture', 24_000_000, 410_000],
  ['CasePaths', 3_100_000, 60_000],
  ['Dependencies', 4_200_000, 75_000],
  ['SwiftSyntax', 38_000_000, 600_000],
  ['IdentifiedCollections', 1_300_000, 28_000],
  ['Perception', 2_200_000, 42_000],
  ['SnapKit', 3_300_000, 58_000],
]
const missReasons = ['pin-moved', 'dependency-moved', 'expired', 'not-produced-yet', 'inputs-changed', 'unreadable']
const oldXcode = '16.2 (16C5032a)'
const newXcode = '16.4 (16F6)'
const imageDay = '2026-10-27'
const producersCaughtUp = '2026-10-29'

const dayOf = (ms) => new Date(ms).toISOString().slice(0, 10)

/** How many records each day holds: weekdays 1, weekends 0.3, the last (partial) day its elapsed part. */
function perDay(total, days, now) {
  const last = Date.parse(`${dayOf(now.getTime())}T00:00:00Z`)
  const list = []
  for (let i = days - 1; i >= 0; i--) {
    const start = last - i * dayMs
    const weekday = new Date(start).getUTCDay()
    const weight = (weekday === 0 || weekday === 6 ? 0.3 : 1) * (i === 0 ? (now.getTime() - start) / dayMs : 1)
    list.push({ day: dayOf(start), start, end: i === 0 ? now.getTime() : start + dayMs, weight })
  }
  const sum = list.reduce((n, d) => n + d.weight, 0)
  let given = 0
  for (const d of list) given += d.count = Math.floor((d.weight / sum) * total)
  // The records left by rounding down go to the busiest days first (largest remainder).
  const order = [...list].sort((a, b) => (b.weight / sum) * total - b.count - ((a.weight / sum) * total - a.count))
  for (let i = 0; given < total; i++, given++) order[i % order.length].count += 1
  return list
}

function pick(rand, items) {
  return items[Math.floor(rand() * items.length)]
}

/** One run: what kind of job, what it found, what it did. */
function makeRecord(rand, day, time) {
  const kind = rand()
  const xcode = day < imageDay ? oldXcode : day >= producersCaughtUp || rand() < 0.5 ? newXcode : oldXcode
  const repository = rand() < 0.8 ? 'acme/ios-app' : 'acme/watch-app'
  let base
  if (kind < 0.08)
    base = {
      via: 'action',
      mode: 'consumer,producer',
      repository,
      workflow: 'Dependencies cache',
      event: 'push',
      ref: 'main',
    }
  else if (kind < 0.1)
    base = { via: 'save', mode: 'producer', repository, workflow: 'Nightly', event: 'schedule', ref: 'main' }
  else if (kind < 0.8) {
    const branch = `feature/${1 + Math.floor(rand() * 40)}`
    base = { via: 'action', mode: 'consumer', repository, workflow: 'CI', event: 'pull_request', ref: branch }
    if (rand() < 0.25) base.scope = `pr-${100 + Number(branch.slice(8))}`
  } else if (kind < 0.9)
    base = { via: 'restore', mode: 'consumer', repository, workflow: 'UI tests', event: 'pull_request', ref: 'main' }
  else base = { via: 'cli', mode: 'consumer' }

  const wanted = frameworks.slice(0, 6 + Math.floor(rand() * 7))
  const misses = []
  // A consumer on the new image before the producers built for it finds nothing of its Xcode.
  const wave = xcode === newXcode && day < producersCaughtUp && base.mode !== 'producer'
  if (base.mode === 'producer') {
    // The nightly save uploads what the day's builds left; it restores nothing.
  } else if (wave) {
    for (const [name] of wanted) misses.push({ target: name, reason: 'xcode-changed' })
  } else {
    const roll = rand()
    if (roll < 0.2) {
      const n = 1 + Math.floor(rand() * 3)
      for (const [name] of wanted.slice(-n)) misses.push({ target: name, reason: pick(rand, missReasons) })
    } else if (roll < 0.23) {
      for (const [name] of wanted) misses.push({ target: name, reason: 'not-produced-yet' })
    }
  }
  const missedNames = new Set(misses.map((m) => m.target))
  const got = base.mode === 'producer' ? [] : wanted.filter(([name]) => !missedNames.has(name))
  const kept = base.via === 'cli' && got.length > 0 && rand() < 0.3 ? got.length : 0
  const restored = got.length - kept
  const builds = base.via === 'action' ? misses.length : 0
  const uploaded =
    base.mode === 'producer' ? 1 + Math.floor(rand() * 4) : base.mode === 'consumer,producer' ? misses.length : 0
  const sizeOf = (name) => frameworks.find(([n]) => n === name)[1]
  const buildOf = (name) => frameworks.find(([n]) => n === name)[2]
  const restoredList = got.slice(0, restored)
  const record = {
    schema: 'scipio-s3-cache/run-record/v1',
    time: new Date(time).toISOString(),
    ...base,
    runner: { os: 'macOS', arch: base.via === 'cli' && rand() < 0.5 ? 'X64' : 'ARM64' },
    xcode,
    scipio: '0.33.0',
    counts: { restored, kept, built: builds, missed: misses.length, uploaded },
    reasons: {},
    misses,
    bytes: {
      down: restoredList.reduce((n, [name]) => n + sizeOf(name), 0),
      up: base.mode === 'consumer' ? 0 : wanted.slice(0, uploaded).reduce((n, [name]) => n + sizeOf(name), 0),
    },
    ms: {},
  }
  for (const m of misses) record.reasons[m.reason] = (record.reasons[m.reason] ?? 0) + 1
  if (base.mode !== 'producer') record.ms.restore = 2_000 + Math.floor(rand() * 3_000) + restored * 1_500
  if (builds > 0) record.ms.build = misses.reduce((n, m) => n + buildOf(m.target), 0)
  if (base.mode !== 'consumer') record.ms.save = 3_000 + uploaded * 4_000
  if (restored > 0) record.savedMs = restoredList.reduce((n, [name]) => n + buildOf(name), 0)
  // A few runs that missed too much to list: their records list some misses and count the rest.
  if (misses.length === wanted.length && rand() < 0.1) {
    record.missesOmitted = misses.length - 3
    record.misses = misses.slice(0, 3)
  }
  return record
}

/**
 * The history: `{ now, records: [{ day, name, record }] }`, records in key order. The names follow records/build.ts
 * (`<run id>-<attempt>-<job>-<via>-<random>`).
 */
export function syntheticHistory({ records = 10_000, days = 90, now = historyNow, seed = 32 } = {}) {
  const rand = random(seed)
  const out = []
  let runId = 9_000_000_000
  for (const d of perDay(records, days, now)) {
    for (let i = 0; i < d.count; i++) {
      const time = d.start + Math.floor(((i + rand()) / d.count) * (d.end - d.start))
      const record = makeRecord(rand, d.day, Math.min(time, d.end - 1))
      const attempt = rand() < 0.05 ? 2 : 1
      const suffix = Math.floor(rand() * 0xffffffff)
        .toString(16)
        .padStart(8, '0')
      const name = `${runId++}-${attempt}-build-${record.via}-${suffix}`
      out.push({ day: d.day, name, record })
    }
  }
  return { now, records: out }
}

/** `<prefix>/.scipio-s3-cache-runs/<yyyy>/<mm>/<dd>/<name>.json`, as records/layout.ts names a record. */
export function historyKey(prefix, day, name) {
  const [yyyy, mm, dd] = day.split('-')
  return `${prefix ? `${prefix}/` : ''}.scipio-s3-cache-runs/${yyyy}/${mm}/${dd}/${name}.json`
}

/** Puts every record of `history` into the bucket, `concurrency` at a time. */
export async function putHistory(client, bucket, prefix, history, concurrency = 32) {
  let next = 0
  const worker = async () => {
    while (next < history.records.length) {
      const { day, name, record } = history.records[next++]
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: historyKey(prefix, day, name),
          Body: JSON.stringify(record),
          ContentType: 'application/json',
        }),
      )
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2)
  const flag = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback)
  const endpoint = flag('--endpoint')
  const bucket = flag('--bucket')
  if (!endpoint || !bucket) {
    console.error(
      'usage: node scripts/insights-history.mjs --endpoint URL --bucket NAME [--prefix P] [--records N] [--days N]',
    )
    process.exit(2)
  }
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  const history = syntheticHistory({ records: Number(flag('--records', '10000')), days: Number(flag('--days', '90')) })
  const started = Date.now()
  await putHistory(client, bucket, flag('--prefix', ''), history)
  console.log(`Put ${history.records.length} run records in ${((Date.now() - started) / 1000).toFixed(1)} s.`)
}
