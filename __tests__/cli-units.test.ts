import { PassThrough, Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { flagInputReader, parseCommandLine, UsageError } from '../src/cli/args.js'
import { archiveTarget, ProgressReporter, ProgressStorage, type TransferEvent } from '../src/cli/progress.js'
import { classify, parseDays } from '../src/cli/prune.js'
import { Terminal, terminalLog } from '../src/cli/terminal.js'
import { Inputs } from '../src/constants.js'
import { registerSecret } from '../src/secrets.js'
import type { Storage } from '../src/storage/index.js'

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
      key: 'k',
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
      key: 'k',
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

describe('progress storage', () => {
  const inner = (bytes: Buffer): Storage => ({
    description: 'fake',
    writable: true,
    head: async () => ({ size: bytes.length }),
    get: async () => ({ body: Readable.from([bytes.subarray(0, 10), bytes.subarray(10)]), size: bytes.length }),
    put: async (_key, body) => {
      if (Buffer.isBuffer(body)) return
      for await (const chunk of body) void chunk
    },
  })

  it('reports the bytes of archives in both directions and leaves indexes alone', async () => {
    const events: TransferEvent[] = []
    const data = Buffer.alloc(25, 1)
    const storage = new ProgressStorage(inner(data), (e) => events.push(e))
    const archive = `p/APNGKit/${hex}.tar.gz`
    const object = await storage.get(archive)
    const chunks: Buffer[] = []
    for await (const c of object!.body) chunks.push(c as Buffer)
    expect(Buffer.concat(chunks)).toEqual(data)
    await storage.put(archive, Readable.from([data]), { contentType: 'x', publicRead: false })
    await storage.get(`p/.scipio-s3-cache/packages/${hex}.json`)
    expect(events.map((e) => [e.direction, e.target, e.bytes, e.total, e.state])).toEqual([
      ['download', 'APNGKit', 10, 25, 'running'],
      ['download', 'APNGKit', 25, 25, 'running'],
      ['download', 'APNGKit', 25, 25, 'done'],
      ['upload', 'APNGKit', 25, undefined, 'running'],
      ['upload', 'APNGKit', 25, undefined, 'done'],
    ])
    expect(archiveTarget(`p/.scipio-s3-cache/packages/${hex}.json`)).toBeUndefined()
    expect(archiveTarget(`p/q/APNGKit/${hex}/${hex}.tar.zst`)).toBe('APNGKit')
    expect(archiveTarget(`p/q/APNGKit/${hex}.tar.gz`)).toBe('APNGKit')
  })
})
