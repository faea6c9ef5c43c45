export interface RetryPolicy {
  attempts: number
  baseDelayMs: number
  maxDelayMs: number
  /** Injectable so tests don't sleep. */
  sleep: (ms: number) => Promise<void>
  random: () => number
}

export const defaultRetryPolicy: RetryPolicy = {
  attempts: 3,
  baseDelayMs: 500,
  maxDelayMs: 8_000,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
}

/** Exponential backoff with full jitter. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  return Math.round(policy.random() * cap)
}

/** Runs `fn` until it succeeds, `isRetryable` says no, or attempts run out; rethrows the last error. */
export async function withRetry<T>(
  policy: RetryPolicy,
  isRetryable: (error: unknown) => boolean,
  fn: (attempt: number) => Promise<T>,
  onRetry?: (error: unknown, attempt: number) => void,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (error) {
      if (attempt >= policy.attempts || !isRetryable(error)) throw error
      onRetry?.(error, attempt)
      await policy.sleep(backoffDelay(policy, attempt))
    }
  }
}
