import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * Every MiB a cache transfer moves passes through freshly allocated Buffers (socket reads, zlib's output,
 * file reads). V8 frees their memory only when it collects, and it waits for tens of MB of them per thread
 * first: in a restore of 1.5 GB with two extraction threads that was 100-150 MB of dead buffers in the peak
 * RSS. A young-generation collection after every 16 MiB moved frees them for about a millisecond each
 * (docs/benchmarks.md). `gc` is V8's own extension, enabled at run time; where that is refused, nothing
 * changes but the memory.
 */
const every = 16 * 1024 * 1024

type Collect = (options: { type: 'minor' }) => void
let collect: Collect | undefined | null = null
let since = 0

function collector(): Collect | undefined {
  if (collect === null) {
    try {
      setFlagsFromString('--expose-gc')
      collect = runInNewContext('gc') as Collect
    } catch {
      collect = undefined
    }
  }
  return collect
}

/** Counts bytes this thread moved; collects young garbage after every 16 MiB. */
export function moved(bytes: number): void {
  since += bytes
  if (since < every) return
  since = 0
  collector()?.({ type: 'minor' })
}
