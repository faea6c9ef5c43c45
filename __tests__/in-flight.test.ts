import { describe, expect, it } from 'vitest'
import { extractionThreads } from '../src/archive/extract-pool.js'
import {
  downloadsInFlight,
  indexReadsInFlight,
  InFlight,
  maxInFlight,
  maxIndexReads,
  unitBytes,
  unitsPerSlot,
} from '../src/restore/in-flight.js'

/** The most jobs of `sizes` that ran at once under `new InFlight(concurrency)`. */
async function peakInFlight(concurrency: number, sizes: number[]): Promise<number> {
  const gate = new InFlight(concurrency)
  let running = 0
  let peak = 0
  await Promise.all(
    sizes.map((size) =>
      gate.run(size, async () => {
        running += 1
        peak = Math.max(peak, running)
        await new Promise((resolve) => setTimeout(resolve, 2))
        running -= 1
      }),
    ),
  )
  return peak
}

const small = (n: number) => Array.from({ length: n }, () => 1024)
const large = (n: number) => Array.from({ length: n }, () => unitsPerSlot * unitBytes * 4)

describe('concurrency bounds every request in flight during a restore', () => {
  it('large archives: exactly `concurrency` at once', async () => {
    expect(await peakInFlight(1, large(6))).toBe(1)
    expect(await peakInFlight(3, large(10))).toBe(3)
  })

  it(`small archives: ${unitsPerSlot} per slot of concurrency, never more than ${maxInFlight}`, async () => {
    expect(await peakInFlight(1, small(40))).toBe(unitsPerSlot)
    expect(await peakInFlight(2, small(40))).toBe(2 * unitsPerSlot)
    expect(await peakInFlight(64, small(300))).toBe(maxInFlight)
    for (const c of [1, 2, 8, 64]) expect(await peakInFlight(c, small(300))).toBe(downloadsInFlight(c))
  })

  it(`index reads follow concurrency too, at most ${maxIndexReads}`, () => {
    expect([1, 2, 8, 64].map(indexReadsInFlight)).toEqual([4, 8, 32, 32])
    expect([1, 2, 8, 64].map(downloadsInFlight)).toEqual([8, 16, 64, 64])
  })

  it('extraction threads: one per core, no more than concurrency', () => {
    expect(extractionThreads(8, 2)).toBe(2)
    expect(extractionThreads(1, 4)).toBe(1)
    expect(extractionThreads(3, 16)).toBe(3)
  })
})
