import type { Readable } from 'node:stream'
import { Transform, pipeline, type TransformCallback } from 'node:stream'
import { formatBytes } from '../report/report.js'
import type { PutOptions, Storage, StoredObject } from '../storage/index.js'
import type { Terminal } from './terminal.js'

export type TransferDirection = 'download' | 'upload'
export type TransferState = 'running' | 'done' | 'failed'

export interface TransferEvent {
  id: number
  direction: TransferDirection
  target: string
  key: string
  bytes: number
  /** Known for downloads (Content-Length); an upload streams while it is packed, so its total is unknown. */
  total?: number
  state: TransferState
}

const archivePattern = /([^/]+)\/[0-9a-f]{64}(?:\/[0-9a-f]{64})?(?:\.code)?\.tar\.(zst|gz)$/

/** `<prefix>/<Target>/<scipio key>/<SHA-256>.tar.zst` (or an earlier release's `<scipio key>.tar.zst`) → Target; undefined for indexes and markers. */
export function archiveTarget(key: string): string | undefined {
  return archivePattern.exec(key)?.[1]
}

/** Passes bytes through unchanged and reports how many went by. */
class Counter extends Transform {
  bytes = 0
  constructor(private readonly onBytes: (bytes: number) => void) {
    super()
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, callback: TransformCallback) {
    this.bytes += chunk.length
    this.onBytes(this.bytes)
    callback(null, chunk)
  }
}

/**
 * A Storage that reports the bytes of every archive it moves, so the restore and save modules need no
 * knowledge of progress. Indexes and markers are small and pass through unobserved.
 */
export class ProgressStorage implements Storage {
  private nextId = 1

  constructor(
    private readonly inner: Storage,
    private readonly onEvent: (event: TransferEvent) => void,
  ) {}

  get description(): string {
    return this.inner.description
  }

  get writable(): boolean {
    return this.inner.writable
  }

  get conditionsIgnored(): boolean {
    return this.inner.conditionsIgnored ?? false
  }

  head(key: string): Promise<{ size: number } | undefined> {
    return this.inner.head(key)
  }

  private observe(direction: TransferDirection, key: string, target: string, source: Readable, total?: number) {
    const base = { id: this.nextId++, direction, target, key, ...(total ? { total } : {}) }
    const counter = new Counter((bytes) => this.onEvent({ ...base, bytes, state: 'running' }))
    // pipeline carries an error either way: a failing source fails the reader, a reader that stops stops the source.
    pipeline(source, counter, () => undefined)
    const finish = (state: TransferState) => this.onEvent({ ...base, bytes: counter.bytes, state })
    return { counter, finish }
  }

  async get(key: string, signal?: AbortSignal): Promise<StoredObject | undefined> {
    const object = await this.inner.get(key, signal)
    const target = archiveTarget(key)
    if (!object || !target) return object
    const { counter, finish } = this.observe('download', key, target, object.body, object.size)
    let ended = false
    counter.once('end', () => {
      ended = true
      finish('done')
    })
    counter.once('close', () => {
      if (!ended) finish('failed')
    })
    return { body: counter, size: object.size }
  }

  async put(key: string, body: Readable | Buffer, options: PutOptions): Promise<void> {
    const target = archiveTarget(key)
    if (Buffer.isBuffer(body) || !target) return this.inner.put(key, body, options)
    const { counter, finish } = this.observe('upload', key, target, body)
    try {
      await this.inner.put(key, counter, options)
      finish('done')
    } catch (error) {
      finish('failed')
      throw error
    }
  }
}

interface Running {
  target: string
  bytes: number
  total?: number
  started: number
  lastLine: number
}

/** Large transfers get a line of their own every so often when stderr is not a terminal (CI logs). */
const longTransferLineMs = 5000

/**
 * Renders transfer events: on a TTY one live line (done, running, bytes so far, the largest running
 * transfer's percentage); elsewhere one line per finished archive and periodic lines for long transfers.
 */
export class ProgressReporter {
  private readonly running = new Map<number, Running>()
  private done = 0
  private failed = 0
  private bytes = 0
  private lastDraw = Number.NEGATIVE_INFINITY

  constructor(
    private readonly terminal: Terminal,
    private readonly now: () => number = Date.now,
  ) {}

  readonly onEvent = (event: TransferEvent): void => {
    const arrow = event.direction === 'download' ? '↓' : '↑'
    const t = this.now()
    if (event.state === 'running') {
      const current = this.running.get(event.id) ?? {
        target: event.target,
        bytes: 0,
        started: t,
        lastLine: t,
        ...(event.total ? { total: event.total } : {}),
      }
      current.bytes = event.bytes
      this.running.set(event.id, current)
      if (!this.terminal.interactive && t - current.lastLine >= longTransferLineMs) {
        current.lastLine = t
        this.terminal.line(`  ${arrow} ${event.target}: ${this.amount(current.bytes, current.total)}`)
      }
    } else {
      const current = this.running.get(event.id)
      this.running.delete(event.id)
      if (event.state === 'done') {
        this.done += 1
        this.bytes += event.bytes
        const seconds = ((t - (current?.started ?? t)) / 1000).toFixed(1)
        this.terminal.line(`  ${arrow} ${event.target}  ${formatBytes(event.bytes)} in ${seconds} s`)
      } else {
        this.failed += 1
      }
    }
    if (this.terminal.interactive && (event.state !== 'running' || t - this.lastDraw >= 100)) {
      this.lastDraw = t
      this.draw(arrow)
    }
  }

  private amount(bytes: number, total: number | undefined): string {
    return total
      ? `${formatBytes(bytes)} of ${formatBytes(total)} (${Math.floor((bytes / total) * 100)}%)`
      : formatBytes(bytes)
  }

  private draw(arrow: string): void {
    if (this.running.size === 0) {
      this.terminal.clearStatus()
      return
    }
    let inFlight = 0
    let largest: Running | undefined
    for (const r of this.running.values()) {
      inFlight += r.bytes
      if (!largest || (r.total ?? r.bytes) > (largest.total ?? largest.bytes)) largest = r
    }
    const detail = largest ? `; ${largest.target} ${this.amount(largest.bytes, largest.total)}` : ''
    this.terminal.status(
      `${arrow} ${this.done} done, ${this.running.size} running, ${formatBytes(this.bytes + inFlight)}${detail}`,
    )
  }

  finish(): void {
    this.terminal.clearStatus()
  }
}

/** Reads below this many show no progress: they are over in a moment. */
export const countProgressFrom = 300

/**
 * Progress of many small reads of a known number (`insights`): on a terminal a live bar, elsewhere (CI logs) a
 * line at each quarter. Nothing below `countProgressFrom` reads.
 */
export class CountProgress {
  private lastDraw = Number.NEGATIVE_INFINITY
  private lastQuarter = 0

  constructor(
    private readonly terminal: Terminal,
    private readonly what: string,
    private readonly now: () => number = Date.now,
  ) {}

  readonly update = (done: number, total: number): void => {
    if (total < countProgressFrom) return
    if (!this.terminal.interactive) {
      const quarter = Math.floor((done / total) * 4)
      if (quarter > this.lastQuarter) {
        this.lastQuarter = quarter
        this.terminal.line(`  ${done} of ${total} ${this.what} read`)
      }
      return
    }
    const t = this.now()
    if (done < total && t - this.lastDraw < 100) return
    this.lastDraw = t
    const width = 30
    const filled = Math.round((done / total) * width)
    this.terminal.status(`[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${done} of ${total} ${this.what}`)
  }

  finish(): void {
    this.terminal.clearStatus()
  }
}
