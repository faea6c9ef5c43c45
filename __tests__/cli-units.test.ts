import * as fs from 'node:fs'
import * as path from 'node:path'
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { flagInputReader, parseCommandLine, UsageError } from '../src/cli/args.js'
import { withProgress } from '../src/cli/main.js'
import { ProgressReporter, type TransferEvent } from '../src/cli/progress.js'
import { classify, parseDays } from '../src/cli/prune.js'
import { Terminal, terminalLog } from '../src/cli/terminal.js'
import { Inputs } from '../src/constants.js'
import { registerSecret } from '../src/secrets.js'
import { root } from './helpers/s3-server.js'

const hex = 'a'.repeat(64)

function capture(isTTY: boolean) {
  const stream = new PassThrough() as PassThrough & { isTTY?: boolean; columns?: number }
  stream.isTTY = isTTY
  stream.columns = 200
  let text = ''
  stream.on('data', (d: Buffer) => (text += d.toString()))
  return { stream, text: () => text }
}

describe('command line parsing', () => {
  it('maps flags to the action inputs, resolves paths against the current folder and never reads credentials from flags', () => {
    const { command, values } = parseCommandLine([
      'restore',
      '--bucket',
      'b-1',
      '--force-path-style',
      '--output-directory',
      'out',
      '--extra-args=--foo bar',
    ])
    const read = flagInputReader(command!, values, '/home/dev/app')
    expect(read(Inputs.Mode)).toBe('consumer')
    expect(read(Inputs.Bucket)).toBe('b-1')
    expect(read(Inputs.ForcePathStyle)).toBe('true')
    expect(read(Inputs.SupportSimulators)).toBe('')
    expect(read(Inputs.OutputDirectory)).toBe('/home/dev/app/out')
    expect(read(Inputs.PackageDirectory)).toBe('/home/dev/app')
    expect(read(Inputs.ExtraArgs)).toBe('--foo bar')
    expect(read(Inputs.SecretAccessKey)).toBe('')
    expect(flagInputReader('save', {}, '/x')(Inputs.Mode)).toBe('producer')
  })

  it('rejects flags of other commands, credentials as flags and stray arguments', () => {
    expect(() => parseCommandLine(['status', '--delete'])).toThrow(UsageError)
    expect(() => parseCommandLine(['save', '--secret-access-key', 'x'])).toThrow(UsageError)
    expect(() => parseCommandLine(['save', '--public-url', 'https://x'])).toThrow(UsageError)
    expect(() => parseCommandLine(['restore', 'extra'])).toThrow(/Unexpected argument 'extra'/)
    expect(parseCommandLine([]).help).toBe(true)
  })

  it('reads --older-than as a number of days', () => {
    expect(parseDays(undefined, 1)).toBe(1)
    expect(parseDays('0', 1)).toBe(0)
    expect(parseDays('2.5', 1)).toBe(2.5)
    expect(parseDays('-3', 1)).toBeUndefined()
    expect(parseDays('ten', 1)).toBeUndefined()
  })
})

describe('prune layout', () => {
  it("recognises only this project's objects under the prefix", () => {
    expect(classify('p/q', `p/q/APNGKit/${hex}.tar.zst`)).toEqual({ kind: 'archive' })
    expect(classify('p/q', `p/q/.scipio-s3-cache/packages/${hex}.json`)).toEqual({ kind: 'index', packageKey: hex })
    expect(classify('p/q', `p/q/.scipio-s3-cache/complete/${hex}.json`)).toEqual({ kind: 'marker' })
    expect(classify('p/q', `p/q/.scipio-s3-cache/pins/${hex}.json`)).toEqual({ kind: 'record' })
    expect(classify('p/q', `p/qq/APNGKit/${hex}.tar.zst`)).toBeUndefined()
    expect(classify('p/q', `other/APNGKit/${hex}.tar.zst`)).toBeUndefined()
    expect(classify('p/q', `p/q/APNGKit/${hex}.tar.zst.bak`)).toBeUndefined()
    expect(classify('p/q', `p/q/APNGKit/sub/${hex}.tar.zst`)).toBeUndefined()
    expect(classify('p/q', `p/q/APNGKit/${hex.slice(1)}.tar.gz`)).toBeUndefined()
    expect(classify('', `APNGKit/${hex}.tar.gz`)).toEqual({ kind: 'archive' })
    expect(classify('', `.scipio-s3-cache/other/${hex}.json`)).toBeUndefined()
  })
})

describe('terminal output', () => {
  it('prints plain, redacted lines without workflow commands, and debug only when verbose', async () => {
    registerSecret('s3cr3t-value-for-terminal')
    const out = capture(false)
    const log = terminalLog(new Terminal(out.stream), { verbose: false, quiet: false })
    await log.group('Restore', async () => log.info('using s3cr3t-value-for-terminal'))
    log.warning('careful')
    log.debug('hidden')
    expect(out.text()).toBe('Restore:\nusing ***\nwarning: careful\n')
  })

  it('on a TTY draws one live status line and clears it before permanent lines', () => {
    const out = capture(true)
    let now = 0
    const reporter = new ProgressReporter(new Terminal(out.stream), () => now)
    const event = (e: Partial<TransferEvent>): TransferEvent => ({
      id: 1,
      direction: 'download',
      target: 'Big',
      bytes: 0,
      total: 4096,
      state: 'running',
      ...e,
    })
    reporter.onEvent(event({ bytes: 1024 }))
    expect(out.text()).toBe('↓ 0 done, 1 running, 1.0 KiB; Big 1.0 KiB of 4.0 KiB (25%)')
    now = 1500
    reporter.onEvent(event({ bytes: 4096, state: 'done' }))
    expect(out.text()).toContain('\r\x1b[2K  ↓ Big  4.0 KiB in 1.5 s\n')
    // Nothing left running: the live line is erased, not left behind.
    expect(out.text().endsWith('\r\x1b[2K')).toBe(true)
    reporter.finish()
  })

  it('off a TTY prints a line for long transfers every few seconds and one per finished archive', () => {
    const out = capture(false)
    let now = 0
    const reporter = new ProgressReporter(new Terminal(out.stream), () => now)
    const event = (bytes: number, state: TransferEvent['state'] = 'running'): TransferEvent => ({
      id: 7,
      direction: 'upload',
      target: 'Huge',
      bytes,
      state,
    })
    reporter.onEvent(event(1))
    now = 2000
    reporter.onEvent(event(2048))
    now = 6000
    reporter.onEvent(event(3 * 1024 * 1024))
    now = 7000
    reporter.onEvent(event(4 * 1024 * 1024, 'done'))
    expect(out.text()).toBe('  ↑ Huge: 3.0 MiB\n  ↑ Huge  4.0 MiB in 7.0 s\n')
  })
})

describe('progress is an observer, not a wrapper of the store', () => {
  it("the log's transfer reports an archive's bytes, its end and its failure to the display", () => {
    const out = capture(false)
    const log = terminalLog(new Terminal(out.stream), { verbose: false, quiet: false })
    const { log: shown, reporter } = withProgress(log, new Terminal(out.stream), false)
    const events: TransferEvent[] = []
    const display = reporter!.onEvent
    ;(reporter as unknown as { onEvent: (e: TransferEvent) => void }).onEvent = (e) => {
      events.push(e)
      display(e)
    }
    const down = shown.transfer!('download', 'APNGKit', 25)
    down.moved(10)
    down.moved(25)
    down.done(25)
    const up = shown.transfer!('upload', 'Delegate')
    up.moved(7)
    up.failed()
    expect(events.map((e) => [e.id, e.direction, e.target, e.bytes, e.total, e.state])).toEqual([
      [1, 'download', 'APNGKit', 10, 25, 'running'],
      [1, 'download', 'APNGKit', 25, 25, 'running'],
      [1, 'download', 'APNGKit', 25, 25, 'done'],
      [2, 'upload', 'Delegate', 7, undefined, 'running'],
      [2, 'upload', 'Delegate', 7, undefined, 'failed'],
    ])
    expect(out.text()).toMatch(/↓ APNGKit {2}25 B in \d\.\d s/)
    expect(withProgress(log, new Terminal(out.stream), true)).toEqual({ log })
  })

  it('no module outside src/storage/ implements the Storage interface: a wrapper would hide what it does not forward', () => {
    const files = (dir: string): string[] =>
      fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]))
    const wrappers = files(path.join(root, 'src'))
      .filter((f) => f.endsWith('.ts') && !f.startsWith(path.join(root, 'src/storage')))
      .filter((f) => /implements\s+(?:[\w, ]+,\s*)?Storage\b|:\s*Storage\s*=\s*\{/.test(fs.readFileSync(f, 'utf8')))
    expect(wrappers.map((f) => path.relative(root, f))).toEqual([])
  })
})
