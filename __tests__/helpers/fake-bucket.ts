import type { KeyRange, ListedObject } from '../../src/storage/s3-admin.js'
import type { PruneAdmin } from '../../src/cli/prune.js'

/** S3's order of keys: by UTF-8 bytes, which JavaScript's comparison matches for the ASCII keys tests use. */
const keyOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/**
 * A bucket in memory that lists as ListObjectsV2 does (keys in S3's order, 1,000 per request, a range listed from
 * just before its first key and stopped at its last, as storage/s3.ts's listObjects asks for it) and counts the
 * requests: for housekeeping's planning and deletion at sizes s3rver would take minutes to hold (a million
 * objects). Deleting keeps the key's slot; listing skips deleted slots in near-constant time. Keys must be ASCII.
 */
export class FakeBucket implements PruneAdmin {
  /** ListObjectsV2 requests so far. */
  listRequests = 0
  deleteRequests = 0
  private readonly objects: ListedObject[]
  /** Union-find over slots: the first live slot at or after i (objects.length: none). */
  private readonly next: Int32Array

  constructor(
    objects: ListedObject[],
    private readonly pageSize = 1000,
  ) {
    this.objects = [...objects].sort((a, b) => keyOrder(a.key, b.key))
    this.next = Int32Array.from({ length: this.objects.length + 1 }, (_, i) => i)
  }

  private live(i: number): number {
    let root = i
    while (this.next[root] !== root) root = this.next[root]!
    while (this.next[i] !== root) {
      const up = this.next[i]!
      this.next[i] = root
      i = up
    }
    return root
  }

  /** The first slot whose key is after `key` (S3's StartAfter) or, with `atOrAfter`, not before it. */
  private slotAfter(key: string, atOrAfter: boolean): number {
    let low = 0
    let high = this.objects.length
    while (low < high) {
      const mid = (low + high) >>> 1
      const order = keyOrder(this.objects[mid]!.key, key)
      if (order < 0 || (order === 0 && !atOrAfter)) low = mid + 1
      else high = mid
    }
    return low
  }

  async list(prefix: string, range?: KeyRange): Promise<ListedObject[]> {
    const out: ListedObject[] = []
    let slot = range ? this.slotAfter(range.from.slice(0, -1), false) : this.slotAfter(prefix, true)
    for (;;) {
      this.listRequests += 1
      let taken = 0
      let past = false
      for (slot = this.live(slot); slot < this.objects.length && taken < this.pageSize; slot = this.live(slot + 1)) {
        const o = this.objects[slot]!
        if (!o.key.startsWith(prefix)) {
          past = true
          break
        }
        taken += 1
        if (range && keyOrder(o.key, range.from) < 0) continue
        if (range && keyOrder(o.key, range.through) > 0) {
          past = true
          break
        }
        out.push(o)
        if (range && o.key === range.through) {
          past = true
          break
        }
      }
      // S3 says whether more keys under the prefix follow: without them, no further request.
      if (past || slot >= this.objects.length || !this.objects[slot]!.key.startsWith(prefix)) return out
    }
  }

  async delete(keys: string[]): Promise<{ key: string; reason: string }[]> {
    this.deleteRequests += Math.ceil(keys.length / 1000)
    for (const key of keys) {
      const slot = this.slotAfter(key, true)
      if (this.objects[slot]?.key === key) this.next[slot] = slot + 1
    }
    return []
  }

  /** The live keys that start with `prefix`. */
  keys(prefix = ''): string[] {
    const out: string[] = []
    for (let slot = this.live(this.slotAfter(prefix, true)); slot < this.objects.length; slot = this.live(slot + 1)) {
      if (!this.objects[slot]!.key.startsWith(prefix)) break
      out.push(this.objects[slot]!.key)
    }
    return out
  }
}
