/**
 * Admits downloads by weight rather than by count: a large archive takes a whole slot (one of `concurrency`),
 * a small one a fraction of it, so many small archives are in flight at once (each waits a round trip for its
 * first byte: that wait overlaps instead of adding up) while the bytes in flight stay about what `concurrency`
 * large ones hold. First come, first served: largest first stays largest first.
 */

/** A slot is this many units; an archive takes one unit per `unitBytes`, at least one, at most a slot. */
export const unitsPerSlot = 8
export const unitBytes = 128 * 1024
/** However small the archives, no more requests than this in flight at once (the S3 client keeps more sockets). */
export const maxInFlight = 64
/** Small JSON reads (package indexes) in flight at once per `concurrency`, and at most: each mostly waits a round trip. */
export const indexReadsPerSlot = 4
export const maxIndexReads = 32

/** Downloads in flight at once, however small: `unitsPerSlot` per slot of `concurrency`, at most `maxInFlight`. */
export function downloadsInFlight(concurrency: number): number {
  return Math.min(Math.max(1, concurrency) * unitsPerSlot, maxInFlight)
}

/** Index reads in flight at once: they follow `concurrency` too, so `concurrency: 1` keeps every bound small. */
export function indexReadsInFlight(concurrency: number): number {
  return Math.min(Math.max(1, concurrency) * indexReadsPerSlot, maxIndexReads)
}

export function weightOf(size: number): number {
  return Math.min(unitsPerSlot, Math.max(1, Math.ceil(size / unitBytes)))
}

export class InFlight {
  private used = 0
  private count = 0
  private readonly queue: { weight: number; start: () => void }[] = []
  private readonly capacity: number
  private readonly maxCount: number

  constructor(concurrency: number) {
    this.capacity = Math.max(1, concurrency) * unitsPerSlot
    this.maxCount = downloadsInFlight(concurrency)
  }

  run<T>(size: number, fn: () => Promise<T>): Promise<T> {
    const weight = weightOf(size)
    const admitted = new Promise<void>((resolve) => {
      this.queue.push({ weight, start: resolve })
      this.drain()
    })
    return admitted.then(fn).finally(() => {
      this.used -= weight
      this.count -= 1
      this.drain()
    })
  }

  private drain(): void {
    for (;;) {
      const next = this.queue[0]
      if (!next || this.used + next.weight > this.capacity || this.count >= this.maxCount) return
      this.queue.shift()
      this.used += next.weight
      this.count += 1
      next.start()
    }
  }
}
