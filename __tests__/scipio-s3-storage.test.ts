import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3'
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
// @ts-expect-error: the double is plain JavaScript
import { decodeEntries, unwrapBlocks } from '../aa-test-double/apple-archive.mjs'
import { aaArchiveArgs, aaExtractArgs } from '../src/interop/apple-archive.js'
import { runAction, s3TestInputs, type ActionRun } from './helpers/action.js'
import { doubleBin, exampleTargets, exampleWorkspace } from './helpers/workspace.js'
import { awsEnv, runCli, storeFlags } from './helpers/cli.js'
import { faults, limited, type Match, type RecordedRequest } from './helpers/proxy.js'
import { root } from './helpers/s3-server.js'
import { snapshotTree } from './helpers/tree.js'
import { useStore } from './helpers/store.js'

/**
 * Sharing a bucket with scipio-s3-storage, through dist/index.js against an S3 server, with the aa test double
 * (aa-test-double/) standing in for macOS's /usr/bin/aa: it writes and reads real Apple Archive bytes (stored
 * blocks, AA01 entries).
 */

const bucket = 'shared-bucket'
const allTargets = exampleTargets
const aaBin = path.join(root, 'aa-test-double/bin')
const run = promisify(execFile)

/** PATH with the Scipio and aa doubles, or (withoutAa) with every folder holding an `aa` left out. */
function searchPath(withAa: boolean): string {
  const rest = (process.env.PATH ?? '').split(path.delimiter).filter((dir) => dir && !existsSync(path.join(dir, 'aa')))
  return [doubleBin, ...(withAa ? [aaBin] : []), path.dirname(process.execPath), ...rest].join(path.delimiter)
}

const store = useStore([bucket])

function inputs(extra: Record<string, string>): Record<string, string> {
  return { ...s3TestInputs(store.proxy.endpoint, bucket), ...extra }
}

async function listKeys(prefix: string): Promise<string[]> {
  const out = await store.s3.client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }))
  return (out.Contents ?? []).map((o) => o.Key!).sort()
}

async function getBytes(key: string): Promise<Buffer> {
  const out = await store.s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  return Buffer.from(await out.Body!.transformToByteArray())
}

function json(run: ActionRun, name: string): string[] {
  return JSON.parse(run.outputs[name] ?? 'null') as string[]
}

function expectOk(run: ActionRun) {
  expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0)
}

/** Target name → Scipio key, from the VersionFiles in an output folder. */
async function scipioKeys(outputDirectory: string): Promise<Map<string, string>> {
  const keys = new Map<string, string>()
  for (const name of await fs.readdir(outputDirectory)) {
    const m = /^\.(.+)\.version$/.exec(name)
    if (m)
      keys.set(
        m[1]!,
        createHash('sha256')
          .update(await fs.readFile(path.join(outputDirectory, name)))
          .digest('hex'),
      )
  }
  return keys
}

const aarWrites = (requests: RecordedRequest[]) =>
  requests.filter(
    (r) =>
      (r.method === 'PUT' || (r.method === 'POST' && r.url.includes('uploads'))) &&
      /\.aar(\?|$)/.test(r.url) &&
      !r.url.includes('partNumber='),
  )
/** scipio-s3-storage's own objects, `<Target>/<key>.aar`; an adopting producer's copies are `<Target>/<key>/<SHA-256>.aar`. */
const isCopy = (url: string) => /\/[0-9a-f]{64}\/[0-9a-f]{64}\.aar(\?|$)/.test(url)
/** The `.aar` writes the store took (a reset or refused one is no write). */
const storedAar = (requests: RecordedRequest[]) => aarWrites(requests).filter((r) => r.status === 200)
const isAarPut: Match = (req) => req.method === 'PUT' && /\/[0-9a-f]{64}\.aar(\?|$)/.test(req.url ?? '')
const archiveWrites = (requests: RecordedRequest[]) =>
  requests.filter((r) => (r.method === 'PUT' || r.method === 'POST') && /\.tar\.(zst|gz)(\?|$)/.test(r.url))

describe('writing scipio-s3-storage objects', () => {
  const prefix = 'write'
  let producerWs: string

  it('a producer with scipio-s3-storage-objects stores <prefix>/<Target>/<key>.aar for every framework, authenticated-read', async () => {
    producerWs = await exampleWorkspace()
    const aaLog = path.join(producerWs, 'aa.log')
    store.proxy.requests.length = 0
    const result = await runAction(
      inputs({ mode: 'producer', prefix, 'package-directory': producerWs, 'scipio-s3-storage-objects': 'true' }),
      {
        PATH: searchPath(true),
        AA_TEST_DOUBLE_LOG: aaLog,
      },
    )
    expectOk(result)
    expect(json(result, 'uploaded')).toEqual(allTargets)
    const out = path.join(producerWs, 'XCFrameworks')
    const keys = await scipioKeys(out)
    expect([...keys.keys()].sort()).toEqual(allTargets)
    const stored = await listKeys(prefix)
    for (const [target, key] of keys) {
      expect(stored, `${target}\n${result.stdout}`).toContain(`${prefix}/${target}/${key}.aar`)
      expect(
        stored.some((k) => new RegExp(`^${prefix}/${target}/${key}/[0-9a-f]{64}\\.(code\\.)?tar\\.`).test(k)),
        target,
      ).toBe(true)
    }
    // scipio-s3-storage's ACL rule: authenticated-read without should-publish; our own archives still send none.
    const writes = storedAar(store.proxy.requests)
    expect(writes, result.stdout).toHaveLength(7)
    for (const w of writes) expect(w.headers['x-amz-acl'], w.url).toBe('authenticated-read')
    for (const w of archiveWrites(store.proxy.requests)) expect(w.headers['x-amz-acl'], w.url).toBeUndefined()
    // aa ran with exactly scipio-s3-storage's options, once per framework, on the framework folder itself.
    const calls = (await fs.readFile(aaLog, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { argv: string[] }).argv)
    expect(calls).toHaveLength(7)
    for (const argv of calls) expect(argv).toEqual(aaArchiveArgs(argv[2]!, argv[4]!))
    expect(calls.map((argv) => path.relative(out, argv[2]!)).sort()).toEqual(
      allTargets.map((t) => `${t}.xcframework`).sort(),
    )
    expect(result.stdout).toContain('scipio-s3-storage objects: 7 written')
  })

  it('each .aar is an Apple Archive of the framework folder contents: pbze container, root entry with an empty path, no VersionFile', async () => {
    const out = path.join(producerWs, 'XCFrameworks')
    const key = (await scipioKeys(out)).get('Kingfisher')!
    const bytes = await getBytes(`${prefix}/Kingfisher/${key}.aar`)
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('pbze')
    expect(bytes.readBigUInt64BE(4)).toBe(1024n * 1024n) // -b 1m
    const entries = decodeEntries(unwrapBlocks(bytes)) as { fields: Record<string, unknown> }[]
    const paths = entries.map((e) => e.fields.PAT as string)
    expect(paths[0]).toBe('')
    expect(paths).toContain('Info.plist')
    expect(paths.some((p) => p.startsWith('Kingfisher.xcframework') || p.includes('.version'))).toBe(false)
    expect(Object.keys(entries[0]!.fields).sort()).toEqual([
      'BTM',
      'CTM',
      'FLG',
      'GID',
      'MOD',
      'MTM',
      'PAT',
      'TYP',
      'UID',
    ])
    // What scipio-s3-storage's extraction does with it (the double unpacks it like aa): the same tree.
    const dst = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'aar-')), 'Kingfisher.xcframework')
    const file = path.join(path.dirname(dst), 'k.aar')
    await fs.writeFile(file, bytes)
    await run(process.execPath, [path.join(aaBin, 'aa'), ...aaExtractArgs(dst, file)])
    expect(await snapshotTree(dst)).toEqual(await snapshotTree(path.join(out, 'Kingfisher.xcframework')))
  })

  it('the next producer run finds every .aar with HEAD and writes none again', async () => {
    const ws = await exampleWorkspace()
    store.proxy.requests.length = 0
    const result = await runAction(
      inputs({ mode: 'consumer,producer', prefix, 'package-directory': ws, 'scipio-s3-storage-objects': 'true' }),
      { PATH: searchPath(true) },
    )
    expectOk(result)
    expect(json(result, 'restored')).toEqual(allTargets)
    expect(json(result, 'uploaded')).toEqual([])
    expect(aarWrites(store.proxy.requests)).toEqual([])
    expect(store.proxy.requests.filter((r) => r.method === 'HEAD' && r.url.includes('.aar'))).toHaveLength(7)
  })

  it('with should-publish the .aar objects are public-read', async () => {
    const ws = await exampleWorkspace()
    store.proxy.requests.length = 0
    const result = await runAction(
      inputs({
        mode: 'producer',
        prefix: 'write-public',
        'package-directory': ws,
        'should-publish': 'true',
        'scipio-s3-storage-objects': 'true',
      }),
      { PATH: searchPath(true) },
    )
    expectOk(result)
    const writes = storedAar(store.proxy.requests)
    expect(writes, result.stdout).toHaveLength(7)
    for (const w of writes) expect(w.headers['x-amz-acl'], w.url).toBe('public-read')
  })

  it.each([
    { what: 'a connection reset before any answer', prefix: 'write-reset', fault: faults.drop() },
    {
      what: 'a 409 ConditionalRequestConflict (another write to the key was in flight, and may yet fail)',
      prefix: 'write-conflict',
      fault: faults.status(409, 'ConditionalRequestConflict'),
    },
  ])('a .aar write that meets $what is sent again and stored', async ({ prefix, fault }) => {
    const ws = await exampleWorkspace()
    store.proxy.requests.length = 0
    const once = limited(isAarPut, 1, fault)
    store.proxy.fault = once
    try {
      const result = await runAction(
        inputs({ mode: 'producer', prefix, 'package-directory': ws, 'scipio-s3-storage-objects': 'true' }),
        { PATH: searchPath(true) },
      )
      expectOk(result)
      expect(once.hits()).toBe(1)
      expect(result.stdout).not.toContain('::warning::')
      expect(result.stdout).toContain('scipio-s3-storage objects: 7 written')
      const keys = await scipioKeys(path.join(ws, 'XCFrameworks'))
      const stored = await listKeys(prefix)
      for (const [target, key] of keys) expect(stored, result.stdout).toContain(`${prefix}/${target}/${key}.aar`)
    } finally {
      store.proxy.fault = undefined
    }
  })

  it('without aa the producer uploads its own archives, warns once and writes no .aar', async () => {
    const ws = await exampleWorkspace()
    store.proxy.requests.length = 0
    const result = await runAction(
      inputs({ mode: 'producer', prefix: 'write-no-aa', 'package-directory': ws, 'scipio-s3-storage-objects': 'true' }),
      { PATH: searchPath(false) },
    )
    expectOk(result)
    expect(json(result, 'uploaded')).toEqual(allTargets)
    expect(aarWrites(store.proxy.requests)).toEqual([])
    const warnings = result.stdout.split('\n').filter((l) => l.startsWith('::warning::'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/Not writing scipio-s3-storage objects: Apple's aa tool .* is not on PATH/)
  })
})

describe('adopting and restoring what scipio-s3-storage stored', () => {
  const prefix = 'swift'
  let builtWs: string
  let adoptingWs: string

  it('a producer indexes the .aar objects scipio-s3-storage stored and uploads nothing', async () => {
    // scipio-s3-storage's side: frameworks built by Scipio, archived with aa and PUT with its ACL (no index).
    builtWs = await exampleWorkspace()
    expectOk(await runAction(inputs({ mode: 'producer', prefix: 'swift-build-only', 'package-directory': builtWs })))
    const out = path.join(builtWs, 'XCFrameworks')
    for (const [target, key] of await scipioKeys(out)) {
      const file = path.join(builtWs, `${target}.aar`)
      await run(process.execPath, [
        path.join(aaBin, 'aa'),
        ...aaArchiveArgs(path.join(out, `${target}.xcframework`), file),
      ])
      await store.s3.client().send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${prefix}/${target}/${key}.aar`,
          Body: await fs.readFile(file),
          ACL: 'authenticated-read',
        }),
      )
    }

    adoptingWs = await exampleWorkspace()
    store.proxy.requests.length = 0
    const result = await runAction(
      inputs({
        mode: 'consumer,producer',
        prefix,
        'package-directory': adoptingWs,
        'scipio-s3-storage-objects': 'true',
      }),
      { PATH: searchPath(true) },
    )
    expectOk(result)
    expect(json(result, 'built')).toEqual(allTargets) // no index of ours yet
    expect(json(result, 'uploaded')).toEqual([])
    expect(archiveWrites(store.proxy.requests)).toEqual([])
    // scipio-s3-storage's objects are never written; each adopted one gets an immutable copy, named by its bytes.
    expect(aarWrites(store.proxy.requests).filter((r) => !isCopy(r.url))).toEqual([])
    expect(aarWrites(store.proxy.requests).filter((r) => isCopy(r.url))).toHaveLength(7)
    // The copies are ours, read only through our indexes: no ACL, as our archives (docs/scipio-s3-storage.md).
    for (const w of aarWrites(store.proxy.requests).filter((r) => isCopy(r.url)))
      expect(w.headers['x-amz-acl'], w.url).toBeUndefined()
    expect(result.stdout).toContain('scipio-s3-storage objects: 0 written (0.0 MiB), 7 adopted instead of uploading.')
    const keys = await listKeys(prefix)
    expect(keys.filter((k) => /\.tar\./.test(k))).toEqual([])
    const indexes = keys.filter((k) => k.includes('/.scipio-s3-cache/packages/'))
    expect(indexes).toHaveLength(5)
    const local = await scipioKeys(path.join(adoptingWs, 'XCFrameworks'))
    const listed: string[] = []
    for (const key of indexes) {
      const doc = JSON.parse((await getBytes(key)).toString('utf8')) as {
        targets: unknown[]
        aarTargets: { targetName: string; scipioKey: string; format: string; key: string; versionFile: string }[]
      }
      expect(doc.targets).toEqual([]) // what earlier releases read: nothing they cannot parse
      for (const t of doc.aarTargets) {
        listed.push(t.targetName)
        expect(t.format).toBe('aar')
        const { sha256 } = t as unknown as { sha256: string }
        expect(t.key).toBe(`${prefix}/${t.targetName}/${local.get(t.targetName)}/${sha256}.aar`)
        // The copy holds exactly the bytes scipio-s3-storage stored.
        expect(
          (await getBytes(t.key)).equals(await getBytes(`${prefix}/${t.targetName}/${local.get(t.targetName)}.aar`)),
        ).toBe(true)
        const versionFile = Buffer.from(t.versionFile, 'base64')
        expect(
          versionFile.equals(await fs.readFile(path.join(adoptingWs, 'XCFrameworks', `.${t.targetName}.version`))),
        ).toBe(true)
      }
    }
    expect(listed.sort()).toEqual(allTargets)
  })

  it('a consumer restores every framework from the .aar objects: same tree (symlinks, modes) and VersionFiles', async () => {
    const ws = await exampleWorkspace()
    const out = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'out-')), 'Frameworks')
    const aaLog = path.join(ws, 'aa.log')
    const result = await runAction(inputs({ prefix, 'package-directory': ws, 'output-directory': out }), {
      PATH: searchPath(true),
      AA_TEST_DOUBLE_LOG: aaLog,
    })
    expectOk(result)
    expect(json(result, 'restored')).toEqual(allTargets)
    expect(json(result, 'built')).toEqual([])
    expect(result.outputs['cache-hit']).toBe('true')
    expect(result.stdout).not.toContain('::warning::')
    expect(await snapshotTree(out)).toEqual(await snapshotTree(path.join(adoptingWs, 'XCFrameworks')))
    const calls = (await fs.readFile(aaLog, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { argv: string[] }).argv)
    expect(calls).toHaveLength(7)
    for (const argv of calls) expect(argv).toEqual(aaExtractArgs(argv[2]!, argv[4]!))
  })

  it('a public-URL consumer reads the same .aar objects anonymously (scipio-s3-storage wrote them authenticated-read; s3rver ignores ACLs)', async () => {
    const ws = await exampleWorkspace()
    const result = await runAction(
      { 'public-url': `${store.s3.endpoint}/${bucket}`, prefix, 'package-directory': ws },
      { PATH: searchPath(true) },
    )
    expectOk(result)
    expect(json(result, 'restored')).toEqual(allTargets)
  })

  it('without aa every .aar entry is a clean miss: Scipio builds it, the step succeeds, the reason is reported', async () => {
    const ws = await exampleWorkspace()
    const result = await runAction(inputs({ prefix, 'package-directory': ws }), { PATH: searchPath(false) })
    expectOk(result)
    expect(json(result, 'restored')).toEqual([])
    expect(json(result, 'built')).toEqual(allTargets)
    expect(result.outputs['cache-hit']).toBe('false')
    // Nothing came from the cache: the one warning that says so (see docs/why-it-missed.md) names the missing aa.
    const warnings = result.stdout.split('\n').filter((l) => l.startsWith('::warning'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/Nothing came from the cache .*aa tool .* is not on PATH/)
    expect(result.stdout).not.toContain('::error::')
    expect(result.stdout.split('\n').filter((l) => l.includes('built instead of restored here'))).toEqual([
      "Frameworks indexed as scipio-s3-storage objects (.aar) are built instead of restored here: Apple's aa tool (Apple Archive, part of macOS 11 and later) is not on PATH.",
    ])
  })

  it('the restore sub-action without aa reports them missing, and strict does not fail on it', async () => {
    const ws = await exampleWorkspace()
    const result = await runAction(
      inputs({ prefix, 'package-directory': ws, strict: 'true' }),
      { PATH: searchPath(false) },
      'dist/restore/index.js',
    )
    expectOk(result)
    expect(json(result, 'missing').sort()).toEqual(allTargets)
  })
})

describe('objects that are not what the index recorded', () => {
  const prefix = 'heal'

  it('a non-Apple-Archive object is not adopted; a damaged copy is replaced; a rewritten .aar changes nothing indexed', async () => {
    const source = (await listKeys('swift')).filter((k) => /^swift\/[^/]+\/[0-9a-f]{64}\.aar$/.test(k))
    expect(source).toHaveLength(7)
    for (const key of source) {
      const body = key.includes('/Kingfisher/') ? Buffer.from('not an archive') : await getBytes(key)
      await store.s3
        .client()
        .send(new PutObjectCommand({ Bucket: bucket, Key: key.replace(/^swift\//, `${prefix}/`), Body: body }))
    }
    const first = await runAction(
      inputs({
        mode: 'producer',
        prefix,
        'package-directory': await exampleWorkspace(),
        'scipio-s3-storage-objects': 'true',
      }),
      { PATH: searchPath(true) },
    )
    expectOk(first)
    expect(json(first, 'uploaded')).toEqual(['Kingfisher'])
    expect(first.stdout).toMatch(
      /::warning::.*\/Kingfisher\/[0-9a-f]{64}\.aar is not an Apple Archive; uploading Kingfisher as usual instead of indexing it\./,
    )

    // The copy the index lists for Logging gets damaged: the next consumer,producer run builds and indexes its own.
    const loggingCopy = (await listKeys(prefix)).find((k) => k.includes('/Logging/') && isCopy(k))!
    await store.s3
      .client()
      .send(new PutObjectCommand({ Bucket: bucket, Key: loggingCopy, Body: Buffer.from('damaged') }))
    store.proxy.requests.length = 0
    const healing = await runAction(
      inputs({
        mode: 'consumer,producer',
        prefix,
        'package-directory': await exampleWorkspace(),
        'scipio-s3-storage-objects': 'true',
      }),
      {
        PATH: searchPath(true),
      },
    )
    expectOk(healing)
    expect(healing.stdout).toMatch(
      /::warning::Cache miss for Logging \(swift-log\): integrity check failed: size \d+ differs from the index's \d+\. It will be built\./,
    )
    expect(json(healing, 'built')).toEqual(['Logging'])
    expect(json(healing, 'uploaded')).toEqual(['Logging'])
    expect(aarWrites(store.proxy.requests)).toEqual([]) // scipio-s3-storage's objects are never overwritten

    // scipio-s3-storage rewrites Logging's object (other bytes): no index points at it, so consumers see no change.
    const logging = (await listKeys(prefix)).find((k) => /\/Logging\/[0-9a-f]{64}\.aar$/.test(k))!
    const empty = await fs.mkdtemp(path.join(os.tmpdir(), 'empty-'))
    await run(process.execPath, [path.join(aaBin, 'aa'), ...aaArchiveArgs(empty, path.join(empty, '..', 'other.aar'))])
    await store.s3.client().send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: logging,
        Body: await fs.readFile(path.join(empty, '..', 'other.aar')),
      }),
    )
    const consumer = await runAction(inputs({ prefix, 'package-directory': await exampleWorkspace() }), {
      PATH: searchPath(true),
    })
    expectOk(consumer)
    expect(json(consumer, 'restored')).toEqual(allTargets)
    expect(consumer.stdout).not.toContain('::warning::')
  })
})

describe('the command line', () => {
  const flags = (prefix: string) => storeFlags(bucket, store.endpoint, prefix)

  it('save --scipio-s3-storage-objects stores the .aar objects too; restore elsewhere names the missing aa for each .aar entry', async () => {
    const ws = await exampleWorkspace()
    expectOk(await runAction(inputs({ mode: 'producer', prefix: 'cli-build-only', 'package-directory': ws })))
    store.proxy.requests.length = 0
    const save = await runCli(['save', ...flags('cli'), '--scipio-s3-storage-objects'], {
      cwd: ws,
      env: { ...awsEnv, PATH: searchPath(true) },
    })
    expect(save.code, save.stderr).toBe(0)
    expect(storedAar(store.proxy.requests), save.stdout + save.stderr).toHaveLength(7)
    for (const w of aarWrites(store.proxy.requests)) expect(w.headers['x-amz-acl']).toBe('authenticated-read')

    // An index that points at .aar objects: a producer adopting what scipio-s3-storage stored under another prefix.
    const adopting = await exampleWorkspace()
    await fs.cp(path.join(ws, 'XCFrameworks'), path.join(adopting, 'XCFrameworks'), {
      recursive: true,
      verbatimSymlinks: true,
    })
    for (const key of await listKeys('cli')) {
      if (key.endsWith('.aar'))
        await store.s3.client().send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key.replace(/^cli\//, 'cli-adopt/'),
            Body: await getBytes(key),
          }),
        )
    }
    const adopt = await runCli(['save', ...flags('cli-adopt'), '--scipio-s3-storage-objects'], {
      cwd: adopting,
      env: { ...awsEnv, PATH: searchPath(true) },
    })
    expect(adopt.code, adopt.stderr).toBe(0)
    expect(adopt.stdout).toContain('Uploaded 0 frameworks')
    expect((await listKeys('cli-adopt')).filter((k) => /\.tar\./.test(k))).toEqual([])

    const consumer = await exampleWorkspace()
    const restore = await runCli(['restore', ...flags('cli-adopt')], {
      cwd: consumer,
      env: { ...awsEnv, PATH: searchPath(false) },
    })
    expect(restore.code, restore.stderr).toBe(0)
    expect(restore.stdout).toContain(
      "Missed Logging (swift-log): stored by scipio-s3-storage as an Apple Archive (.aar), and Apple's aa tool (Apple Archive, part of macOS 11 and later) is not on PATH to unpack it.",
    )
    const withAa = await runCli(['restore', ...flags('cli-adopt')], {
      cwd: consumer,
      env: { ...awsEnv, PATH: searchPath(true) },
    })
    expect(withAa.code, withAa.stderr).toBe(0)
    expect(withAa.stdout).toMatch(/^Restored 7 frameworks/)
  })
})
