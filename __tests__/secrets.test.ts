import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { runAction, type ActionRun } from './helpers/action.js'
import { exampleWorkspace } from './helpers/workspace.js'
import { limited } from './helpers/proxy.js'
import { useStore } from './helpers/store.js'
import { storedRecords } from './helpers/records.js'

// Recognisable fake secrets: if any of them shows up anywhere, the test names it.
const secrets = {
  accessKeyId: 'AKIALEAKCHECK0000042',
  secretAccessKey: 'LeakCheckSecretKey/abcdefghijklmnopqrstuvw0042',
  sessionToken: 'LeakCheckSessionToken+zyxwvutsrqponmlkjihgfedcba0042',
}

const store = useStore(['secret-cache'], { credentials: [secrets] })

/** The runner consumes `::add-mask::` lines (they are how secrets get masked); everything else must be clean. */
function leaks(run: ActionRun): string[] {
  const stdout = run.stdout
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n')
  const places = { stdout, stderr: run.stderr, outputs: JSON.stringify(run.outputs), summary: run.summary }
  const found: string[] = []
  for (const [where, text] of Object.entries(places)) {
    for (const [name, value] of Object.entries(secrets)) {
      if (text.includes(value)) found.push(`${name} in ${where}`)
      // Parts of a secret (e.g. a signing scope built from the key ID) count too.
      if (text.includes(value.slice(0, 16))) found.push(`part of ${name} in ${where}`)
    }
  }
  return found
}

function inputs(extra: Record<string, string> = {}) {
  return {
    bucket: 'secret-cache',
    region: 'us-east-1',
    endpoint: store.proxy.endpoint,
    'force-path-style': 'true',
    'access-key-id': secrets.accessKeyId,
    'secret-access-key': secrets.secretAccessKey,
    'session-token': secrets.sessionToken,
    ...extra,
  }
}

const debug = { ACTIONS_STEP_DEBUG: 'true', RUNNER_DEBUG: '1' }

// Variables a runner sets that a run record must never hold (it may hold only those it names).
const runnerSecrets = {
  GITHUB_TOKEN: 'ghs_LeakCheckGithubToken0000000000042',
  ACTIONS_RUNTIME_TOKEN: 'LeakCheckRuntimeToken00000000000042',
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'LeakCheckIdTokenRequest0000000042',
}

describe('secrets never reach a log, an output, the summary or an error', () => {
  it('a producer and a consumer with debug logging on', async () => {
    const producer = await runAction(
      inputs({ mode: 'consumer,producer', 'package-directory': await exampleWorkspace(), 'should-publish': 'true' }),
      debug,
    )
    expect(producer.code, producer.stdout).toBe(0)
    expect(producer.stdout).toContain('::add-mask::' + secrets.secretAccessKey) // masked before anything else
    expect(producer.stdout.indexOf('::add-mask::')).toBe(0)
    expect(producer.stdout).toContain('::debug::') // debug logging was on
    expect(leaks(producer)).toEqual([])
    const consumer = await runAction(inputs({ 'package-directory': await exampleWorkspace() }), debug)
    expect(consumer.code).toBe(0)
    expect(consumer.outputs['cache-hit']).toBe('true')
    expect(leaks(consumer)).toEqual([])
  })

  it('a run record holds no secret, no URL and no environment value but those it names', async () => {
    // A copy: the SDK marks the credentials object it is given.
    const keys = { accessKeyId: secrets.accessKeyId, secretAccessKey: secrets.secretAccessKey }
    const before = (await storedRecords(store, 'secret-cache', 'records', keys)).map((r) => r.key)
    const env = { ...debug, ...runnerSecrets, GITHUB_REPOSITORY: 'acme/app', GITHUB_WORKFLOW: 'CI' }
    const producer = await runAction(
      inputs({ mode: 'consumer,producer', prefix: 'records', 'package-directory': await exampleWorkspace() }),
      env,
    )
    expect(producer.code, producer.stdout).toBe(0)
    const consumer = await runAction(inputs({ prefix: 'records', 'package-directory': await exampleWorkspace() }), env)
    expect(consumer.code, consumer.stdout).toBe(0)
    const records = (await storedRecords(store, 'secret-cache', 'records', keys)).filter((r) => !before.includes(r.key))
    expect(records).toHaveLength(2)
    for (const { key, record } of records) {
      const text = JSON.stringify(record)
      expect(text).toContain('acme/app') // the record was written with the runner's variables present
      for (const [name, value] of Object.entries({ ...secrets, ...runnerSecrets })) {
        expect(text, `${name} in ${key}`).not.toContain(value)
        expect(text, `part of ${name} in ${key}`).not.toContain(value.slice(0, 16))
      }
      expect(text).not.toMatch(/https?:|X-Amz-|127\.0\.0\.1/i)
    }
    expect(leaks(producer)).toEqual([])
    expect(leaks(consumer)).toEqual([])
  })

  it('an S3 error whose message embeds the request, credentials included', async () => {
    // A server (or proxy) that echoes the request's credentials back in its error message.
    store.proxy.fault = limited(
      () => true,
      Infinity,
      (req, res) => {
        req.resume()
        const echoed = `Denied for ${req.headers.authorization} token ${req.headers['x-amz-security-token']} secret ${secrets.secretAccessKey}`
        if (req.method === 'HEAD') {
          res.writeHead(403)
          return void res.end()
        }
        const body = `<?xml version="1.0"?><Error><Code>InvalidArgument</Code><Message>${echoed}</Message></Error>`
        res.writeHead(400, { 'content-type': 'application/xml' })
        res.end(body)
      },
    )
    try {
      const run = await runAction(
        inputs({
          mode: 'consumer,producer',
          prefix: 'echo',
          strict: 'true',
          'package-directory': await exampleWorkspace(),
        }),
        debug,
      )
      expect(run.code).toBe(1) // strict: the cache errors fail the step, with their (redacted) text
      expect(run.stdout).toMatch(/::error::strict: /)
      expect(run.stdout).toContain('***')
      expect(leaks(run)).toEqual([])
    } finally {
      store.proxy.fault = undefined
    }
  })

  it('a bad input next to the secrets', async () => {
    const run = await runAction(
      inputs({ concurrency: '0', 'package-directory': path.join(await exampleWorkspace()) }),
      debug,
    )
    expect(run.code).toBe(1)
    expect(run.stdout).toMatch(/Input 'concurrency'/)
    expect(leaks(run)).toEqual([])
  })
})
