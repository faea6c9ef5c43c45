import { Transform, type TransformCallback } from 'node:stream'
import { moved } from './garbage.js'

/**
 * Fails a download's stream when no bytes arrive for `stallMs`: a transfer can stall, it cannot hang the job.
 * Passes the bytes on as they came (extract-pool.ts batches them for its threads) and counts them for
 * garbage.ts.
 */
export class StallWatch extends Transform {
  private readonly timer: NodeJS.Timeout

  constructor(stallMs: number, makeStallError: () => Error) {
    super()
    this.timer = setTimeout(() => this.destroy(makeStallError()), stallMs)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.timer.refresh()
    moved(chunk.length)
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    clearTimeout(this.timer)
    callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.timer)
    callback(error)
  }
}
