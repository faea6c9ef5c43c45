import { describe, expect, it, vi } from 'vitest'
import { Formats } from '../src/constants.js'
import { StorageError } from '../src/errors.js'
import type { Explanation, MissReason } from '../src/explain/explain.js'
import type { Log } from '../src/log.js'
import { buildRecord, modeOf, recordName, type RunFacts } from '../src/records/build.js'
import { afterRunsFolder } from '../src/bucket/layout.js'
import { dayOfRecordKey, dayOfRollupKey, recordKey, rollupKey } from '../src/records/layout.js'
import { classifyMisses, countReasons } from '../src/records/reasons.js'
import { missReasons, parseRecord, recordLimits, serializeRecord, type RunRecord } from '../src/records/record.js'
import { writeRecord } from '../src/records/write.js'
import type { RunReport } from '../src/report/report.js'
import type { RestoredTarget, RestoreOutcome } from '../src/restore/outcome.js'
import type { Storage } from '../src/storage/index.js'
import { graphFixture } from './helpers/workspace.js'

const outcome = (targets: Partial<RestoredTarget>[], packagesMissing: string[] = [], problems: string[] = []) =>
  ({
    indexes: new Map(),
    packagesMissing,
    targets: targets.map((t) => ({ package: 'p', result: 'missed', bytes: 0, ms: 0, targetName: 'T', ...t })),
    complete: false,
    problems,
  }) as RestoreOutcome

const reason = (pkg: string, kind: MissReason['kind'], extra: Partial<MissReason> = {}): MissReason => ({
  package: pkg,
  label: pkg,
  kind,
  text: 'why',
  ...extra,
})

const explanation = (reasons: MissReason[]): Explanation => ({ reasons, cacheAnswered: true })

const silent: Log = { info: () => undefined, warning: () => undefined, debug: () => undefined, group: (_n, fn) => fn() }

describe('a miss in the insights words (records/reasons.ts)', () => {
  it('packages with no index take their explanation: not produced yet, Xcode or other inputs changed, expired, unreadable', () => {
    const restore = outcome(
      [],
      ['new-pkg', 'xcode-pkg', 'salt-pkg', 'lost-pkg', 'broken-pkg', 'unexplained-pkg', 'quiet-pkg'],
      ['broken-pkg: the index is not valid JSON'],
    )
    const why = explanation([
      reason('new-pkg', 'not-stored'),
      reason('xcode-pkg', 'inputs-differ', { xcodeChanged: true }),
      reason('salt-pkg', 'inputs-differ'),
      reason('lost-pkg', 'index-lost'),
      reason('broken-pkg', 'index-lost'),
      reason('unexplained-pkg', 'unexplained'),
    ])
    expect(classifyMisses(restore, why)).toEqual([
      { package: 'broken-pkg', reason: 'unreadable' },
      { package: 'lost-pkg', reason: 'expired' },
      { package: 'new-pkg', reason: 'not-produced-yet' },
      // No explanation (the command line's restore reads no pin records): a 404 is "not produced yet".
      { package: 'quiet-pkg', reason: 'not-produced-yet' },
      { package: 'salt-pkg', reason: 'inputs-changed' },
      { package: 'unexplained-pkg', reason: 'unreadable' },
      { package: 'xcode-pkg', reason: 'xcode-changed' },
    ])
  })

  it("a package whose dependents were stored for its earlier version moved; they are 'dependency moved'", () => {
    const restore = outcome(
      [
        { targetName: 'Kingfisher', cause: 'swift-log 1.6.1 → 1.6.2', reason: 'its dependency Logging changed' },
        { targetName: 'Other', cause: 'swift-nio is now 2.0.0' },
        { targetName: 'Third', cause: 'swift-log 1.6.2 built against other dependencies' },
      ],
      ['swift-log', 'swift-nio', 'swift-syntax'],
    )
    const why = explanation(['swift-log', 'swift-nio', 'swift-syntax'].map((p) => reason(p, 'not-stored')))
    expect(classifyMisses(restore, why)).toEqual([
      { package: 'swift-log', reason: 'pin-moved' },
      { package: 'swift-nio', reason: 'pin-moved' },
      { package: 'swift-syntax', reason: 'not-produced-yet' },
      { target: 'Kingfisher', reason: 'dependency-moved' },
      { target: 'Other', reason: 'dependency-moved' },
      { target: 'Third', reason: 'dependency-moved' },
    ])
  })

  it('a framework whose archive is gone expired; damaged bytes, faults and the time limit are unreadable', () => {
    const restore = outcome([
      { targetName: 'Gone', miss: 'absent' },
      { targetName: 'Damaged', miss: 'damaged' },
      { targetName: 'Slow', miss: 'unavailable', reason: 'cache time limit reached' },
      { targetName: 'Fine', result: 'restored' },
    ])
    expect(classifyMisses(restore, explanation([]))).toEqual([
      { target: 'Damaged', reason: 'unreadable' },
      { target: 'Gone', reason: 'expired' },
      { target: 'Slow', reason: 'unreadable' },
    ])
  })

  it('counts every reason', () => {
    expect(
      countReasons([
        { target: 'a', reason: 'expired' },
        { target: 'b', reason: 'expired' },
        { package: 'c', reason: 'pin-moved' },
      ]),
    ).toEqual({ expired: 2, 'pin-moved': 1 })
  })
})

const toolchain = { xcodeVersion: '16.2', xcodeBuildVersion: '16C5032a', scipioSha256: 'c'.repeat(64) }
const runnerEnv = {
  GITHUB_REPOSITORY: 'acme/ios-app',
  GITHUB_WORKFLOW: 'CI',
  GITHUB_EVENT_NAME: 'pull_request',
  GITHUB_HEAD_REF: 'feature/login',
  GITHUB_REF_NAME: '12/merge',
  GITHUB_RUN_ID: '9876543210',
  GITHUB_RUN_ATTEMPT: '2',
  GITHUB_JOB: 'build',
  RUNNER_OS: 'macOS',
  RUNNER_ARCH: 'ARM64',
}

function facts(report: RunReport, extra: Partial<RunFacts> = {}): RunFacts {
  return { via: 'action', report, toolchain, time: new Date('2026-11-30T09:15:00.000Z'), env: runnerEnv, ...extra }
}

describe('a run record (records/build.ts, records/record.ts)', () => {
  const restored = (name: string, bytes: number, buildMs?: number): RestoredTarget =>
    ({
      targetName: name,
      package: 'p',
      result: 'restored',
      bytes,
      ms: 10,
      ...(buildMs !== undefined ? { entry: { buildMs } } : {}),
    }) as RestoredTarget

  it("a consumer's: counts, reasons, bytes, times, what the hits saved, and the workflow's names", () => {
    const report: RunReport = {
      restore: {
        ...outcome(
          [restored('A', 100, 60_000), restored('B', 50, 30_000), { targetName: 'C', miss: 'absent' }],
          ['new'],
        ),
      },
      explanation: explanation([reason('new', 'not-stored')]),
      built: ['C', 'NewTarget'],
      buildSkipped: false,
      restoreMs: 1200,
      buildMs: 90_000,
    }
    const record = buildRecord(facts(report, { scipioVersion: '0.33.0' }))
    expect(record).toEqual({
      schema: Formats.runRecord,
      time: '2026-11-30T09:15:00.000Z',
      via: 'action',
      mode: 'consumer',
      repository: 'acme/ios-app',
      workflow: 'CI',
      event: 'pull_request',
      ref: 'feature/login',
      runner: { os: 'macOS', arch: 'ARM64' },
      xcode: '16.2 (16C5032a)',
      scipio: '0.33.0',
      counts: { restored: 2, kept: 0, built: 2, missed: 2, uploaded: 0 },
      reasons: { 'not-produced-yet': 1, expired: 1 },
      misses: [
        { package: 'new', reason: 'not-produced-yet' },
        { target: 'C', reason: 'expired' },
      ],
      bytes: { down: 150, up: 0 },
      ms: { restore: 1200, build: 90_000 },
      savedMs: 90_000,
    } satisfies RunRecord)
    expect(parseRecord(JSON.parse(serializeRecord(record)))).toEqual(record)
  })

  it("a producer's: uploads and the save's time; without a runner, this machine's OS and no workflow names", () => {
    const report: RunReport = {
      built: ['A'],
      buildSkipped: false,
      save: {
        targets: [{ targetName: 'A', package: 'p', result: 'uploaded', bytes: 700, ms: 5 }],
        unmatched: [],
        indexesWritten: 1,
        markedComplete: true,
        problems: [],
      },
      buildMs: 40_000,
      saveMs: 3000,
    }
    const record = buildRecord(facts(report, { via: 'cli', env: {}, scope: 'feature-login' }))
    expect(modeOf(report)).toBe('producer')
    expect(record).toMatchObject({
      via: 'cli',
      mode: 'producer',
      scope: 'feature-login',
      scipio: `sha256:${'c'.repeat(12)}`,
      counts: { restored: 0, kept: 0, built: 1, missed: 0, uploaded: 1 },
      bytes: { down: 0, up: 700 },
      ms: { build: 40_000, save: 3000 },
    })
    for (const absent of ['repository', 'workflow', 'event', 'ref', 'savedMs'])
      expect(record).not.toHaveProperty(absent)
    expect(record.runner.os).toMatch(/^(Linux|macOS|Windows|\w+)$/)
  })

  it('holds no environment value but those named, and texts only of safe characters', () => {
    const env = {
      ...runnerEnv,
      GITHUB_WORKFLOW: 'CI <script>alert(1)</script>',
      GITHUB_TOKEN: 'ghs_TokenThatMustNeverBeStored000',
      AWS_SECRET_ACCESS_KEY: 'SecretThatMustNeverBeStored0000',
      ACTIONS_RUNTIME_TOKEN: 'RuntimeTokenMustNeverBeStored000',
      HOME: '/Users/someone-private',
    }
    const text = serializeRecord(buildRecord(facts({ built: [], buildSkipped: true }, { env })))
    for (const value of [env.GITHUB_TOKEN, env.AWS_SECRET_ACCESS_KEY, env.ACTIONS_RUNTIME_TOKEN, env.HOME, '<', '>'])
      expect(text).not.toContain(value)
    expect(JSON.parse(text).workflow).toBe('CI ?script?alert(1)?/script?')
    expect(parseRecord(JSON.parse(text))).toBeDefined()
  })

  it("stays within 2 KB when swift-composable-architecture's 38 frameworks all miss: listed as fit, all counted", async () => {
    const graph = await graphFixture('composable-architecture')
    const targets = Object.values(graph.packages).flatMap((p) => p.targets.map((t) => t.name))
    expect(targets.length).toBe(38)
    const report: RunReport = {
      restore: outcome(targets.map((targetName) => ({ targetName, miss: 'damaged' as const }))),
      built: targets,
      buildSkipped: false,
    }
    const record = buildRecord(facts(report))
    const text = serializeRecord(record)
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(recordLimits.bytes)
    const stored = parseRecord(JSON.parse(text))!
    expect(stored.counts.missed).toBe(38)
    expect(stored.reasons).toEqual({ unreadable: 38 })
    expect(stored.misses.length).toBeGreaterThan(10)
    expect(stored.misses.length).toBeLessThan(38)
    expect(stored.misses.length + stored.missesOmitted!).toBe(38)
    // As many as fit: one more would not.
    const oneMore = JSON.stringify({ ...stored, misses: record.misses.slice(0, stored.misses.length + 1) })
    expect(Buffer.byteLength(oneMore)).toBeGreaterThan(recordLimits.bytes)
  })

  it('stays within 2 KB with every text at its longest', () => {
    const long = 'x'.repeat(500)
    const env = {
      GITHUB_REPOSITORY: long,
      GITHUB_WORKFLOW: long,
      GITHUB_EVENT_NAME: long,
      GITHUB_HEAD_REF: long,
      RUNNER_OS: long,
      RUNNER_ARCH: long,
    }
    const report: RunReport = { built: [], buildSkipped: true, restoreMs: 1, buildMs: 2, saveMs: 3 }
    const record = buildRecord(
      facts(report, {
        env,
        scope: long,
        scipioVersion: long,
        toolchain: { xcodeVersion: long, xcodeBuildVersion: long, scipioSha256: 'c'.repeat(64) },
      }),
    )
    const text = serializeRecord({ ...record, misses: [{ target: 'x'.repeat(recordLimits.text), reason: 'expired' }] })
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(recordLimits.bytes)
    expect(parseRecord(JSON.parse(text))).toBeDefined()
  })

  it("is named for the run id, attempt, job and entry, with a random part; unsafe characters can't shape the key", () => {
    expect(recordName('restore', runnerEnv, 'abcd0123')).toBe('9876543210-2-build-restore-abcd0123')
    expect(recordName('cli', {}, 'abcd0123')).toBe('local-0-none-cli-abcd0123')
    expect(recordName('save', { GITHUB_JOB: '../../x y' }, '00')).toBe('local-0-______x_y-save-00')
    expect(recordName('save', runnerEnv)).not.toBe(recordName('save', runnerEnv))
  })
})

describe('reading a record (untrusted input)', () => {
  const valid = JSON.parse(
    serializeRecord(buildRecord(facts({ built: [], buildSkipped: true, restoreMs: 5 }))),
  ) as Record<string, unknown>

  it.each([
    ['another schema', { schema: 'other' }],
    ['markup in a text', { workflow: '<img src=x>' }],
    ['a text too long', { ref: 'r'.repeat(recordLimits.text + 1) }],
    ['an unknown reason', { reasons: { 'made-up': 1 } }],
    ['a negative count', { counts: { restored: -1, kept: 0, built: 0, missed: 0, uploaded: 0 } }],
    ['a fractional byte count', { bytes: { down: 1.5, up: 0 } }],
    ['an unknown entry point', { via: 'browser' }],
    ['a time that is no time', { time: 'yesterday' }],
    ['a miss that names both', { misses: [{ target: 'a', package: 'b', reason: 'expired' }] }],
    ['too many misses', { misses: Array.from({ length: 201 }, () => ({ target: 'a', reason: 'expired' })) }],
  ])('refuses %s', (_what, change) => {
    expect(parseRecord(valid)).toBeDefined()
    expect(parseRecord({ ...valid, ...change })).toBeUndefined()
  })

  it('takes every reason of the vocabulary', () => {
    const reasons = Object.fromEntries(missReasons.map((r) => [r, 1]))
    expect(parseRecord({ ...valid, reasons })?.reasons).toEqual(reasons)
  })
})

describe('where records live (records/layout.ts)', () => {
  it('under <prefix>/.scipio-s3-cache-runs/<yyyy>/<mm>/<dd>/, roll-ups under rollups/', () => {
    expect(recordKey('cache', '2026-11-30', 'n')).toBe('cache/.scipio-s3-cache-runs/2026/11/30/n.json')
    expect(recordKey('', '2026-01-02', 'n')).toBe('.scipio-s3-cache-runs/2026/01/02/n.json')
    expect(dayOfRecordKey('cache', 'cache/.scipio-s3-cache-runs/2026/11/30/n.json')).toBe('2026-11-30')
    expect(dayOfRecordKey('cache', 'cache/.scipio-s3-cache-runs/rollups/2026-11-30.json')).toBeUndefined()
    expect(rollupKey('cache', '2026-11-30')).toBe('cache/.scipio-s3-cache-runs/rollups/2026-11-30.json')
    expect(dayOfRollupKey('cache', rollupKey('cache', '2026-11-30'))).toBe('2026-11-30')
  })

  it('sort before everything else of the cache: a listing that starts after them skips only them', () => {
    const after = afterRunsFolder('cache')
    const order = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b))
    for (const key of [
      recordKey('cache', '2026-11-30', '9-1-build-action-ff'),
      'cache/.scipio-s3-cache-runs/rollups/x.json',
    ])
      expect(order(key, after)).toBeLessThan(0)
    for (const key of [
      'cache/.scipio-s3-cache/packages/a.json',
      'cache/.scipio-s3-cache-scopes/pr-1/x',
      'cache/0Target/k/s.tar.zst',
      'cache/Alamofire/k/s.tar.zst',
      'cache/_Private/k/s.tar.zst',
    ])
      expect(order(key, after)).toBeGreaterThan(0)
  })
})

describe('writing a record (records/write.ts)', () => {
  const store = (put: Storage['put'], writable = true): Storage => ({
    description: 's3://test',
    writable,
    head: () => Promise.resolve(undefined),
    get: () => Promise.resolve(undefined),
    put,
  })

  it('is one PUT of the JSON, no ACL', async () => {
    const put = vi.fn<Storage['put']>(() => Promise.resolve())
    expect(await writeRecord(store(put), 'k.json', '{"a":1}', silent)).toBe(true)
    expect(put).toHaveBeenCalledTimes(1)
    const [key, body, options] = put.mock.calls[0]!
    expect([key, String(body), options.publicRead, options.acl, options.contentType]).toEqual([
      'k.json',
      '{"a":1}',
      false,
      undefined,
      'application/json',
    ])
  })

  it('refused (403) or read-only: one debug line, no warning, no throw', async () => {
    for (const storage of [
      store(() => Promise.reject(new StorageError('PutObject s3://b/k: access denied (403)', false, 403, true))),
      store(() => Promise.reject(new Error('unexpected')), false),
    ]) {
      const log = { ...silent, debug: vi.fn(), warning: vi.fn(), info: vi.fn() }
      expect(await writeRecord(storage, 'k.json', '{}', log)).toBe(false)
      expect(log.debug).toHaveBeenCalledTimes(1)
      expect(log.warning).not.toHaveBeenCalled()
      expect(log.info).not.toHaveBeenCalled()
    }
  })
})
