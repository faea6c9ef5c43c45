// Types of runner-log.mjs, for the tests.
export interface WorkflowCommand {
  name: string
  properties: Record<string, string>
  message: string
}
export interface LogGroup {
  title: string
  started: number
  ms: number | undefined
}
export interface Annotation {
  kind: 'error' | 'warning' | 'notice'
  title: string | undefined
  file: string | undefined
  message: string
}
export interface RunnerLog {
  line(text: string, options?: { stderr?: boolean }): void
  end(): { groups: LogGroup[]; annotations: Annotation[] }
  mask(text: string): string
}
export function unescapeData(text: string): string
export function unescapeProperty(text: string): string
export function parseCommand(line: string): WorkflowCommand | undefined
export function createRunnerLog(options: {
  write: (line: string) => void
  verbose?: boolean
  color?: boolean
  now?: () => number
}): RunnerLog
export function summaryToText(markdown: string): string
export function summariesToHtml(summaries: { title: string; markdown: string }[], pageTitle?: string): string
export function formatDuration(ms: number): string
export function columns(rows: (string | number | undefined)[][]): string[]
