import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { describe, expect, it } from 'vitest'
import { createRunnerLog, parseCommand, summariesToHtml, summaryToText } from '../scripts/runner-log.mjs'
import { root } from './helpers/s3-server.js'

// __fixtures__/runner-log/*.stdout.txt is what dist/index.js wrote to stdout in real runs on Node 24 against the
// local S3 server (a producer, a consumer meeting a damaged archive, a bad input, a consumer failing on a miss),
// with the server's port and the checkout's path replaced; *.summary.md is what those runs wrote to
// GITHUB_STEP_SUMMARY. The credentials in them are the local run's throwaway ones.
const fixture = (name: string) => fs.readFileSync(path.join(root, '__fixtures__/runner-log', name), 'utf8')
const credentials = ['AKIALOCALRUN0000', 'local-run-secret-0000000000']
/** A workflow command at the start of a line, the way the runner reads them. */
const rawCommand = /^\s*::[a-z-]+(?: [^:]*)?::/m

function render(text: string, options: { verbose?: boolean; now?: () => number } = {}) {
  const lines: string[] = []
  const log = createRunnerLog({ write: (l) => lines.push(l), ...options })
  for (const l of text.split('\n')) if (l) log.line(l)
  return { lines, output: lines.join('\n'), log, seen: log.end() }
}

describe('parseCommand', () => {
  it('reads the name, the unescaped properties and the unescaped message', () => {
    expect(parseCommand('::warning file=a%3Ab.swift,line=3,title=T%2C x::first%0Asecond 100%25')).toEqual({
      name: 'warning',
      properties: { file: 'a:b.swift', line: '3', title: 'T, x' },
      message: 'first\nsecond 100%',
    })
    expect(parseCommand('::endgroup::')).toEqual({ name: 'endgroup', properties: {}, message: '' })
    expect(parseCommand('::add-mask::s3cr3t')).toEqual({ name: 'add-mask', properties: {}, message: 's3cr3t' })
  })

  it('leaves ordinary lines alone', () => {
    expect(parseCommand('Restored 7 frameworks')).toBeUndefined()
    expect(parseCommand('[command]/bin/scipio prepare')).toBeUndefined()
    expect(parseCommand('a line with ::warning:: inside')).toBeUndefined()
  })
})

describe('the runner-like log of a real producer run', () => {
  const producer = fixture('producer.stdout.txt')

  it('the fixture holds the workflow commands the renderer must handle', () => {
    for (const c of ['::add-mask::', '::debug::', '::group::', '::endgroup::', '[command]'])
      expect(producer).toContain(c)
  })

  it('shows no workflow command and no masked value', () => {
    const { output } = render(producer, { verbose: true })
    expect(output).not.toMatch(rawCommand)
    expect(output).not.toContain('::')
    for (const secret of credentials) expect(output).not.toContain(secret)
  })

  it('turns groups into titled sections with their lines indented, and times them', () => {
    let clock = 0
    const { lines, seen } = render(producer, { now: () => (clock += 100) })
    const start = lines.indexOf('▾ Build with Scipio')
    expect(start).toBeGreaterThan(lines.indexOf('▾ Restore frameworks from the cache'))
    expect(lines[start + 1]).toMatch(/^ {2}\/repo\/scipio-test-double\/bin\/scipio prepare /) // [command] lines lose the marker
    expect(lines[start + 2]).toBe('  📦 Building Delegate for iOS, macOS')
    expect(lines).toContain('Scipio exited with 0; built 7 frameworks.') // after ::endgroup::, not indented
    expect(seen.groups.map((g) => g.title)).toEqual([
      'Restore frameworks from the cache',
      'Build with Scipio',
      'Upload frameworks to the cache',
    ])
    for (const g of seen.groups) expect(g.ms).toBeGreaterThan(0)
  })

  it('hides debug lines unless verbose', () => {
    expect(render(producer).output).not.toContain('package key of apngkit')
    expect(
      render(producer, { verbose: true }).lines.filter((l) => l.startsWith('Debug: package key of ')),
    ).toHaveLength(5)
  })

  it('masks a registered value wherever it appears later, also on standard error', () => {
    const { log, lines } = render(producer)
    log.line(`key ${credentials[0]} and ${credentials[1]}`)
    log.line(`stderr ${credentials[1]}`, { stderr: true })
    expect(lines.slice(-2)).toEqual(['key *** and ***', 'stderr ***'])
  })

  it('does not read commands from standard error, and prints lines as they are while commands are stopped', () => {
    const { lines, log } = render('')
    log.line('::warning::from stderr', { stderr: true })
    log.line('::stop-commands::tok')
    log.line('::error::printed as it is')
    log.line('::tok::')
    log.line('::error::read again')
    expect(lines).toEqual(['::warning::from stderr', '::error::printed as it is', 'Error: read again'])
  })
})

describe('warnings and errors of real runs', () => {
  it('marks a warning (a damaged archive) and counts it', () => {
    const { output, seen } = render(fixture('damaged.stdout.txt'))
    expect(output).toMatch(
      /^ {2}Warning: Cache miss for Kingfisher \(kingfisher\): integrity check failed: .* It will be built\.$/m,
    )
    expect(seen.annotations.map((a) => a.kind)).toEqual(['warning'])
    expect(output).not.toMatch(rawCommand)
  })

  it('marks an error once, without repeating a title the message starts with', () => {
    const { lines, seen } = render(fixture('bad-input.stdout.txt'))
    expect(lines).toEqual(["Error: Input 'concurrency': '0' is not a whole number from 1 to 64."])
    expect(seen.annotations).toEqual([
      {
        kind: 'error',
        title: "Input 'concurrency'",
        file: undefined,
        message: "Input 'concurrency': '0' is not a whole number from 1 to 64.",
      },
    ])
  })

  it('marks the error of a consumer that fails on a miss', () => {
    const { output } = render(fixture('miss.stdout.txt'))
    expect(output).toMatch(/^Error: fail-on-cache-miss: 5 not in the cache: apngkit \(package\)/m)
  })

  it('names the file and line of an annotation that has them, and indents the lines of a multi-line message', () => {
    const { lines } = render('::warning file=MyAppDependencies/Package.resolved,line=4,title=Bad pin::first%0Asecond')
    expect(lines).toEqual(['Warning: Bad pin: first (MyAppDependencies/Package.resolved:4)', '  second'])
  })
})

describe('job summary as text and as HTML', () => {
  const producer = fixture('producer.summary.md')

  it('renders the heading, the text and the table of a real summary without markup', () => {
    const text = summaryToText(producer)
    const lines = text.split('\n')
    expect(lines.slice(0, 2)).toEqual(['Scipio S3 cache', '==============='])
    expect(text).toContain('Restored 0, built 7, uploaded 7. Cache hit: false.')
    expect(text).not.toMatch(/<\/?[a-z]+[^>]*>/)
    const header = lines.findIndex((l) => l.startsWith('Target'))
    expect(lines[header]).toMatch(/^Target +Package +Result +Size +Time$/)
    expect(lines[header + 1]).toMatch(/^-+( +-+){4}$/)
    const row = lines.find((l) => l.startsWith('APNGKit'))!
    // Columns line up under their headings.
    expect(row.indexOf('apngkit')).toBe(lines[header]!.indexOf('Package'))
    expect(row.indexOf('built, uploaded')).toBe(lines[header]!.indexOf('Result'))
    expect(lines.filter((l) => /^\S+ +\S+ +built, uploaded /.test(l))).toHaveLength(7)
  })

  it('decodes entities and keeps link targets', () => {
    expect(
      summaryToText('<h3>A &amp; B</h3>\nsee <a href="https://x.test/y">the docs</a>, <code>&lt;T&gt;</code>'),
    ).toBe('A & B\n-----\n\nsee the docs (https://x.test/y), `<T>`')
  })

  it('writes one HTML page with each summary, its text escaped', () => {
    const html = summariesToHtml([
      { title: 'producer', markdown: producer },
      { title: 'consumer', markdown: 'Restored <3 frameworks\n\n<table><tr><td>x</td></tr></table>' },
    ])
    expect(html).toMatch(/^<!doctype html>/)
    expect(html).toContain('<h1>producer</h1>')
    expect(html).toContain('<h2>Scipio S3 cache</h2>')
    expect(html).toContain('<td>APNGKit</td>')
    expect(html).toContain('<p>Restored &lt;3 frameworks</p>')
    expect(html).toContain('<table><tr><td>x</td></tr></table>')
  })
})

async function localRun(args: string[] = []): Promise<{ code: number; output: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' }
  delete env.ACTIONS_STEP_DEBUG
  const child = spawn(process.execPath, [path.join(root, 'scripts/local-run.mjs'), ...args], { cwd: root, env })
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)))
  return { code, output }
}

describe('npm run local', () => {
  it('runs the action on Node 24 and shows a runner-like log, the summaries and the comparison', async () => {
    const { code, output } = await localRun()
    expect(code, output).toBe(0)
    expect(output).not.toMatch(rawCommand)
    expect(output).not.toContain('::')
    for (const secret of credentials) expect(output).not.toContain(secret)
    expect(output).not.toMatch(/NodeVersionSupportWarning|Warning: .*AWS SDK/)
    expect(output).toMatch(/^ {2}Node\.js v24\.\d+\.\d+, from /m)
    expect(output).toContain('    secret-access-key: ***')
    expect(output).toContain('▾ Build with Scipio')
    expect(output).not.toContain('package key of') // debug lines are hidden
    // The job summaries, as text and as a page.
    expect(output).toContain('  Restored 7, built 0 (build skipped: everything restored), uploaded 0. Cache hit: true.')
    const html = fs.readFileSync(path.join(root, '.local-run/job-summaries.html'), 'utf8')
    expect(html).toContain('<h1>consumer: job summary</h1>')
    // The comparison of the two passes.
    const table = output.slice(output.indexOf('━━ Producer and consumer ━━'))
    expect(table).toMatch(/^ {2}cache hit +false +true$/m)
    expect(table).toMatch(/^ {2}restored +0 +7 frameworks \(\d+\.\d [KM]iB\)$/m)
    expect(table).toMatch(/^ {2}built +7 frameworks +0$/m)
    expect(table).toMatch(/^ {2}uploaded +7 frameworks \(\d+\.\d [KM]iB\) +0$/m)
    expect(table).toMatch(/^ {4}Build with Scipio +(\d+ ms|\d+\.\d s) +-$/m)
    expect(table).toMatch(/Archives: code\.tar\.zst, written on Node\.js v24\./)
  })

  it('shows the debug lines with --verbose', async () => {
    const { code, output } = await localRun(['--verbose'])
    expect(code).toBe(0)
    expect(output).toMatch(/^ {0,2}Debug: package key of apngkit: [0-9a-f]{64} /m)
    expect(output).not.toContain('::')
  })
})
