import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { InputError } from '../src/errors.js'
import { readConfig, splitArgs } from '../src/inputs/inputs.js'
import { runAction, s3TestInputs } from './helpers/action.js'
import { exampleWorkspace } from './helpers/workspace.js'
import { useStore } from './helpers/store.js'

const valid: Record<string, string> = {
  bucket: 'my-bucket',
  region: 'ap-northeast-1',
  'access-key-id': 'AKIAEXAMPLE',
  'secret-access-key': 'secret-example',
}

function reader(values: Record<string, string>) {
  return (name: string) => values[name] ?? ''
}

describe('inputs', () => {
  it('reads a valid producer configuration with defaults', () => {
    const config = readConfig(reader({ ...valid, mode: 'consumer, producer', 'should-publish': 'TRUE' }), '/ws')
    expect(config.consume && config.produce).toBe(true)
    expect(config.shouldPublish).toBe(true)
    expect(config.packageDirectory).toBe('/ws')
    expect(config.outputDirectory).toBe('/ws/XCFrameworks')
    expect(config.concurrency).toBe(8)
    expect(config.build).toEqual({
      configuration: 'release',
      frameworkType: 'dynamic',
      supportSimulators: false,
      embedDebugSymbols: false,
      libraryEvolution: false,
      extraArgs: [],
    })
    expect(config.storage).toMatchObject({
      kind: 's3',
      bucket: 'my-bucket',
      region: 'ap-northeast-1',
      credentials: { accessKeyId: 'AKIAEXAMPLE' },
    })
  })

  it('reads "false" as false, never as true', () => {
    const config = readConfig(
      reader({ ...valid, 'should-publish': 'false', 'support-simulators': 'False', strict: 'no' }),
      '/ws',
    )
    expect(config.shouldPublish).toBe(false)
    expect(config.build.supportSimulators).toBe(false)
    expect(config.strict).toBe(false)
  })

  it('a consumer with only a public URL reads anonymously; an S3-compatible endpoint defaults the region', () => {
    expect(readConfig(reader({ 'public-url': 'https://cdn.example.com/cache/' }), '/ws').storage).toEqual({
      kind: 'public-url',
      baseUrl: 'https://cdn.example.com/cache',
    })
    expect(readConfig(reader({ bucket: 'b-1', endpoint: 'http://127.0.0.1:9000' }), '/ws').storage).toMatchObject({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
    })
  })

  describe('public-url beside bucket: a consumer-only run without credentials reads through public-url', () => {
    afterEach(() => vi.unstubAllEnvs())
    const both = { bucket: 'b-1', 'public-url': 'https://cdn.example.com/cache' }

    it('with no key inputs and no AWS_* variables: public-url, and no region is needed', () => {
      for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_PROFILE']) vi.stubEnv(name, '')
      expect(readConfig(reader(both), '/ws').storage).toEqual({
        kind: 'public-url',
        baseUrl: 'https://cdn.example.com/cache',
      })
      expect(() => readConfig(reader({ ...both, region: 'tokyo' }), '/ws')).toThrow(/Input 'region'/)
    })

    it('with key inputs, AWS_* credentials, or mode producer: the bucket, which needs its region', () => {
      const withKeys = { ...both, 'access-key-id': 'AKIAEXAMPLE', 'secret-access-key': 'secret-example' }
      expect(readConfig(reader({ ...withKeys, region: 'eu-west-1' }), '/ws').storage.kind).toBe('s3')
      expect(() => readConfig(reader(withKeys), '/ws')).toThrow(/Input 'region': is required with bucket/)
      const producer = { ...withKeys, mode: 'producer', region: 'eu-west-1' }
      expect(readConfig(reader(producer), '/ws').storage.kind).toBe('s3')
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAFROMENV')
      expect(readConfig(reader({ ...both, region: 'eu-west-1' }), '/ws').storage.kind).toBe('s3')
    })
  })

  it('fail-on-cache-miss is refused in a producer-only run, naming the input and the fix', () => {
    const read = reader({ ...valid, mode: 'producer', 'fail-on-cache-miss': 'true' })
    expect(() => readConfig(read, '/ws')).toThrow(InputError)
    expect(() => readConfig(read, '/ws')).toThrow(
      /Input 'fail-on-cache-miss': applies only when mode includes consumer .* remove it, or use 'mode: consumer,producer'/,
    )
    const both = readConfig(reader({ ...valid, mode: 'consumer,producer', 'fail-on-cache-miss': 'true' }), '/ws')
    expect(both.failOnCacheMiss).toBe(true)
    expect(
      readConfig(reader({ ...valid, mode: 'producer', 'fail-on-cache-miss': 'false' }), '/ws').failOnCacheMiss,
    ).toBe(false)
  })

  it('splits extra-args like a shell, quotes included', () => {
    expect(splitArgs(`--verbose --flag "a b" 'c d' e`, 'extra-args')).toEqual([
      '--verbose',
      '--flag',
      'a b',
      'c d',
      'e',
    ])
    expect(() => splitArgs('"open', 'extra-args')).toThrow(/unclosed quote/)
  })

  it.each([
    [
      'mode',
      { mode: 'publisher' },
      /Input 'mode': 'publisher' is not valid; use consumer, producer, or consumer,producer/,
    ],
    ['bucket', { bucket: 'My_Bucket' }, /Input 'bucket': 'My_Bucket' is not a valid S3 bucket name/],
    ['bucket (IP address)', { bucket: '192.168.1.1' }, /Input 'bucket'/],
    ['bucket (missing)', { bucket: '' }, /Input 'bucket': is required/],
    ['region', { region: 'tokyo' }, /Input 'region': 'tokyo' is not a valid AWS region/],
    ['region (missing)', { region: '' }, /Input 'region': is required with bucket/],
    [
      'public-url (not http)',
      { bucket: '', 'public-url': 'ftp://example.com/cache' },
      /Input 'public-url': .* must start with http:\/\/ or https:\/\//,
    ],
    [
      'public-url (not a URL)',
      { bucket: '', 'public-url': 'not a url' },
      /Input 'public-url': 'not a url' is not a URL/,
    ],
    [
      'public-url (with a password)',
      { bucket: '', 'public-url': 'https://u:p@example.com' },
      /must not contain a user name or password/,
    ],
    ['endpoint', { endpoint: 'minio:9000' }, /Input 'endpoint'/],
    [
      'producer without credentials',
      { mode: 'producer', bucket: '', 'public-url': 'https://example.com' },
      /Input 'bucket': is required when mode includes producer/,
    ],
    [
      'access key without secret',
      { 'secret-access-key': '' },
      /Input 'secret-access-key': is empty while its pair is set/,
    ],
    [
      'session token alone',
      { 'access-key-id': '', 'secret-access-key': '', 'session-token': 'x' },
      /Input 'session-token'/,
    ],
    [
      'should-publish',
      { 'should-publish': 'maybe' },
      /Input 'should-publish': 'maybe' is not a boolean; use true or false/,
    ],
    ['force-path-style', { 'force-path-style': 'yes please' }, /Input 'force-path-style'/],
    ['support-simulators', { 'support-simulators': '2' }, /Input 'support-simulators'/],
    ['embed-debug-symbols', { 'embed-debug-symbols': 'y' }, /Input 'embed-debug-symbols'/],
    ['library-evolution', { 'library-evolution': 'enable' }, /Input 'library-evolution'/],
    ['configuration', { configuration: 'profile' }, /Input 'configuration': 'profile' is not one of debug, release/],
    [
      'framework-type',
      { 'framework-type': 'shared' },
      /Input 'framework-type': 'shared' is not one of dynamic, static, mergeable/,
    ],
    ['concurrency 0', { concurrency: '0' }, /Input 'concurrency': '0' is not a whole number from 1 to 64/],
    ['concurrency -1', { concurrency: '-1' }, /Input 'concurrency'/],
    ['concurrency 1.5', { concurrency: '1.5' }, /Input 'concurrency'/],
    ['concurrency too high', { concurrency: '1000' }, /Input 'concurrency'/],
    ['prefix', { prefix: 'a/../b' }, /Input 'prefix': 'a\/..\/b' has an empty, '.' or '..' path segment/],
    ['extra-args', { 'extra-args': '--flag "unclosed' }, /Input 'extra-args': has an unclosed quote/],
    ['fail-on-cache-miss', { 'fail-on-cache-miss': 'sometimes' }, /Input 'fail-on-cache-miss'/],
    ['strict', { strict: 'very' }, /Input 'strict'/],
    ['allow-untrusted-upload', { 'allow-untrusted-upload': 'ok' }, /Input 'allow-untrusted-upload'/],
    [
      'stall-timeout-seconds',
      { 'stall-timeout-seconds': '0' },
      /Input 'stall-timeout-seconds': '0' is not a number above 0/,
    ],
    ['cache-timeout-minutes', { 'cache-timeout-minutes': 'ten' }, /Input 'cache-timeout-minutes'/],
  ])('refuses a bad %s with an error naming the input', (_name, bad, message) => {
    const read = reader({ ...valid, ...bad })
    expect(() => readConfig(read, '/ws')).toThrow(InputError)
    expect(() => readConfig(read, '/ws')).toThrow(message)
  })
})

describe('bad input stops the step before any network call', () => {
  const store = useStore(['input-cache'])

  const resolvedCases: [string, string | undefined, RegExp][] = [
    ['not JSON', '{"pins": [', /is not a valid Package\.resolved: not JSON/],
    ['an unknown version', '{"pins": [], "version": 9}', /unknown format version 9/],
    ['missing fields', '{"pins": [{"identity": "a"}], "version": 2}', /pin 1: needs 'state'/],
    [
      'duplicate identities',
      '{"pins": [{"identity": "a", "kind": "k", "location": "x", "state": {"revision": "1"}}, {"identity": "a", "kind": "k", "location": "y", "state": {"revision": "2"}}], "version": 2}',
      /pinned twice/,
    ],
    ['empty', '', /the file is empty/],
    ['missing', undefined, /No Package\.resolved found/],
  ]

  it.each(resolvedCases)('a Package.resolved that is %s', async (_name, text, message) => {
    const ws = await exampleWorkspace()
    if (text === undefined) await fs.rm(path.join(ws, 'Package.resolved'))
    else await fs.writeFile(path.join(ws, 'Package.resolved'), text)
    store.proxy.requests.length = 0
    const run = await runAction({
      ...s3TestInputs(store.proxy.endpoint, 'input-cache'),
      'package-directory': ws,
    })
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(/::error/)
    expect(run.stdout).toMatch(message)
    expect(store.proxy.requests).toEqual([])
  })

  it.each([
    ['mode', { mode: 'both' }],
    ['concurrency', { concurrency: '0' }],
    ['public-url', { bucket: '', 'public-url': 'file:///etc/passwd' }],
    ['bucket', { bucket: 'UPPER' }],
  ])('a bad %s', async (name, bad) => {
    store.proxy.requests.length = 0
    const run = await runAction({
      ...s3TestInputs(store.proxy.endpoint, 'input-cache'),
      'package-directory': await exampleWorkspace(),
      ...bad,
    })
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(new RegExp(`::error title=Input '${name}'::Input '${name}'`))
    expect(store.proxy.requests).toEqual([])
  })

  it('no scipio on a Linux runner is a clear error', async () => {
    const emptyBin = await fs.mkdtemp(path.join(os.tmpdir(), 'bin-'))
    const run = await runAction(
      { bucket: 'input-cache', region: 'us-east-1', 'package-directory': await exampleWorkspace() },
      { PATH: `${emptyBin}:/usr/bin:/bin` },
    )
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(/Scipio was not found on PATH, and this runner is linux: Scipio needs macOS and Xcode/)
  })
})
