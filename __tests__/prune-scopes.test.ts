import { PutObjectCommand } from '@aws-sdk/client-s3'
import { execFile } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import pLimit from 'p-limit'
import { describe, expect, it } from 'vitest'
import { executeScopePrune, planScopePrune, scopeNamesToKeep } from '../src/cli/prune.js'
import { indexDocument, newIndex } from '../src/bucket/cache-index.js'
import { contentObjectKey, scopePrefix, scopesPrefix } from '../src/bucket/layout.js'
import { completeObjectKey, indexObjectKey } from '../src/keys/keys.js'
import { S3Admin } from '../src/storage/s3-admin.js'
import { S3Storage } from '../src/storage/s3.js'
import type { ListedObject, Storage } from '../src/storage/index.js'
import { awsEnv, runCli, storeFlags } from './helpers/cli.js'
import { FakeBucket } from './helpers/fake-bucket.js'
import { root } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'
import { exampleWorkspace } from './helpers/workspace.js'

/**
 * `prune --scopes` at the sizes a busy repository reaches (issue 30): its listing cost stays linear in the objects
 * (a listing of the folder to plan, then about one more per phase, documents then archives), where it used to list
 * the whole folder again before each batch of 1,000 deletions; and it plans a million objects in one scope. The
 * bucket is in memory (helpers/fake-bucket.ts) and counts ListObjectsV2 requests as S3 would get them.
 */

const prefix = 'cache'
const folder = `${scopesPrefix(prefix)}/`
const hex = (i: number) => i.toString(16).padStart(64, '0')
const old = new Date('2026-01-01T00:00:00Z')
const now = new Date('2026-06-01T00:00:00Z')
/** The guard reads no document here: nothing is written between the plan and the deletions. */
const noReads: Storage = {
  description: 'unused',
  writable: false,
  head: () => Promise.reject(new Error('no request expected')),
  get: () => Promise.reject(new Error('no request expected')),
  put: () => Promise.reject(new Error('no request expected')),
}

/** A scope of `count` objects of the cache's layout: two indexes, a marker, a pin record, and archives. */
function scope(name: string, count: number, first: number): ListedObject[] {
  const at = `${folder}${name}/`
  const docs = [
    `${at}.scipio-s3-cache/packages/${hex(first)}.json`,
    `${at}.scipio-s3-cache/packages/${hex(first + 1)}.json`,
    `${at}.scipio-s3-cache/complete/${hex(first)}.json`,
    `${at}.scipio-s3-cache/pins/${hex(first)}.json`,
  ]
  const archives = Array.from(
    { length: count - docs.length },
    (_, i) => `${at}Target${i % 50}/${hex(first + i)}/${hex(first + i)}.tar.zst`,
  )
  return [...docs, ...archives].map((key) => ({ key, size: 1, lastModified: old, etag: `"${key.length}"` }))
}

/** Plans and deletes with the bucket; what it listed, deleted, and left. */
async function prune(bucket: FakeBucket, keep: string[]) {
  const plan = await planScopePrune({ prefix, keep: scopeNamesToKeep(keep), now, admin: bucket })
  const planned = bucket.listRequests
  const result = await executeScopePrune(plan, bucket, noReads)
  return { plan, planned, executed: bucket.listRequests - planned, result }
}

describe('prune --scopes at scale', () => {
  it('20,000 objects in 20 scopes (and one kept): all deleted with about three listings of the folder, not one per batch', async () => {
    const objects = Array.from({ length: 21 }, (_, i) => scope(`pr-${i + 1}`, 1000, i * 1000)).flat()
    const bucket = new FakeBucket(objects)
    const { plan, planned, executed, result } = await prune(bucket, ['11'])
    expect(plan.candidates).toHaveLength(20_000)
    expect(result).toEqual({ deleted: 20_000, failures: [], spared: [] })
    const kept = objects.filter((o) => o.key.startsWith(`${folder}pr-11/`)).map((o) => o.key)
    expect(bucket.keys(folder).sort()).toEqual(kept.sort())
    console.log(`20,000 objects in 20 scopes: ${planned} listing requests to plan, ${executed} to delete`)
    expect(planned).toBe(21)
    // The documents phase lists each scope's documents once (20 small requests), the archives phase a page per
    // batch of 1,000: before, it listed the whole folder again before each batch (251 requests with this bucket).
    expect(executed).toBeLessThanOrEqual(2 * planned)
  })

  it('1,000,000 objects in one scope: planned and deleted with one listing request per 1,000 for each', async () => {
    const objects = [...scope('feature-big', 1_000_000, 0), ...scope('pr-7', 10, 2_000_000)]
    const bucket = new FakeBucket(objects)
    const started = Date.now()
    const { plan, planned, executed, result } = await prune(bucket, ['7'])
    expect(plan.scopes.map((s) => [s.name, s.objects, s.reason])).toEqual([
      ['feature-big', 1_000_000, 'not kept'],
      ['pr-7', 10, undefined],
    ])
    expect(plan.scopes[0]!.newest).toEqual(old)
    expect(result.deleted).toBe(1_000_000)
    expect(bucket.keys(folder)).toHaveLength(10)
    console.log(
      `1,000,000 objects: ${planned} listing requests to plan, ${executed} to delete, ${bucket.deleteRequests} deletions, ${Date.now() - started} ms`,
    )
    expect(planned).toBe(1001)
    expect(executed).toBeLessThanOrEqual(planned + 1)
  }, 300_000)
})

const bucket = 'prune-scopes'
const store = useStore([bucket])

/** Stores objects of `scope(...)`'s layout in the test bucket, 32 at a time. */
async function putAll(objects: ListedObject[]): Promise<void> {
  const limit = pLimit(32)
  const client = store.s3.client()
  await Promise.all(
    objects.map((o) =>
      limit(() => client.send(new PutObjectCommand({ Bucket: bucket, Key: o.key, Body: Buffer.from('x') }))),
    ),
  )
}

/** One marker per scope pr-1 … pr-N under `under`: the least that makes a scope. */
async function scopes(under: string, count: number): Promise<void> {
  const at = (n: number) => `${scopesPrefix(under)}/pr-${n}/.scipio-s3-cache/complete/${hex(n)}.json`
  await putAll(Array.from({ length: count }, (_, i) => ({ key: at(i + 1), size: 1, lastModified: now })))
}

const scopesLeft = async (under: string) =>
  [...new Set((await store.listKeys(bucket, `${scopesPrefix(under)}/`)).map((k) => k.split('/')[2]!))].sort(
    (a, b) => Number(a.slice(3)) - Number(b.slice(3)),
  )
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `pr-${from + i}`)
const isListing = (r: { method: string; url: string }) => r.method === 'GET' && /[?&]list-type=2/.test(r.url)

describe('prune --scopes on the command line', () => {
  it('refuses an empty --keep-scope (what "$(gh ...)" gives when gh fails) unless --all is given', async () => {
    const under = 'empty-keep'
    await scopes(under, 3)
    const ws = await exampleWorkspace()
    const flags = ['prune', '--scopes', ...storeFlags(bucket, store.endpoint, under)]
    for (const keep of [[''], [' , '], ['', '']]) {
      const run = await runCli([...flags, ...keep.flatMap((k) => ['--keep-scope', k]), '--delete'], {
        cwd: ws,
        env: awsEnv,
      })
      expect(run.code, run.stderr).toBe(2)
      expect(run.stderr).toMatch(/--keep-scope names no scope, so every scope would be pruned.*Pass --all/)
    }
    expect(await scopesLeft(under)).toEqual(range(1, 3))
    const notScopes = await runCli(['prune', ...storeFlags(bucket, store.endpoint, under), '--all'], {
      cwd: ws,
      env: awsEnv,
    })
    expect(notScopes.code).toBe(2)
    expect(notScopes.stderr).toContain('--all needs --scopes')
    const keepOne = await runCli([...flags, '--keep-scope', '2', '--delete'], { cwd: ws, env: awsEnv })
    expect(keepOne.code, keepOne.stderr).toBe(0)
    expect(await scopesLeft(under)).toEqual(['pr-2'])
    const all = await runCli([...flags, '--keep-scope', '', '--all', '--delete'], { cwd: ws, env: awsEnv })
    expect(all.code, all.stderr).toBe(0)
    expect(await scopesLeft(under)).toEqual([])
  })

  it('lists the scopes folder about once per phase through the proxy: 2,100 objects in 2 scopes', async () => {
    const under = 'counted'
    const objects = [...scope('pr-1', 1050, 0), ...scope('pr-2', 1050, 5000)].map((o) => ({
      ...o,
      key: o.key.replace(`${folder}`, `${scopesPrefix(under)}/`),
    }))
    await putAll(objects)
    store.proxy.requests.length = 0
    const run = await runCli(
      ['prune', '--scopes', ...storeFlags(bucket, store.endpoint, under), '--all', '--delete', '--json'],
      { cwd: await exampleWorkspace(), env: awsEnv },
    )
    expect(run.code, run.stderr).toBe(0)
    expect((JSON.parse(run.stdout) as { deleted: number }).deleted).toBe(2100)
    expect(await scopesLeft(under)).toEqual([])
    const listings = store.proxy.requests.filter(isListing).length
    console.log(`2,100 objects in 2 scopes: ${listings} listing requests`)
    // 3 to plan, 2 for the documents (one per scope), 3 or 4 for the archives' 3 batches: before, 18.
    expect(listings).toBeLessThanOrEqual(9)
  }, 120_000)
})

describe('prune --scopes beside a run of the scope', () => {
  it("keeps an archive that an index the scope's run wrote since the plan lists (the shared cache's stay out of reach)", async () => {
    const under = 'guarded'
    const scopeAt = scopePrefix(under, 'pr-1')
    const sha = hex(7)
    const archive = contentObjectKey(scopeAt, 'Logging', hex(1), sha, 'tar.zst')
    const shared = contentObjectKey(under, 'Kingfisher', hex(2), sha, 'tar.zst')
    await putAll(
      [archive, shared, completeObjectKey(scopeAt, hex(3))].map((key) => ({ key, size: 1, lastModified: now })),
    )
    const settings = store.settings(bucket)
    const admin = new S3Admin(settings)
    const plan = await planScopePrune({ prefix: under, keep: [], now: new Date(), admin })
    expect(plan.candidates.map((c) => c.key).sort()).toEqual([archive, completeObjectKey(scopeAt, hex(3))].sort())

    // The pull request's next push writes its index meanwhile: its own archive, and one of the shared cache's.
    const pin = { identity: 'swift-log', kind: 'remoteSourceControl' as const, location: 'https://x/swift-log.git' }
    const entry = (key: string, targetName: string, scipioKey: string) =>
      ({ targetName, scipioKey, format: 'tar.zst', key, size: 1, sha256: sha }) as const
    const index = newIndex(hex(4), pin, [entry(archive, 'Logging', hex(1)), entry(shared, 'Kingfisher', hex(2))], now)
    const indexKey = indexObjectKey(scopeAt, hex(4))
    await store.s3
      .client()
      .send(new PutObjectCommand({ Bucket: bucket, Key: indexKey, Body: JSON.stringify(indexDocument(index)) }))

    const result = await executeScopePrune(plan, admin, new S3Storage(settings))
    expect(result.spared).toEqual([{ key: archive, reason: `listed by ${indexKey}, written since the plan` }])
    expect(result.deleted).toBe(1)
    expect(await store.listKeys(bucket, `${under}/`)).toEqual([indexKey, archive, shared].sort())
  })
})

describe("docs/storage.md's scheduled prune with gh", () => {
  /**
   * A `gh` that answers as the real one does for the two forms these docs have used: `gh api --paginate` follows
   * every page, `gh api` alone returns the first (per_page, 30 by default), `gh pr list` the first 30 unless given
   * `--limit`; newest first. Open pull requests are 1 to FAKE_GH_OPEN; FAKE_GH_FAIL makes it print one page and fail.
   */
  const fakeGh = `#!/usr/bin/env node
const args = process.argv.slice(2)
const open = Array.from({ length: Number(process.env.FAKE_GH_OPEN ?? 0) }, (_, i) => Number(process.env.FAKE_GH_OPEN) - i)
const jq = args[args.indexOf('--jq') + 1]
let numbers
if (args[0] === 'api') {
  const endpoint = new URL(args.find((a, i) => i > 0 && !a.startsWith('-') && args[i - 1] !== '--jq'), 'https://api.github.com/')
  if (!decodeURIComponent(endpoint.pathname).startsWith('/repos/{owner}/{repo}/pulls') || endpoint.searchParams.get('state') !== 'open') process.exit(64)
  const perPage = Number(endpoint.searchParams.get('per_page') ?? 30)
  numbers = args.includes('--paginate') ? open : open.slice(0, perPage)
  if (process.env.FAKE_GH_FAIL) {
    console.log(open.slice(0, perPage).join('\\n'))
    console.error('HTTP 502: Bad Gateway (https://api.github.com/repos/acme/app/pulls?page=2)')
    process.exit(1)
  }
} else if (args[0] === 'pr' && args[1] === 'list') {
  if (process.env.FAKE_GH_FAIL) {
    console.error('HTTP 502: Bad Gateway')
    process.exit(1)
  }
  const limit = args.includes('--limit') ? Number(args[args.indexOf('--limit') + 1]) : 30
  numbers = open.slice(0, limit)
} else process.exit(64)
if (jq === '.[].number') console.log(numbers.join('\\n'))
else if (jq === '[.[].number] | join(",")') console.log(numbers.join(','))
else process.exit(64)
`

  /** The page's scheduled prune, with the test store in place of my-bucket: run as a job's bash step runs it. */
  async function scheduledPrune(under: string, env: Record<string, string>) {
    const page = await fs.readFile(path.join(root, 'docs/storage.md'), 'utf8')
    const block = [...page.matchAll(/```sh\n([\s\S]*?)```/g)]
      .map((m) => m[1]!)
      .find((b) => b.includes('prune --scopes'))
    expect(block, 'the scheduled prune in docs/storage.md').toBeDefined()
    const script = block!.replace(
      '--bucket my-bucket --region ap-northeast-1 --prefix scipio',
      storeFlags(bucket, store.endpoint, under).join(' '),
    )
    expect(script).not.toBe(block)
    const bin = await fs.mkdtemp(path.join(os.tmpdir(), 'fake-gh-'))
    await fs.writeFile(path.join(bin, 'gh'), fakeGh, { mode: 0o755 })
    await fs.writeFile(
      path.join(bin, 'scipio-s3-cache'),
      `#!/bin/sh\nexec "${process.execPath}" "${path.join(root, 'dist/cli/index.js')}" "$@"\n`,
      { mode: 0o755 },
    )
    const file = path.join(bin, 'prune.sh')
    await fs.writeFile(file, script)
    return promisify(execFile)('bash', ['--noprofile', '--norc', file], {
      cwd: bin,
      env: { PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, HOME: bin, ...awsEnv, ...env },
    }).then(
      (out) => ({ code: 0, ...out }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    )
  }

  it('with 45 open pull requests, every one of their scopes stays (gh pr list gave 30)', async () => {
    const under = 'gh-45'
    await scopes(under, 50)
    const run = await scheduledPrune(under, { FAKE_GH_OPEN: '45' })
    expect(run.code, run.stderr).toBe(0)
    expect(await scopesLeft(under)).toEqual(range(1, 45))
  }, 120_000)

  it('when gh fails, the script stops and nothing is deleted', async () => {
    const under = 'gh-fails'
    await scopes(under, 50)
    const run = await scheduledPrune(under, { FAKE_GH_OPEN: '45', FAKE_GH_FAIL: '1' })
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain('HTTP 502')
    expect(await scopesLeft(under)).toEqual(range(1, 50))
  }, 120_000)

  it('with no pull request open, every scope goes (--all)', async () => {
    const under = 'gh-none'
    await scopes(under, 5)
    const run = await scheduledPrune(under, { FAKE_GH_OPEN: '0' })
    expect(run.code, run.stderr).toBe(0)
    expect(await scopesLeft(under)).toEqual([])
  }, 120_000)
})
