import { HeadObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import * as path from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { runAction, type ActionRun, s3TestInputs } from './helpers/action.js'
import { exampleTargets, exampleWorkspace, readDoubleLog } from './helpers/workspace.js'
import { faults, isAnyPut, isArchiveGet, isArchivePut, isIndexGet, isMarkerGet, limited } from './helpers/proxy.js'
import { snapshotTree } from './helpers/tree.js'
import { useStore } from './helpers/store.js'
import { isRunsRequest } from './helpers/records.js'
import { startCdn } from './helpers/cdn.js'
import { defaultRetryPolicy } from '../src/retry.js'
import { sdkMaxAttempts } from '../src/storage/s3.js'
import { indexReadsInFlight } from '../src/restore/in-flight.js'
import { listedEntries } from './helpers/index-doc.js'

const bucket = 'fault-cache'
const prefix = 'faults'
const allTargets = exampleTargets

const store = useStore([bucket])
let producerOut: Record<string, string>

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...s3TestInputs(store.proxy.endpoint, bucket),
    prefix,
    ...extra,
  }
}

const list = (run: ActionRun, name: string) => JSON.parse(run.outputs[name] ?? 'null') as string[]
const warnings = (run: ActionRun) => run.stdout.split('\n').filter((l) => l.startsWith('::warning::'))

beforeAll(async () => {
  const ws = await exampleWorkspace()
  const run = await runAction(inputs({ mode: 'producer', 'package-directory': ws }))
  expect(run.code, run.stdout).toBe(0)
  producerOut = await snapshotTree(path.join(ws, 'XCFrameworks'))
})
afterEach(() => {
  store.proxy.fault = undefined
})

/** A consumer run through the proxy into a fresh workspace. */
async function consume(extra: Record<string, string> = {}, entry?: string) {
  const ws = await exampleWorkspace()
  const log = path.join(ws, 'double.log')
  const run = await runAction(inputs({ 'package-directory': ws, ...extra }), { SCIPIO_TEST_DOUBLE_LOG: log }, entry)
  const built = (await readDoubleLog(log))
    .filter((e) => e.event === 'built')
    .map((e) => e.target)
    .sort()
  return { run, ws, built, out: path.join(ws, 'XCFrameworks') }
}

describe('transient faults are retried and the restore completes', () => {
  it.each([
    ['a connection reset mid-body', faults.resetMidBody()],
    ['a truncated body', faults.truncate()],
    ['a flipped byte', faults.flipByte()],
    ['a 500', faults.status(500, 'InternalError')],
    ['a 503 SlowDown', faults.status(503, 'SlowDown', 'Please reduce your request rate.')],
  ])('%s on two archive downloads', async (_name, fault) => {
    const injected = limited(isArchiveGet, 2, fault)
    store.proxy.fault = injected
    const { run, built, out } = await consume()
    expect(run.code, run.stdout).toBe(0)
    expect(injected.hits()).toBe(2)
    expect(list(run, 'restored')).toEqual(allTargets)
    expect(built).toEqual([])
    expect(await snapshotTree(out)).toEqual(producerOut)
  })

  it('an archive upload that fails twice (a 500, then a dropped connection) is sent again from its file', async () => {
    const failures = [faults.status(500, 'InternalError'), faults.drop()]
    const injected = limited(
      (req) => isArchivePut(req) && req.url!.includes('/Kingfisher/'),
      2,
      (req, res, forward) => failures.shift()!(req, res, forward),
    )
    store.proxy.fault = injected
    const ws = await exampleWorkspace()
    const run = await runAction(inputs({ mode: 'producer', prefix: 'put-retry', 'package-directory': ws }))
    expect(run.code, run.stdout).toBe(0)
    expect(injected.hits()).toBe(2)
    expect(list(run, 'uploaded')).toEqual(allTargets)
    store.proxy.fault = undefined
    const { run: consumer, out } = await consume({ prefix: 'put-retry' })
    expect(list(consumer, 'restored')).toEqual(allTargets)
    expect(await snapshotTree(out)).toEqual(await snapshotTree(path.join(ws, 'XCFrameworks')))
  })

  it('a stalled download is aborted after stall-timeout-seconds and retried', async () => {
    const injected = limited(isArchiveGet, 1, faults.stall())
    store.proxy.fault = injected
    const started = Date.now()
    const { run, out } = await consume({ 'stall-timeout-seconds': '1' })
    expect(run.code, run.stdout).toBe(0)
    expect(injected.hits()).toBe(1)
    expect(list(run, 'restored')).toEqual(allTargets)
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(await snapshotTree(out)).toEqual(producerOut)
  })
})

describe('persistent faults are misses: warned, built, never a wrong binary', () => {
  it('a corrupted archive is never extracted; the target is built', async () => {
    store.proxy.fault = limited(
      (req) => isArchiveGet(req) && req.url!.includes('/Kingfisher/'),
      Infinity,
      faults.flipByte(),
    )
    const { run, built, out } = await consume()
    expect(run.code, run.stdout).toBe(0)
    expect(built).toEqual(['Kingfisher'])
    expect(list(run, 'restored')).toEqual(allTargets.filter((t) => t !== 'Kingfisher'))
    expect(warnings(run).join('\n')).toMatch(
      /Cache miss for Kingfisher \(kingfisher\): integrity check failed: (SHA-256 .* differs|the archive is corrupted)/,
    )
    expect(run.outputs['cache-hit']).toBe('false')
    expect(await snapshotTree(out)).toEqual(producerOut) // built by the double: the same bytes
  })

  it('a truncated archive is a miss reported as such', async () => {
    store.proxy.fault = limited(
      (req) => isArchiveGet(req) && req.url!.includes('/Logging/'),
      Infinity,
      faults.truncate(),
    )
    const { run, built } = await consume()
    expect(run.code).toBe(0)
    expect(built).toEqual(['Logging'])
    expect(warnings(run).join('\n')).toMatch(/Cache miss for Logging .*(integrity check failed|download failed)/)
  })

  it('an index that is not JSON is a miss for its package', async () => {
    // Without the marker (an unmarked set, a partial hit) the consumer reads the indexes.
    store.proxy.fault = limited(
      (req) => isIndexGet(req) || isMarkerGet(req),
      Infinity,
      (req, res) => {
        if (isMarkerGet(req)) return faults.status(404, 'NoSuchKey')(req, res, () => undefined)
        req.resume()
        res.writeHead(200, { 'content-length': 9 })
        res.end('not json!')
        return true
      },
    )
    const { run, built } = await consume()
    expect(run.code).toBe(0)
    expect(built).toEqual(allTargets)
    expect(warnings(run)).toHaveLength(5)
    expect(warnings(run).join('\n')).toMatch(/Cannot use the cache index of apngkit .* is not valid JSON/)
  })

  it('strict turns a cache error into a failed step (after building)', async () => {
    store.proxy.fault = limited(
      (req) => isArchiveGet(req) && req.url!.includes('/Delegate/'),
      Infinity,
      faults.flipByte(),
    )
    const { run, built } = await consume({ strict: 'true' })
    expect(built).toEqual(['Delegate'])
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(/::error::strict: the cache had 1 errors: Delegate: integrity check failed: /)
  })
})

describe('retries, as docs/troubleshooting.md counts them', () => {
  it(`an archive download is tried ${defaultRetryPolicy.attempts} times in all; each SDK request inside an attempt up to ${sdkMaxAttempts} times`, async () => {
    const archive = limited(
      (req) => isArchiveGet(req) && req.url!.includes('/Delegate/'),
      Infinity,
      faults.status(500, 'InternalError'),
    )
    const marker = limited(isMarkerGet, Infinity, faults.status(500, 'InternalError'))
    store.proxy.fault = (req, res, forward) => marker(req, res, forward) || archive(req, res, forward)
    const { run } = await consume()
    expect(run.code, run.stdout).toBe(0)
    // The marker is read once (no retry of the action's own): the SDK's attempts only.
    expect(marker.hits()).toBe(sdkMaxAttempts)
    // An archive is downloaded by an extraction thread with Node's own client: the action's attempts only.
    expect(archive.hits()).toBe(defaultRetryPolicy.attempts)
  })

  it(`an index read: ${defaultRetryPolicy.attempts} attempts of the action's, each of them up to ${sdkMaxAttempts} of the SDK's`, async () => {
    const marker = limited(isMarkerGet, Infinity, faults.status(500, 'InternalError'))
    const index = limited(isIndexGet, Infinity, faults.status(500, 'InternalError'))
    store.proxy.fault = (req, res, forward) => marker(req, res, forward) || index(req, res, forward)
    const from = store.proxy.requests.length
    const { run, built } = await consume()
    expect(run.code, run.stdout).toBe(0)
    expect(built).toEqual(allTargets)
    // The SDK numbers its attempts of each request (amz-sdk-request: attempt=N; max=M).
    const reads = store.proxy.requests.slice(from).filter((r) => isIndexGet(r as never))
    const attempt = (r: (typeof reads)[number]) => /attempt=(\d+); max=(\d+)/.exec(String(r.headers['amz-sdk-request']))
    const firsts = new Map<string, number>()
    for (const r of reads) if (attempt(r)?.[1] === '1') firsts.set(r.url, (firsts.get(r.url) ?? 0) + 1)
    expect([...firsts.values()]).toEqual(Array(5).fill(defaultRetryPolicy.attempts))
    expect(new Set(reads.map((r) => attempt(r)?.[2]))).toEqual(new Set([String(sdkMaxAttempts)]))
    expect(Math.max(...reads.map((r) => Number(attempt(r)?.[1])))).toBe(sdkMaxAttempts)
    expect(reads.length).toBeLessThanOrEqual(5 * defaultRetryPolicy.attempts * sdkMaxAttempts)
  })
})

describe('concurrency bounds the index reads too (action.yml)', () => {
  it(`concurrency: 1 reads at most ${indexReadsInFlight(1)} package indexes at once`, async () => {
    let active = 0
    let peak = 0
    const marker = limited(isMarkerGet, Infinity, faults.status(500, 'InternalError'))
    store.proxy.fault = (req, res, forward) => {
      if (marker(req, res, forward)) return true
      if (!isIndexGet(req)) return false
      active += 1
      peak = Math.max(peak, active)
      res.once('close', () => (active -= 1))
      setTimeout(() => forward(), 150) // long enough for every read the restore allows to arrive meanwhile
      return true
    }
    const { run, built } = await consume({ concurrency: '1' })
    expect(run.code, run.stdout).toBe(0)
    expect(built).toEqual([])
    expect(peak).toBe(indexReadsInFlight(1))
  })
})

describe('a 403, for each kind of reader (docs/storage.md)', () => {
  it('through public-url: one refused read is a miss; every read refused is one warning, and strict fails the step', async () => {
    const cdn = await startCdn(store.s3.endpoint, bucket, '/cache', 403)
    try {
      const anonymous = {
        bucket: '',
        region: '',
        'access-key-id': '',
        'secret-access-key': '',
        'public-url': cdn.baseUrl,
      }
      const { run, built } = await consume({ ...anonymous, prefix: 'nothing-stored-here' })
      expect(run.code, run.stdout).toBe(0)
      expect(built).toEqual(allTargets)
      expect(warnings(run)).toHaveLength(1)
      expect(warnings(run)[0]).toMatch(
        /^::warning::The cache is unavailable: every read of the cache was refused \(403 AccessDenied\): all 6 .*the objects must be public.*a public bucket answers 403, not 404, for a missing key/,
      )
      const strict = await consume({ ...anonymous, prefix: 'nothing-stored-here', strict: 'true' })
      expect(strict.run.code).toBe(1)
      expect(strict.run.stdout).toMatch(/::error::strict: .*every read of the cache was refused/)
      // The stored set, with one archive hidden: a miss for that framework alone (absent), no cache-wide failure.
      const hidden = limited(
        (req) => isArchiveGet(req) && req.url!.includes('/Kingfisher/'),
        Infinity,
        faults.status(403, 'AccessDenied'),
      )
      store.proxy.fault = hidden
      const partial = await consume({ ...anonymous, 'public-url': `${store.endpoint}/${bucket}` })
      expect(partial.run.code, partial.run.stdout).toBe(0)
      expect(partial.built).toEqual(['Kingfisher'])
      expect(warnings(partial.run)).toHaveLength(1)
      expect(warnings(partial.run)[0]).toMatch(
        /Cache miss for Kingfisher .*not stored, or not readable with these credentials \(403 AccessDenied\)/,
      )
    } finally {
      await cdn.close()
    }
  })
})

describe('S3 errors name the bucket, the operation and the fix', () => {
  it('403 on every read: names the missing permission, is never "not found", and is warned once', async () => {
    store.proxy.fault = limited(() => true, Infinity, faults.status(403, 'AccessDenied', 'Access Denied'))
    const { run, built } = await consume()
    expect(run.code).toBe(0)
    expect(built).toEqual(allTargets)
    const w = warnings(run)
    expect(w).toHaveLength(1)
    expect(w[0]).toMatch(
      new RegExp(
        `every read of the cache was refused \\(403 AccessDenied\\): all 6 .*\\(first: GetObject s3://${bucket}/${prefix}/.*\\)\\. ` +
          `Either these credentials cannot read it \\(they need s3:GetObject on arn:aws:s3:::${bucket}/\\*\\)`,
      ),
    )
    expect(run.stdout).not.toMatch(/not found/i)
  })

  it('301 PermanentRedirect: says which region the bucket is in', async () => {
    store.proxy.fault = limited(
      () => true,
      Infinity,
      faults.status(
        301,
        'PermanentRedirect',
        'The bucket you are attempting to access must be addressed using the specified endpoint.',
        { 'x-amz-bucket-region': 'eu-west-1' },
      ),
    )
    const { run } = await consume()
    expect(run.code).toBe(0)
    expect(warnings(run).join('\n')).toMatch(
      /the bucket is not in region 'us-east-1'; it is in 'eu-west-1'\. Set 'region: eu-west-1'/,
    )
  })

  it('AccessControlListNotSupported: says to use a bucket policy or turn ACLs on; the build still passes', async () => {
    store.proxy.fault = limited(
      isAnyPut,
      Infinity,
      faults.status(400, 'AccessControlListNotSupported', 'The bucket does not allow ACLs'),
    )
    const ws = await exampleWorkspace()
    const run = await runAction(
      inputs({ mode: 'producer', prefix: 'acl', 'should-publish': 'true', 'package-directory': ws }),
    )
    expect(run.code, run.stdout).toBe(0)
    const w = warnings(run)
    expect(w).toHaveLength(1)
    expect(w[0]).toMatch(
      /ACLs disabled .* set 'should-publish: false' and grant public read with a bucket policy, or enable ACLs on the bucket/,
    )
    expect(list(run, 'uploaded')).toEqual([])
    const strict = await runAction(
      inputs({ mode: 'producer', prefix: 'acl', 'should-publish': 'true', strict: 'true', 'package-directory': ws }),
    )
    expect(strict.code).toBe(1)
    expect(strict.stdout).toMatch(/::error::strict: .*AccessControlListNotSupported|::error::strict: .*ACLs disabled/)
  })

  it('an unknown access key: says the credentials were rejected', async () => {
    const { run, built } = await consume({ 'access-key-id': 'AKIAUNKNOWN000000000' })
    expect(run.code).toBe(0)
    expect(built).toEqual(allTargets)
    expect(warnings(run).join('\n')).toMatch(/the credentials were rejected \(InvalidAccessKeyId\)/)
  })

  it('a wrong secret key: says the credentials were rejected', async () => {
    // s3rver does not check v4 signatures, so the proxy answers as S3 does.
    store.proxy.fault = limited(
      () => true,
      Infinity,
      faults.status(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided.',
      ),
    )
    const { run, built } = await consume({ 'secret-access-key': 'wrong-secret-0000000000000000' })
    expect(run.code).toBe(0)
    expect(built).toEqual(allTargets)
    expect(warnings(run)).toHaveLength(1)
    expect(warnings(run)[0]).toMatch(/the credentials were rejected \(SignatureDoesNotMatch\)/)
  })

  it('a bucket that does not exist', async () => {
    const { run } = await consume({ bucket: 'no-such-bucket' })
    expect(run.code).toBe(0)
    expect(warnings(run).join('\n')).toMatch(/the bucket 'no-such-bucket' does not exist/)
  })

  it('an unreachable endpoint', async () => {
    const { run, built } = await consume({ endpoint: 'http://127.0.0.1:9' })
    expect(run.code).toBe(0)
    expect(built).toEqual(allTargets)
    expect(warnings(run).join('\n')).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9 \(ECONNREFUSED\)/)
  })
})

describe('atomicity and limits', () => {
  it('a restore that fails leaves the output folder exactly as it was', async () => {
    const ws = await exampleWorkspace()
    const out = path.join(ws, 'XCFrameworks')
    // An older build of everything is in place (other Xcode), so every target would be replaced.
    const old = await runAction(inputs({ mode: 'producer', prefix: 'old', 'package-directory': ws }), {
      SCIPIO_TEST_DOUBLE_XCODE_BUILD: '16B40',
    })
    expect(old.code).toBe(0)
    const before = await snapshotTree(out)
    store.proxy.fault = limited(isArchiveGet, Infinity, faults.flipByte())
    const run = await runAction(inputs({ 'package-directory': ws }), {}, 'dist/restore/index.js')
    expect(run.code, run.stdout).toBe(0)
    expect(list(run, 'restored')).toEqual([])
    expect(list(run, 'missing').sort()).toEqual(allTargets)
    expect(await snapshotTree(out)).toEqual(before)
  })

  it('fail-on-cache-miss fails without building anything', async () => {
    const { run, built } = await consume({ 'fail-on-cache-miss': 'true', prefix: 'empty-prefix' })
    expect(run.code).toBe(1)
    expect(built).toEqual([])
    expect(run.stdout).toMatch(/::error::fail-on-cache-miss: 5 not in the cache: apngkit \(package\)/)
    expect(run.outputs['cache-hit']).toBe('false')
    expect(run.outputs['built']).toBe('[]')
  })

  it('the cache time limit turns what is left into misses', async () => {
    store.proxy.fault = limited(isArchiveGet, Infinity, faults.stall())
    const started = Date.now()
    const { run, built } = await consume({ 'cache-timeout-minutes': '0.03', 'stall-timeout-seconds': '600' })
    expect(run.code, run.stdout).toBe(0)
    expect(Date.now() - started).toBeLessThan(30_000)
    expect(built).toEqual(allTargets)
    expect(warnings(run).join('\n')).toMatch(/The cache time limit was reached: 7 frameworks were not restored/)
  })

  it('a save that fails halfway leaves no index pointing at a missing archive', async () => {
    store.proxy.fault = limited(
      (req) => isArchivePut(req) && req.url!.includes('/Kingfisher/'),
      Infinity,
      faults.status(500, 'InternalError'),
    )
    const ws = await exampleWorkspace()
    const run = await runAction(inputs({ mode: 'producer', prefix: 'halfway', 'package-directory': ws }))
    expect(run.code, run.stdout).toBe(0)
    expect(list(run, 'uploaded')).toEqual(allTargets.filter((t) => t !== 'Kingfisher'))
    expect(warnings(run).join('\n')).toMatch(/Could not upload Kingfisher/)
    const client = store.s3.client()
    const keys = (
      (await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'halfway/' }))).Contents ?? []
    ).map((o) => o.Key!)
    expect(keys.some((k) => k.includes('/complete/'))).toBe(false)
    const indexes = keys.filter((k) => k.includes('/packages/'))
    expect(indexes.length).toBe(4)
    for (const key of indexes) {
      const body = (await (await fetch(`${store.s3.endpoint}/${bucket}/${key}`)).json()) as {
        targets: { key: string; size: number }[]
      }
      for (const t of listedEntries(body)) {
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: t.key }))
        expect(head.ContentLength).toBe(t.size)
      }
    }
  })
})

describe('uploads from untrusted events', () => {
  it('a pull_request run does not upload unless allowed', async () => {
    const ws = await exampleWorkspace()
    store.proxy.requests.length = 0
    const env = { GITHUB_ACTIONS: 'true', GITHUB_EVENT_NAME: 'pull_request' }
    const run = await runAction(
      inputs({ mode: 'consumer,producer', prefix: 'untrusted', 'package-directory': ws }),
      env,
    )
    expect(run.code).toBe(0)
    expect(warnings(run).join('\n')).toMatch(/Not uploading: this run was triggered by 'pull_request'/)
    // Nothing but the run's record.
    expect(
      store.proxy.requests.filter((r) => (r.method === 'PUT' || r.method === 'POST') && !isRunsRequest(r)),
    ).toEqual([])
    expect(list(run, 'uploaded')).toEqual([])
    const allowed = await runAction(
      inputs({
        mode: 'consumer,producer',
        prefix: 'untrusted',
        'package-directory': ws,
        'allow-untrusted-upload': 'true',
      }),
      env,
    )
    expect(allowed.code).toBe(0)
    expect(list(allowed, 'uploaded')).toEqual(allTargets)
  })
})
