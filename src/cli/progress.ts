import { formatBytes } from '../report/report.js'
import type { Transfer } from '../log.js'
import type { Terminal } from './terminal.js'

export type TransferDirection = 'download' | 'upload'
export type TransferState = 'running' | 'done' | 'failed'

export interface TransferEvent {
  id: number
  direction: TransferDirection
  target: string
  bytes: number
  /** The archive's size, when the stage knows it. */
  total?: number
  state: TransferState
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

  private nextId = 1

  constructor(
    private readonly terminal: Terminal,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The Log's `transfer`: the restore and the save report each archive here as they move it (an observer: the
   * store is not wrapped, so every capability it has, such as the extraction threads' own downloads, stays).
   */
  readonly transfer = (direction: TransferDirection, target: string, total?: number): Transfer => {
    const base = { id: this.nextId++, direction, target, ...(total ? { total } : {}) }
    let last = 0
    return {
      moved: (bytes) => this.onEvent({ ...base, bytes: (last = bytes), state: 'running' }),
      done: (bytes) => this.onEvent({ ...base, bytes, state: 'done' }),
      failed: () => this.onEvent({ ...base, bytes: last, state: 'failed' }),
    }
  }

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
