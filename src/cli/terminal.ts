import type { Log } from '../log.js'
import { redact } from '../secrets.js'

/**
 * Human output on a terminal (stderr): permanent lines, plus one transient status line for progress when
 * stderr is a TTY. Every text passes through `redact`, like the action's log.
 */
export class Terminal {
  private statusText = ''

  constructor(
    private readonly stream: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    readonly interactive: boolean = stream.isTTY === true,
  ) {}

  line(text: string): void {
    this.erase()
    this.stream.write(`${redact(text)}\n`)
    this.draw()
  }

  /** Replaces the transient line; does nothing when the stream is not a TTY. */
  status(text: string): void {
    if (!this.interactive) return
    const width = Math.max(20, (this.stream.columns ?? 80) - 1)
    const clipped = redact(text)
    this.erase()
    this.statusText = clipped.length > width ? `${clipped.slice(0, width - 1)}…` : clipped
    this.draw()
  }

  clearStatus(): void {
    this.erase()
    this.statusText = ''
  }

  private erase(): void {
    if (this.interactive && this.statusText) this.stream.write('\r\x1b[2K')
  }

  private draw(): void {
    if (this.interactive && this.statusText) this.stream.write(this.statusText)
  }
}

export interface TerminalLogOptions {
  verbose: boolean
  quiet: boolean
}

/** The stages' Log for a terminal: plain lines, no workflow commands (`::group::`, `::warning::`). */
export function terminalLog(terminal: Terminal, options: TerminalLogOptions): Log {
  return {
    info: (m) => {
      if (!options.quiet) terminal.line(m)
    },
    warning: (m) => terminal.line(`warning: ${m}`),
    debug: (m) => {
      if (options.verbose) terminal.line(`debug: ${m}`)
    },
    group: async (name, fn) => {
      if (!options.quiet) terminal.line(`${name}:`)
      return fn()
    },
  }
}
