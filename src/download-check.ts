import type { Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { moved } from './garbage.js'

/**
 * The one stage a download's bytes pass on the main thread: counts them and, when given a hash, hashes them
 * (checked against the index entry once the stream ends; src/extract-pool.ts hashes in its threads), fails the
 * stream when no bytes arrive for `stallMs`, and, with a `batchSize`, hands them on in batches of about that
 * size. Sockets deliver 16-64 KiB at a time; 1 MiB batches cut the thread-pool round trips of the decompressor
 * (and the per-chunk work of every later stage) by about 16x. With 0 each chunk goes on as it came.
 */
export class DownloadCheck extends Transform {
  bytes = 0
  private readonly timer: NodeJS.Timeout
  private batch: Buffer[] = []
  private batchBytes = 0

  constructor(
    private readonly hash: Hash | undefined,
    stallMs: number,
    makeStallError: () => Error,
    private readonly batchSize = 1024 * 1024,
  ) {
    super({ readableHighWaterMark: 1024 * 1024 })
    this.timer = setTimeout(() => this.destroy(makeStallError()), stallMs)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.timer.refresh()
    this.bytes += chunk.length
    moved(chunk.length)
    this.hash?.update(chunk)
    this.batch.push(chunk)
    this.batchBytes += chunk.length
    if (this.batchBytes >= this.batchSize) this.push(this.takeBatch())
    callback()
  }

  override _flush(callback: TransformCallback): void {
    clearTimeout(this.timer)
    callback(null, this.batchBytes > 0 ? this.takeBatch() : undefined)
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.timer)
    callback(error)
  }

  private takeBatch(): Buffer {
    const out = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batchBytes)
    this.batch = []
    this.batchBytes = 0
    return out
  }
}
