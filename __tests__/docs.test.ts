import { validateWorkflow } from '@action-validator/core'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { commandSpecs, exitCodeHelp } from '../src/cli/args.js'
import { classify, defaultOlderThanDays } from '../src/cli/prune.js'
import { Inputs, Outputs } from '../src/constants.js'
import { cancelledExitCode } from '../src/cli/main.js'
import { graceMs } from '../src/flow/cancel.js'
import { abandonedAfterMs } from '../src/archive/owned-folders.js'
import { deleteBatchSize } from '../src/storage/s3-admin.js'
// @ts-expect-error: the generator is plain JavaScript
import { updateTables } from '../scripts/readme-tables.mjs'
import {
  brokenLinks,
  code,
  headingAnchors,
  markdownLinks,
  readActionFile,
  readmeTable,
  stepsUsingAction,
  yamlBlocks,
  type Step,
} from './helpers/docs.js'
import { root } from './helpers/s3-server.js'
import { defaultRetryPolicy } from '../src/retry.js'
import { describeS3Error, sdkMaxAttempts } from '../src/storage/s3.js'
import { ReadRule, type RefusedReadError } from '../src/storage/refusals.js'
import { indexReadsPerSlot, maxInFlight, maxIndexReads, unitsPerSlot } from '../src/restore/in-flight.js'

/** Each action file, the page and the headings whose tables document it. Sub-actions add a line here. */
const documented = [
  { action: 'action.yml', readme: 'README.md', inputs: '## Inputs', outputs: '## Outputs' },
  {
    action: 'restore/action.yml',
    readme: 'docs/sub-actions.md',
    inputs: '## Restore inputs',
    outputs: '## Restore outputs',
  },
  { action: 'save/action.yml', readme: 'docs/sub-actions.md', inputs: '## Save inputs', outputs: '## Save outputs' },
]
const actionFiles = documented.map((d) => readActionFile(d.action))
const union = (names: string[][]) => [...new Set(names.flat())].sort()

const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
/** The README and every page under docs/, as paths relative to the repository. */
const pages = [
  'README.md',
  ...fs
    .readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]
const readPage = (file: string) => fs.readFileSync(path.join(root, file), 'utf8')

function sourceFiles(dir = path.join(root, 'src')): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(full)
    return e.name.endsWith('.ts') ? [full] : []
  })
}
const source = sourceFiles()
  .filter((f) => !f.endsWith('constants.ts'))
  .map((f) => fs.readFileSync(f, 'utf8'))
  .join('\n')

describe.each(documented)('$readme documents $action', ({ action, readme: readmeFile, inputs, outputs }) => {
  const file = readActionFile(action)
  const markdown = fs.readFileSync(path.join(root, readmeFile), 'utf8')

  it(`the '${inputs}' table lists the same inputs, defaults and descriptions, in order`, () => {
    const rows = readmeTable(markdown, inputs)
    expect(rows.map((r) => r.length)).toEqual(rows.map(() => 3))
    expect(rows.map((r) => code(r[0]!))).toEqual(file.inputs.map((i) => i.name))
    for (const [i, input] of file.inputs.entries()) {
      const [, def, description] = rows[i]!
      expect(code(def!), `default of ${input.name}`).toBe(input.default ?? '')
      expect(description, `description of ${input.name}`).toBe(input.description)
    }
  })

  it(`the '${outputs}' table lists the same outputs and descriptions, in order`, () => {
    const rows = readmeTable(markdown, outputs)
    expect(rows.map((r) => code(r[0]!))).toEqual(file.outputs.map((o) => o.name))
    for (const [i, output] of file.outputs.entries())
      expect(rows[i]![1], `description of ${output.name}`).toBe(output.description)
  })
})

describe('npm run docs', () => {
  it.each([...new Set(documented.map((d) => d.readme))])(
    'leaves %s as it is (its tables are already generated)',
    (file) => {
      const entries = documented.filter((d) => d.readme === file)
      expect(updateTables(readPage(file), entries, file)).toBe(readPage(file))
    },
  )

  it('rewrites a table that differs from its action file (so the check above can fail)', () => {
    const stale = readPage('README.md').replace(/^\| `bucket` \|.*$/m, '| `bucket` |  | An old description. |')
    expect(stale).not.toBe(readPage('README.md'))
    expect(
      updateTables(
        stale,
        documented.filter((d) => d.readme === 'README.md'),
        'README.md',
      ),
    ).toBe(readPage('README.md'))
  })
})

describe('action.yml and src/ agree', () => {
  it('declares, across the action and its sub-actions, exactly the inputs named in constants.ts', () => {
    expect(union(actionFiles.map((a) => a.inputs.map((i) => i.name)))).toEqual(Object.values(Inputs).sort())
  })

  it('reads every input somewhere in src/ through its Inputs constant', () => {
    const read = new Set([...source.matchAll(/\bread\w*\(\s*(?:\w+,\s*)?Inputs\.(\w+)/g)].map((m) => m[1]))
    // The secret inputs are also read through a list (maskSecrets), which the pattern above does not see.
    const unread = Object.keys(Inputs).filter((k) => !read.has(k))
    expect(unread).toEqual([])
  })

  it('declares every output src/ sets, and src/ sets every declared output', () => {
    const set = new Set(
      [...source.matchAll(/setOutput\(\s*Outputs\.(\w+)/g)].map((m) => Outputs[m[1] as keyof typeof Outputs]),
    )
    const declared = union(actionFiles.map((a) => a.outputs.map((o) => o.name)))
    expect([...set].sort()).toEqual(declared)
    expect(Object.values(Outputs).sort()).toEqual(declared)
  })
})

describe('troubleshooting.md says what cancellation and cleanup do', () => {
  const page = readPage('docs/troubleshooting.md')

  it('the grace period before a cancelled run exits at once, and the exit codes of the command line', () => {
    expect(page).toContain(`If cleaning up takes more than ${graceMs / 1000} s`)
    expect(graceMs).toBeLessThan(5_000) // "exit within 5 s"
    expect(page).toContain('and exit within 5 s')
    expect(page).toContain(
      `exits with ${cancelledExitCode('SIGINT')} after SIGINT (Ctrl-C) and ${cancelledExitCode('SIGTERM')} after SIGTERM`,
    )
  })

  it('how long a folder of an unknown owner is kept: the longest cache phase', () => {
    const longest = Number(/at most (\d+)\)/.exec(page)?.[1])
    expect(longest * 60_000).toBe(abandonedAfterMs)
    expect(page).toContain(`is removed once unchanged for ${abandonedAfterMs / 3_600_000} hours`)
    expect(source).toMatch(new RegExp(`Inputs\\.CacheTimeoutMinutes, \\d+, ${longest}\\)`))
  })
})

/** Checks a step's `with:` against the action file it uses, and `steps.<id>.outputs.<name>` against its outputs. */
function checkUses(text: string, doc: unknown, where: string): number {
  const uses = stepsUsingAction(doc)
  for (const { step, actionFile } of uses) {
    const action = readActionFile(actionFile)
    const inputs = action.inputs.map((i) => i.name)
    for (const key of Object.keys(step.with ?? {}))
      expect(inputs, `${where}: '${key}' is not an input of ${actionFile}`).toContain(key)
    if (step.id) {
      for (const m of text.matchAll(new RegExp(`steps\\.${step.id}\\.outputs\\.([\\w-]+)`, 'g'))) {
        expect(
          action.outputs.map((o) => o.name),
          `${where}: output '${m[1]}'`,
        ).toContain(m[1])
      }
    }
  }
  return uses.length
}

describe('example workflows', () => {
  const dir = path.join(root, 'docs/workflows')
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.yml'))

  it('cover a producer, PR consumers with credentials and with a public URL, OIDC, MinIO, scoped PRs and insights', () => {
    expect(files.sort()).toEqual([
      'consumer-fork-pr.yml',
      'consumer-pr.yml',
      'insights.yml',
      'minio.yml',
      'oidc.yml',
      'producer.yml',
      'scoped-pr.yml',
    ])
  })

  // insights.yml runs the command line, not the action; insights.test.ts runs its job as written.
  const commandLineOnly = ['insights.yml']

  it.each(files)('%s is a valid workflow that uses only declared inputs and outputs', (file) => {
    const text = fs.readFileSync(path.join(dir, file), 'utf8')
    expect(validateWorkflow(text).errors).toEqual([])
    const uses = checkUses(text, parse(text), file)
    if (commandLineOnly.includes(file)) expect(uses).toBe(0)
    else expect(uses).toBeGreaterThan(0)
  })

  it.each(files)('the README links to %s', (file) => {
    expect(readme).toContain(`(docs/workflows/${file})`)
  })

  it('the validator rejects a broken workflow (so the checks above can fail)', () => {
    expect(
      validateWorkflow('on: push\njobs:\n  a:\n    runs-on: macos-15\n    stepz: []\n').errors.length,
    ).toBeGreaterThan(0)
    const bad =
      'on: push\njobs:\n  a:\n    runs-on: macos-15\n    steps:\n      - uses: o/scipio-s3-cache@v1\n        with:\n          no-such-input: x\n'
    expect(() => checkUses(bad, parse(bad), 'bad')).toThrow(/no-such-input/)
  })
})

describe('YAML examples in the README and docs/', () => {
  const blocks = pages.flatMap((file) => yamlBlocks(readPage(file)))

  it('whole workflows are valid and use only declared inputs and outputs', () => {
    const workflows = blocks.filter((b) => /^jobs:/m.test(b))
    expect(workflows.length).toBeGreaterThan(0)
    for (const text of workflows) {
      expect(validateWorkflow(text).errors).toEqual([])
      checkUses(text, parse(text), 'README')
    }
  })

  it('step fragments use only declared inputs', () => {
    const fragments = blocks.filter((b) => /^\s*- uses:/.test(b))
    for (const text of fragments) {
      const steps = parse(text.replace(/^ {6}/gm, '')) as Step[]
      checkUses(text, { jobs: { example: { steps } } }, 'README fragment')
    }
  })
})

describe('links in the README and docs/', () => {
  it('the README is a front page: short, and links to every page under docs/', () => {
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(12 * 1024)
    const linked = new Set(markdownLinks(readme).map((l) => l.target.split('#')[0]))
    for (const page of pages.filter((p) => p !== 'README.md')) expect(linked, page).toContain(page)
  })

  it.each(pages)('every relative link in %s leads to a file, and every #anchor to a heading', (file) => {
    expect(markdownLinks(readPage(file)).length).toBeGreaterThan(0)
    expect(brokenLinks(root, file)).toEqual([])
  })

  it('the check finds a missing file, a missing anchor and a link out of the repository, and skips code', () => {
    // A made-up text read in place of docs/cli.md.
    const page = path.join(root, 'docs/cli.md')
    const text = [
      '# A page',
      '[ok](../README.md#set-up) [ok too](#a-page) [web](https://example.com/x#y)',
      '[gone](no-such-page.md) [bad anchor](../README.md#no-such-heading) [away](../../etc/passwd)',
      '`[in code](nowhere.md)`',
      '```md',
      '[in a fence](nowhere.md)',
      '```',
    ].join('\n')
    const read = (p: string) => (p === page ? text : fs.readFileSync(p, 'utf8'))
    expect(brokenLinks(root, 'docs/cli.md', read)).toEqual([
      'docs/cli.md:3: no-such-page.md (no such file)',
      'docs/cli.md:3: ../README.md#no-such-heading (no heading with that anchor)',
      'docs/cli.md:3: ../../etc/passwd (outside the repository)',
    ])
  })

  it('anchors follow GitHub: lower case, punctuation dropped, code kept, repeats numbered', () => {
    const anchors = headingAnchors(
      '# Installing Scipio: `scipio-version`\n## `should-publish` and buckets\n## Notes\n## Notes\n```sh\n# not a heading\n```',
    )
    expect([...anchors]).toEqual(['installing-scipio-scipio-version', 'should-publish-and-buckets', 'notes', 'notes-1'])
  })
})

describe('docs/storage.md on prune', () => {
  it('states the batch size and the grace age the code uses', () => {
    const text = fs.readFileSync(path.join(root, 'docs/storage.md'), 'utf8').replace(/\s+/g, ' ')
    expect(text).toContain(`Immediately before each batch of up to ${deleteBatchSize} deletions`)
    expect(text).toContain(`\`--older-than DAYS\` ago (default ${defaultOlderThanDays})`)
  })
})

/** A page's text with its line breaks folded, so a sentence can be matched whatever its wrapping. */
const page = (file: string) => fs.readFileSync(path.join(root, file), 'utf8').replace(/\s*\n\s*/g, ' ')

// Each number below is the code's constant; the behaviour behind it has its own test (named beside it).
describe('sentences that state what the code does', () => {
  it('retries (docs/troubleshooting.md; faults.test.ts counts the requests)', () => {
    const text = page('docs/troubleshooting.md')
    expect(text).toContain(`are tried ${defaultRetryPolicy.attempts} times in all`)
    expect(text).toContain(
      `(${defaultRetryPolicy.baseDelayMs / 1000} s doubling, at most ${defaultRetryPolicy.maxDelayMs / 1000} s)`,
    )
    expect(text).toContain(`is itself tried up to ${sdkMaxAttempts} times`)
    expect(text).toContain(`without the SDK: ${defaultRetryPolicy.attempts} attempts only`)
  })

  it('the concurrency bounds (action.yml, restore/action.yml, docs/how-it-works.md; in-flight.test.ts)', () => {
    const small = `up to ${unitsPerSlot} × concurrency small ones (at most ${maxInFlight}) are in flight`
    const indexes = `package indexes are read ${indexReadsPerSlot} × concurrency at a time (at most ${maxIndexReads})`
    for (const file of ['action.yml', 'restore/action.yml']) {
      const description = readActionFile(file).inputs.find((i) => i.name === Inputs.Concurrency)!.description
      expect(description, file).toContain(small)
      expect(description, file).toContain(indexes)
      expect(description, file).toContain('min(concurrency, cores) threads extract')
    }
    const text = page('docs/how-it-works.md')
    expect(text).toContain(`up to ${unitsPerSlot} × \`concurrency\` requests are in flight, at most ${maxInFlight}`)
    expect(text).toContain(
      `indexes are read ${indexReadsPerSlot} × \`concurrency\` at a time, at most ${maxIndexReads}`,
    )
  })

  it('the worker threads (docs/how-it-works.md; in-flight.test.ts checks extractionThreads)', () => {
    const text = page('docs/how-it-works.md')
    expect(text).toContain('min(`concurrency`, cores) worker threads download, hash, decompress and unpack them')
    expect(text).toContain('Through `public-url` the main thread downloads each archive')
  })

  it('the ACL sent per object kind (docs/storage.md; e2e.test.ts and scipio-s3-storage.test.ts check the headers)', () => {
    const rows = readmeTable(
      fs.readFileSync(path.join(root, 'docs/storage.md'), 'utf8'),
      '## `should-publish` and buckets with ACLs disabled',
    )
    expect(rows.map((r) => [r[0]!.split(' (')[0], code(r[1]!), code(r[2]!)])).toEqual([
      ['every other object', 'public-read', 'none'],
      ['`.aar` objects', 'public-read', 'authenticated-read'],
    ])
  })

  it('what a 403 does for each kind of reader (docs/storage.md; least-privilege.test.ts and faults.test.ts run them)', () => {
    const text = page('docs/storage.md').replace(/\s+/g, ' ')
    expect(text).toContain(
      'a 404 is "not cached", and a 403 is "not stored, or not public", a miss for that package (no warning) or archive',
    )
    expect(text).toContain('reported as "not stored, or not readable with these credentials (403)"')
    expect(text).toContain(
      'A refused package index or completion marker is "not stored yet": the package is built, with no warning',
    )
    expect(text).toContain(
      'Only a run whose every read was refused** (the completion marker and every package index, none answered) concludes that its credentials cannot read the cache.',
    )
    expect(text).toContain("the command line's `restore` and `status` exit 1")
    expect(text).toContain('Without `s3:ListBucket` it warns once per run that healing needs it, and nothing else')
  })
})

describe("issue 30's sentences, each checked against the code", () => {
  it('docs/cli.md lists every flag of every command, and the exit codes of a cancelled restore or save', () => {
    const text = page('docs/cli.md')
    const flags = new Set(Object.values(commandSpecs).flatMap((spec) => Object.keys(spec.flags)))
    for (const flag of flags) expect(text, `--${flag}`).toContain(`\`--${flag}`)
    for (const signal of ['SIGINT', 'SIGTERM']) {
      const code = cancelledExitCode(signal)
      expect(text).toMatch(new RegExp(`\\| \`${code}\` \\| \`restore\` or \`save\` cancelled by ${signal}`))
      expect(exitCodeHelp.join('\n')).toContain(String(code))
    }
  })

  it("docs/development.md's store protocol is the Storage interface's members", () => {
    const storage = fs.readFileSync(path.join(root, 'src/storage/storage.ts'), 'utf8')
    const body = /export interface Storage \{([\s\S]*?)\n\}/.exec(storage)![1]!
    const members = [...body.matchAll(/^ {2}(?:readonly )?(\w+)\??[(:]/gm)].map((m) => m[1]!)
    const row = readPage('docs/development.md')
      .split('\n')
      .find((l) => l.startsWith('| `storage/` |'))!
    const named = [...row.split('|')[2]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!)
    const protocol = members.filter((m) => !['description', 'writable', 'conditionsIgnored'].includes(m))
    expect(protocol.sort()).toEqual(['direct', 'get', 'head', 'list', 'put'])
    for (const member of protocol) expect(named, member).toContain(member)
    expect(named).not.toContain('delete')
  })

  it('the troubleshooting rows called configuration errors are the ones that stop every further request', () => {
    const settings = { kind: 's3' as const, bucket: 'b', region: 'us-east-1', forcePathStyle: false }
    const s3Error = (fields: Record<string, unknown>, operation: 'GetObject' | 'PutObject' = 'GetObject') =>
      describeS3Error(Object.assign(new Error(String(fields.message ?? fields.name)), fields), operation, settings, 'k')
    // Every read refused, none answered: the rule's verdict (one refused read alone is a miss, not a stop).
    const reads = new ReadRule()
    const refused = s3Error({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })
    expect(refused.fatal).toBe(false)
    reads.refused(refused as RefusedReadError)
    const errors = [
      reads.verdict()!,
      s3Error({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }, 'PutObject'),
      s3Error({ name: 'PermanentRedirect', $metadata: { httpStatusCode: 301 } }),
      s3Error({ name: 'AccessControlListNotSupported', $metadata: { httpStatusCode: 400 } }),
      s3Error({ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 } }),
      s3Error({ name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } }),
      s3Error({ name: 'CredentialsProviderError', message: 'Could not load credentials from any providers' }),
      s3Error({ name: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }),
    ]
    expect(errors.map((e) => e.fatal)).toEqual(Array(errors.length).fill(true))
    expect(s3Error({ name: 'InternalError', $metadata: { httpStatusCode: 500 } }).fatal).toBe(false)
    const text = readPage('docs/troubleshooting.md')
    expect(text.replace(/\s+/g, ' ')).toContain(
      'A configuration error (the first nine rows below) stops all further requests',
    )
    const rows = text.split('\n').filter((l) => l.startsWith('| `'))
    const phrases = [
      'every read of the cache was refused',
      'access denied (403)',
      'not in region',
      'ACLs disabled',
      'does not exist',
      'credentials were rejected',
      'no AWS credentials were found',
      'cannot reach',
    ]
    for (const [i, phrase] of phrases.entries()) {
      expect(rows[i], phrase).toContain(phrase)
      expect(errors[i]!.message, phrase).toContain(phrase)
    }
    // The ninth: the same rule through a public URL; the tenth is a miss of one archive, not a stop.
    expect(rows[8]).toMatch(/^\| `\.\.\. every read of the cache was refused .*public/)
    expect(rows[9]).toContain('Cache miss for T (P)')
  })

  it('the stall messages troubleshooting.md quotes are the ones the code gives', () => {
    const text = readPage('docs/troubleshooting.md')
    expect(text).toContain('download failed: ... no data for 60 s` (`no answer for 60 s`')
    expect(source).toContain('new StallError(`no data for ${Math.round(stallMs / 1000)} s`)')
    expect(source).toContain('new StallError(`no answer for ${Math.round(ms / 1000)} s`)')
  })

  it("docs/scipio-s3-storage.md's housekeeping: prune never takes scipio-s3-storage's .aar, but takes the copies", () => {
    const hex = 'a'.repeat(64)
    expect(classify('p', `p/Logging/${hex}.aar`)).toBeUndefined()
    expect(classify('p', `p/Logging/${hex}/${hex}.aar`)).toEqual({ kind: 'archive' })
    const text = page('docs/scipio-s3-storage.md')
    expect(text).toContain(
      "`scipio-s3-cache prune` never deletes the `.aar` objects at scipio-s3-storage's name (`<Target>/<key>.aar`)",
    )
    expect(text).toContain('and `prune` deletes them as its archives when no kept index or marker lists them')
  })

  it('docs/benchmarks.md points at the history for the earlier issues, not at a section below', () => {
    expect(page('docs/benchmarks.md')).not.toMatch(/issue \d+ below/)
  })
})
