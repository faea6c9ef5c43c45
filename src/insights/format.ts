import { formatBytes } from '../report/report.js'
import { formatDuration } from '../report/time-saved.js'
import type { MissReasonCode } from '../records/record.js'

/** How the page and the Markdown write figures; the tables carry the exact number beside its text. */

export { formatBytes, formatDuration }

export function formatRate(rate: number | null): string {
  return rate === null ? '–' : `${(rate * 100).toFixed(1)}%`
}

export function formatHours(ms: number): string {
  return `${(ms / 3_600_000).toFixed(1)} h`
}

export function formatMs(ms: number | null): string {
  return ms === null ? '–' : ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : formatDuration(ms)
}

export const reasonNames: Record<MissReasonCode, string> = {
  'pin-moved': 'pin moved',
  'xcode-changed': 'Xcode changed',
  'dependency-moved': 'dependency moved',
  expired: 'expired',
  'not-produced-yet': 'not produced yet',
  'inputs-changed': 'other inputs changed',
  unreadable: 'unreadable',
}
