import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as os from 'node:os'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { root } from './helpers/s3-server.js'

// Smoke test of `npm run bench`: the small preset end to end (correctness facts only, never timings), and the
// scale preset on a tiny set over a modelled link (the added round trips must show, within generous bounds).

interface Row {
  dataset: string
  variant: string
  rep: number
  wallS: number
  requests: number
  methods: Record<string, number>
  requestLog?: string[]
  treesOnDiskBefore: string[]
  treeRemoved: boolean
  scenario: string
  contender: string
  ok: boolean
  error?: string
  identical?: boolean
  treeIssues?: string[]
  misses?: number
  builtTargets?: string[]
  uploadedArchives?: number
  receivedBytes: number
  unchangedArchiveBytes?: number
}
interface Results {
  rows: Row[]
  notes: string[]
  meta: { datasets: { tag: string; count: number; packages?: number }[] }
  scale?: { variant: string; large: { requests: number; frameworks: number }; copyMsPerFramework?: number }[]
}

async function runBench(
  out: string,
  args = ['--preset', 'small', '--no-shape'],
): Promise<{ code: number; output: string }> {
  const child = spawn(process.execPath, [path.join(root, 'bench/run.mjs'), ...args, '--out', out], { cwd: root })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)))
  return { code, output }
}

describe('npm run bench -- --preset small', () => {
  it('runs every contender and scenario, and each restore is complete', { timeout: 240_000 }, async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'))
    const { code, output } = await runBench(out)
    expect(code, output).toBe(0)
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results
    for (const file of ['results.md', 'chart.svg']) expect(fs.statSync(path.join(out, file)).size).toBeGreaterThan(0)
    const rows = results.rows
    expect(rows.filter((r) => !r.ok).map((r) => `${r.scenario} ${r.contender}: ${r.error}`)).toEqual([])

    const haveAws = fs.existsSync('/usr/bin/aws')
    const contenders = new Set(rows.map((r) => r.contender))
    const native = fs.existsSync('/usr/bin/zstd') && fs.existsSync('/usr/bin/curl') ? ['native-per-fw'] : []
    expect([...contenders].sort()).toEqual(
      haveAws
        ? ['action', 'aws-sync', 'floor-copy', 'floor-fetch', ...native, 'tar-zst']
        : ['action', 'floor-copy', 'floor-fetch', ...native],
    )
    if (!haveAws) expect(results.notes.join('\n')).toMatch(/aws CLI not found/)

    // The action, the tar.zst and the local copy restore an identical tree (symlinks, modes, empty folders).
    for (const r of rows.filter(
      (x) =>
        (x.scenario === 'warm' || x.scenario === 'partial') &&
        ['action', 'tar-zst', 'native-per-fw', 'floor-copy'].includes(x.contender),
    )) {
      expect(r.identical, `${r.scenario} ${r.contender}: ${r.treeIssues?.join(', ')}`).toBe(true)
    }
    // aws s3 sync brings every file's bytes but not the tree's structure (it follows symlinks, drops modes).
    for (const r of rows.filter(
      (x) => x.contender === 'aws-sync' && (x.scenario === 'warm' || x.scenario === 'partial'),
    )) {
      expect(r.treeIssues?.join(', ') ?? '').not.toMatch(/files missing|contents differ/)
    }

    const partial = rows.find((r) => r.scenario === 'partial' && r.contender === 'action')!
    expect(partial.misses).toBe(1)
    expect(partial.builtTargets).toHaveLength(1)
    expect(partial.receivedBytes).toBeGreaterThanOrEqual(partial.unchangedArchiveBytes!)
    expect(partial.receivedBytes).toBeLessThan(partial.unchangedArchiveBytes! * 1.1)

    const noop = rows.find((r) => r.scenario === 'noop' && r.contender === 'action')!
    expect(noop.uploadedArchives).toBe(0)

    // Fairness: no run started with another contender's restored tree on disk, and every run removed its own.
    for (const r of rows) {
      expect(r.treesOnDiskBefore, `${r.scenario} ${r.contender}`).toEqual([])
      expect(r.treeRemoved, `${r.scenario} ${r.contender}`).toBe(true)
    }
    fs.rmSync(out, { recursive: true, force: true })
  })
})

/** Minimal typing of bench/proxy.mjs. */
interface Proxy {
  port: number
  setLink(link: { rttMs?: number; mbit?: number }): void
  reset(): { requests: number; methods: Record<string, number>; connections: number; up: number; down: number }
  close(): Promise<void>
}

describe('bench/proxy.mjs: the modelled link', () => {
  it(
    'adds one round trip per request on a kept-alive connection (one more for the handshake), caps the bandwidth, counts requests',
    { timeout: 30_000 },
    async () => {
      const body = Buffer.alloc(1_000_000, 7)
      const server = http.createServer((req, res) => {
        req.resume()
        req.on('end', () => res.end(req.url === '/big' ? body : 'ok'))
      })
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const proxyModule = path.join(root, 'bench/proxy.mjs')
      const { startCountingProxy } = (await import(proxyModule)) as {
        startCountingProxy: (port: number) => Promise<Proxy>
      }
      const proxy = await startCountingProxy((server.address() as { port: number }).port)
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
      const request = (method: string, url: string, upload?: Buffer, chunked = false) =>
        new Promise<number>((resolve, reject) => {
          const req = http.request(
            {
              host: '127.0.0.1',
              port: proxy.port,
              method,
              path: url,
              agent,
              headers: chunked ? { 'transfer-encoding': 'chunked' } : {},
            },
            (res) => {
              let n = 0
              res.on('data', (d: Buffer) => (n += d.length)).on('end', () => resolve(n))
            },
          )
          req.on('error', reject)
          if (upload && chunked) {
            req.write(upload.subarray(0, 1000))
            req.write(upload.subarray(1000))
          } else if (upload) req.write(upload)
          req.end()
        })
      try {
        proxy.setLink({ rttMs: 150 })
        let started = performance.now()
        for (let i = 0; i < 4; i++) await request('GET', `/small/${i}`)
        const fourGets = performance.now() - started
        // 4 requests on one connection: 4 round trips and the handshake's, 750 ms; not one per byte or per chunk.
        expect(fourGets).toBeGreaterThanOrEqual(740)
        expect(fourGets).toBeLessThan(2_000)
        await request('PUT', '/upload', body)
        await request('PUT', '/upload-chunked', body, true)
        const counted = proxy.reset()
        expect(counted.requests).toBe(6)
        expect(counted.methods).toEqual({ GET: 4, PUT: 2 })
        expect(counted.up).toBeGreaterThan(2_000_000)

        // 8 Mbit/s is 1 MB/s: a 1 MB response takes at least 0.7 s (the bucket lends 256 KiB of burst).
        agent.destroy()
        proxy.setLink({ mbit: 8 })
        started = performance.now()
        expect(await request('GET', '/big')).toBe(body.length)
        expect(performance.now() - started).toBeGreaterThanOrEqual(700)
        proxy.setLink({})
        started = performance.now()
        await request('GET', '/big')
        expect(performance.now() - started).toBeLessThan(700)
      } finally {
        agent.destroy()
        await proxy.close()
        server.close()
      }
    },
  )
})

describe('npm run bench -- --preset scale (tiny: 2 and 4 packages of 2 frameworks, loopback and 200 ms)', () => {
  it(
    "counts the full hit's requests, shows the added round trips, rotates the order and removes each tree",
    { timeout: 300_000 },
    async () => {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-scale-'))
      const { code, output } = await runBench(out, [
        '--preset',
        'scale',
        '--packages',
        '2,4',
        '--rtt-ms',
        '0,200',
        '--reps',
        '2',
        '--contenders',
        'action,floor',
      ])
      expect(code, output).toBe(0)
      const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) as Results
      const rows = results.rows
      expect(rows.filter((r) => !r.ok).map((r) => `${r.scenario} ${r.contender}: ${r.error}`)).toEqual([])
      expect(results.meta.datasets.map((d) => [d.tag, d.count, d.packages])).toEqual([
        ['2x2', 4, 2],
        ['4x2', 8, 4],
      ])
      const hits = rows.filter((r) => r.contender === 'action' && r.scenario === 'warm')
      expect(hits).toHaveLength(2 * 2 * 2) // data sets × links × repetitions
      for (const r of hits) {
        const frameworks = r.dataset === '2x2' ? 4 : 8
        const packages = frameworks / 2
        expect(r.identical, `${r.dataset} ${r.variant}: ${r.treeIssues?.join(', ')}`).toBe(true)
        // One GET per archive, whatever else the restore reads; today's restore also reads the completion marker
        // and one index per package, and never more than that.
        expect(
          r.requestLog!.filter((line) => / GET .*\.tar\.(zst|gz)\b/.test(line)),
          r.requestLog!.join('\n'),
        ).toHaveLength(frameworks)
        expect(r.requests).toBeGreaterThanOrEqual(frameworks + 1)
        expect(r.requests).toBeLessThanOrEqual(frameworks + packages + 1)
      }
      // The floor GETs each archive once: the proxy counts exactly that.
      for (const r of rows.filter((x) => x.contender === 'floor-fetch'))
        expect(r.requests).toBe(r.dataset === '2x2' ? 4 : 8)

      // The link shows in the time, by construction rather than by comparing two noisy runs: through a fresh
      // connection (one round trip for the handshake) a look-up's answer arrives no sooner than 2 × 200 ms after it
      // was sent, and only then can an archive be asked for; the whole restore needs at least a third round trip.
      // The floor opens a connection per object: at least 2 round trips.
      for (const r of hits.filter((x) => x.variant === '200 ms RTT')) {
        const ms = (line: string) => Number(line.split(' ')[0])
        const firstArchive = r.requestLog!.find((line) => /\.tar\.(zst|gz)\b/.test(line))!
        expect(ms(firstArchive) - ms(r.requestLog![0]!), r.requestLog!.join('\n')).toBeGreaterThanOrEqual(400)
        expect(r.wallS).toBeGreaterThanOrEqual(0.6)
      }
      for (const r of rows.filter((x) => x.contender === 'floor-fetch' && x.variant === '200 ms RTT'))
        expect(r.wallS).toBeGreaterThanOrEqual(0.4)
      expect(results.scale?.map((s) => [s.variant, s.large.frameworks])).toEqual([
        ['loopback', 8],
        ['200 ms RTT', 8],
      ])
      // The disk's own share: cp -a of the same two trees, per framework, beside the action's.
      expect(results.scale?.find((s) => s.variant === 'loopback')?.copyMsPerFramework).toEqual(expect.any(Number))

      // Rotation: repetition r starts with contender r mod n; fairness as in the small preset.
      const firstOf = (rep: number) => rows.find((r) => r.rep === rep && r.scenario === 'warm')!.contender
      expect(firstOf(0)).toBe('action')
      expect(firstOf(1)).toBe('floor-fetch')
      for (const r of rows) {
        expect(r.treesOnDiskBefore, `${r.dataset} ${r.variant} ${r.scenario} ${r.contender}`).toEqual([])
        expect(r.treeRemoved).toBe(true)
      }
      fs.rmSync(out, { recursive: true, force: true })
    },
  )
})
