import { describe, expect, it } from 'vitest'
import { backoffDelay, withRetry, type RetryPolicy } from '../src/retry.js'

function policy(sleeps: number[], random = () => 1): RetryPolicy {
  return { attempts: 4, baseDelayMs: 100, maxDelayMs: 300, sleep: async (ms) => void sleeps.push(ms), random }
}

describe('retry', () => {
  it('retries with exponential backoff, capped, on an injected clock', async () => {
    const sleeps: number[] = []
    let calls = 0
    const value = await withRetry(
      policy(sleeps),
      () => true,
      async () => {
        calls += 1
        if (calls < 4) throw new Error(`fail ${calls}`)
        return 'ok'
      },
    )
    expect(value).toBe('ok')
    expect(calls).toBe(4)
    expect(sleeps).toEqual([100, 200, 300]) // 100, 200, then the 300 ms cap instead of 400
  })

  it('applies full jitter', () => {
    expect(
      backoffDelay(
        policy([], () => 0.5),
        3,
      ),
    ).toBe(150)
    expect(
      backoffDelay(
        policy([], () => 0),
        3,
      ),
    ).toBe(0)
  })

  it('stops at once on an error that is not retryable, and after the last attempt', async () => {
    const sleeps: number[] = []
    let calls = 0
    await expect(
      withRetry(
        policy(sleeps),
        (e) => (e as Error).message !== 'fatal',
        async () => {
          calls += 1
          throw new Error('fatal')
        },
      ),
    ).rejects.toThrow('fatal')
    expect(calls).toBe(1)
    calls = 0
    await expect(
      withRetry(
        policy(sleeps),
        () => true,
        async () => {
          calls += 1
          throw new Error('again')
        },
      ),
    ).rejects.toThrow('again')
    expect(calls).toBe(4)
  })
})
