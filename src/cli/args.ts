import * as path from 'node:path'
import { parseArgs } from 'node:util'
import { Inputs } from '../constants.js'
import type { InputReader } from '../inputs/inputs.js'

/** Command-line parsing: every flag that mirrors an action input carries the input's name. */

export const commands = ['restore', 'save', 'status', 'prune', 'repack', 'insights'] as const
export type Command = (typeof commands)[number]

/** Wrong command line: exit code 2 with the usage text. */
export class UsageError extends Error {
  override name = 'UsageError'
}

type OptionSpec = { type: 'string' | 'boolean'; multiple?: boolean; short?: string }
interface Flag {
  spec: OptionSpec
  /** Value shown in help, e.g. NAME. */
  value?: string
  help: string
}

const cacheFlags: Record<string, Flag> = {
  [Inputs.Bucket]: { spec: { type: 'string' }, value: 'NAME', help: 'S3 bucket that holds the cache.' },
  [Inputs.Region]: {
    spec: { type: 'string' },
    value: 'REGION',
    help: "The bucket's AWS region (us-east-1 by default with --endpoint; 'auto' for R2).",
  },
  [Inputs.Endpoint]: {
    spec: { type: 'string' },
    value: 'URL',
    help: 'Endpoint of an S3-compatible store (MinIO, Cloudflare R2, ...).',
  },
  [Inputs.ForcePathStyle]: {
    spec: { type: 'boolean' },
    help: 'Address the bucket in the path (https://endpoint/bucket/key); most S3-compatible stores need it.',
  },
  [Inputs.Prefix]: {
    spec: { type: 'string' },
    value: 'PREFIX',
    help: 'Key prefix of every object (the same as the action’s prefix input).',
  },
  profile: {
    spec: { type: 'string' },
    value: 'NAME',
    help: 'AWS profile from ~/.aws/config and ~/.aws/credentials (sets AWS_PROFILE).',
  },
}

const publicUrlFlag: Record<string, Flag> = {
  [Inputs.PublicUrl]: {
    spec: { type: 'string' },
    value: 'URL',
    help: 'Read anonymously: base URL under which every object key is served (a public bucket URL or a CDN).',
  },
}

const scopeFlag: Record<string, Flag> = {
  [Inputs.Scope]: {
    spec: { type: 'string' },
    value: 'NAME',
    help: "A scope of your own (a branch: letters, digits, '.', '_', '-'): read it before the shared cache; save writes only there.",
  },
}

const projectFlags: Record<string, Flag> = {
  [Inputs.PackageDirectory]: {
    spec: { type: 'string' },
    value: 'DIR',
    help: 'Folder of the Scipio dependencies package (default: the current folder).',
  },
  [Inputs.OutputDirectory]: {
    spec: { type: 'string' },
    value: 'DIR',
    help: 'Folder of the XCFrameworks (default: <package-directory>/XCFrameworks).',
  },
  [Inputs.ResolvedFile]: {
    spec: { type: 'string' },
    value: 'FILE',
    help: 'Package.resolved (default: next to Package.swift, or inside an .xcodeproj/.xcworkspace).',
  },
  [Inputs.Configuration]: {
    spec: { type: 'string' },
    value: 'debug|release',
    help: 'Build configuration (default release).',
  },
  [Inputs.SupportSimulators]: {
    spec: { type: 'boolean' },
    help: "Frameworks with simulator slices (Scipio's --support-simulators).",
  },
  [Inputs.EmbedDebugSymbols]: {
    spec: { type: 'boolean' },
    help: "Frameworks with embedded debug symbols (Scipio's --embed-debug-symbols).",
  },
  [Inputs.FrameworkType]: {
    spec: { type: 'string' },
    value: 'TYPE',
    help: 'dynamic, static or mergeable (default dynamic).',
  },
  [Inputs.LibraryEvolution]: {
    spec: { type: 'boolean' },
    help: "Library evolution enabled (Scipio's --enable-library-evolution).",
  },
  [Inputs.ScipioPath]: {
    spec: { type: 'string' },
    value: 'FILE',
    help: 'The scipio executable (default: scipio on PATH); its bytes are part of the key.',
  },
  [Inputs.ExtraArgs]: {
    spec: { type: 'string' },
    value: 'ARGS',
    help: "The action's extra-args, part of the key; write --extra-args='--flag value'.",
  },
  [Inputs.KeySalt]: { spec: { type: 'string' }, value: 'TEXT', help: "The action's key-salt." },
}

const generalFlags: Record<string, Flag> = {
  [Inputs.Concurrency]: { spec: { type: 'string' }, value: 'N', help: 'Transfers at once, 1 to 64 (default 8).' },
  verbose: { spec: { type: 'boolean', short: 'v' }, help: 'Also print debug messages.' },
  quiet: { spec: { type: 'boolean', short: 'q' }, help: 'Print only warnings, errors and the result.' },
  help: { spec: { type: 'boolean', short: 'h' }, help: 'Show this help.' },
}

const recordRuns: Record<string, Flag> = {
  [Inputs.RecordRuns]: {
    spec: { type: 'string' },
    value: 'true|false',
    help: 'Write a run record for `scipio-s3-cache insights` (default true; a refused write is only a debug line).',
  },
}

const failOnMissing: Flag = { spec: { type: 'boolean' }, help: 'Exit with 3 when anything is missing from the cache.' }
const json: Flag = { spec: { type: 'boolean' }, help: 'Print one JSON document on stdout instead of text.' }

interface CommandSpec {
  summary: string
  usage: string
  flags: Record<string, Flag>
}

export const commandSpecs: Record<Command, CommandSpec> = {
  restore: {
    summary: 'Download the frameworks stored for the pins of Package.resolved into the output folder (no build).',
    usage: 'restore [flags]',
    flags: {
      ...cacheFlags,
      ...scopeFlag,
      ...publicUrlFlag,
      ...projectFlags,
      'fail-on-missing': failOnMissing,
      ...recordRuns,
      ...generalFlags,
    },
  },
  save: {
    summary: 'Upload every framework in the output folder that the cache does not hold yet.',
    usage: 'save --bucket NAME [flags]',
    flags: {
      ...cacheFlags,
      ...scopeFlag,
      ...projectFlags,
      [Inputs.ShouldPublish]: {
        spec: { type: 'boolean' },
        help: 'Upload with the public-read ACL (only for buckets with ACLs enabled).',
      },
      [Inputs.ScipioS3StorageObjects]: {
        spec: { type: 'boolean' },
        help: "Also store each framework as scipio-s3-storage's <prefix>/<Target>/<key>.aar (needs macOS's aa), and index such an object instead of uploading when it is already stored.",
      },
      'build-succeeded': {
        spec: { type: 'boolean' },
        help: 'The output folder holds a complete, successful Scipio build: also record packages that yield no framework and mark the whole set complete.',
      },
      ...recordRuns,
      ...generalFlags,
    },
  },
  status: {
    summary: 'Show, per package and target, what the cache holds for Package.resolved and for the local output folder.',
    usage: 'status [flags]',
    flags: {
      ...cacheFlags,
      ...publicUrlFlag,
      ...projectFlags,
      json,
      missing: { spec: { type: 'boolean' }, help: 'List only what is missing.' },
      explain: {
        spec: { type: 'boolean' },
        help: 'Say why each missing package is missing: which inputs (Xcode, options, key-salt, ...) differ from what a producer stored for its pin.',
      },
      'fail-on-missing': failOnMissing,
      ...generalFlags,
    },
  },
  prune: {
    summary: 'List (and with --delete, delete) objects under the prefix that no kept Package.resolved uses.',
    usage:
      'prune --bucket NAME [--keep-resolved FILE ...] [--older-than DAYS] [--delete] [flags]\n' +
      '       scipio-s3-cache prune --scopes --bucket NAME [--keep-scope NAME ...] [--all] [--older-than DAYS] [--delete] [flags]',
    flags: {
      ...cacheFlags,
      ...projectFlags,
      'keep-resolved': {
        spec: { type: 'string', multiple: true },
        value: 'FILE',
        help: 'Also keep what this Package.resolved uses (repeatable); the project’s own Package.resolved is always kept.',
      },
      'older-than': {
        spec: { type: 'string' },
        value: 'DAYS',
        help: 'Only objects last written more than DAYS ago are candidates (default 1; 0 for all, only when no producer runs: its fresh archives wait for their index).',
      },
      delete: {
        spec: { type: 'boolean' },
        help: 'Delete the candidates. Without it, prune only lists them (dry run).',
      },
      scopes: {
        spec: { type: 'boolean' },
        help: 'Prune whole scopes (pull requests, branches) instead, never the shared cache: those not kept by --keep-scope, and with --older-than those nothing was written to for DAYS.',
      },
      'keep-scope': {
        spec: { type: 'string', multiple: true },
        value: 'NAME',
        help: 'With --scopes: keep this scope (repeatable, comma- or space-separated; a number N means pull request N, pr-N); every other scope is pruned. One that names no scope is refused unless --all is given.',
      },
      all: {
        spec: { type: 'boolean' },
        help: 'With --scopes: prune every scope --keep-scope does not name, even when it names none (or is absent).',
      },
      json,
      ...generalFlags,
    },
  },
  repack: {
    summary:
      'Pack the archives in steady use again at the strongest setting (code.tar.zst): fewer bytes for every consumer.',
    usage: 'repack --bucket NAME [--older-than DAYS] [--convert-earlier-formats] [--dry-run] [flags]',
    flags: {
      ...cacheFlags,
      'older-than': {
        spec: { type: 'string' },
        value: 'DAYS',
        help: 'Only archives stored more than DAYS ago (default 7): the ones a producer has not replaced since.',
      },
      'convert-earlier-formats': {
        spec: { type: 'boolean' },
        help: 'Also repack tar.zst and tar.gz archives into code.tar.zst, which releases before 1.1 do not read (they then miss them).',
      },
      'dry-run': { spec: { type: 'boolean' }, help: 'Only list the archives that would be repacked.' },
      [Inputs.ShouldPublish]: {
        spec: { type: 'boolean' },
        help: 'Upload with the public-read ACL (only for buckets with ACLs enabled), as your producers do.',
      },
      ...generalFlags,
    },
  },
  insights: {
    summary:
      'Report what the cache saved over a window of days, from the run records: text, --json, --markdown, --html.',
    usage:
      'insights --bucket NAME [--since 28d] [--until DAY] [--repository OWNER/NAME] [--html FILE] [--json | --markdown] [flags]',
    flags: {
      ...cacheFlags,
      since: {
        spec: { type: 'string' },
        value: 'DAYS|DATE',
        help: 'First day: a number of days ending with --until (default 28d), or a date (2026-10-01). Days are UTC.',
      },
      until: {
        spec: { type: 'string' },
        value: 'DAYS|DATE|TIME',
        help: 'Last day: a date, a number of days back (1d is today, 2d yesterday), or a moment (2026-11-30T10:00:00Z: the report as it stood then); default today.',
      },
      repository: {
        spec: { type: 'string' },
        value: 'OWNER/NAME',
        help: "Only this repository's runs (the records name the repository of their workflow run).",
      },
      html: {
        spec: { type: 'string' },
        value: 'FILE',
        help: 'Also write the page: one self-contained HTML file with every chart and the table of its numbers.',
      },
      json: {
        spec: { type: 'boolean' },
        help: 'Print the aggregates as one JSON document (scipio-s3-cache/insights/v1).',
      },
      markdown: {
        spec: { type: 'boolean' },
        help: 'Print the headline figures and small tables in Markdown, for $GITHUB_STEP_SUMMARY.',
      },
      [Inputs.Concurrency]: generalFlags[Inputs.Concurrency]!,
      verbose: generalFlags.verbose!,
      quiet: generalFlags.quiet!,
      help: generalFlags.help!,
    },
  },
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>

export interface ParsedCommandLine {
  command: Command | undefined
  values: FlagValues
  help: boolean
}

export function parseCommandLine(argv: string[]): ParsedCommandLine {
  const first = argv[0]
  if (first === undefined || first === '-h' || first === '--help' || first === 'help')
    return { command: undefined, values: {}, help: true }
  if (!(commands as readonly string[]).includes(first))
    throw new UsageError(`Unknown command '${first}'. Commands: ${commands.join(', ')}.`)
  const command = first as Command
  const options = Object.fromEntries(
    Object.entries(commandSpecs[command].flags).map(([name, flag]) => [name, flag.spec]),
  )
  let parsed
  try {
    parsed = parseArgs({ args: argv.slice(1), options, allowPositionals: true, strict: true })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  if (parsed.positionals.length > 0) throw new UsageError(`Unexpected argument '${parsed.positionals[0]}'.`)
  const values = parsed.values as FlagValues
  return { command, values, help: values.help === true }
}

const pathInputs = new Set<string>([
  Inputs.PackageDirectory,
  Inputs.OutputDirectory,
  Inputs.ResolvedFile,
  Inputs.ScipioPath,
])

/**
 * The action's inputs as the command line gives them. Credentials are never flags (a shell's history and
 * `ps` would show them): the AWS SDK reads them from the environment or a profile. Relative paths are
 * resolved against `cwd`, never against GITHUB_WORKSPACE.
 */
export function flagInputReader(command: Command, values: FlagValues, cwd: string): InputReader {
  const mode = command === 'save' || command === 'prune' || command === 'repack' ? 'producer' : 'consumer'
  const read = (name: string) => {
    if (name === Inputs.Mode) return mode
    if (name === Inputs.AccessKeyId || name === Inputs.SecretAccessKey || name === Inputs.SessionToken) return ''
    const value = values[name]
    if (name === Inputs.PackageDirectory && (value === undefined || value === '')) return cwd
    if (value === undefined || value === false) return ''
    if (value === true) return 'true'
    if (Array.isArray(value)) return value.join(' ')
    const trimmed = value.trim()
    return pathInputs.has(name) && trimmed ? path.resolve(cwd, trimmed) : trimmed
  }
  return Object.assign(read, { commandLine: true as const })
}

function flagLines(flags: Record<string, Flag>): string[] {
  const rows = Object.entries(flags).map(([name, flag]) => {
    const short = flag.spec.short ? `-${flag.spec.short}, ` : ''
    return [`  ${short}--${name}${flag.value ? ` ${flag.value}` : ''}`, flag.help] as const
  })
  const width = Math.max(...rows.map(([left]) => left.length)) + 2
  return rows.map(([left, help]) => left.padEnd(width) + help)
}

export const exitCodeHelp = [
  'Exit codes:',
  '  0  success',
  '  1  failure: the cache could not be read at all (credentials, region, bucket, network, every read refused),',
  '     or an upload or deletion failed',
  '  2  usage or input error: unknown command or flag, bad value, missing Package.resolved or Package.swift',
  '  3  something is missing from the cache (only with --fail-on-missing)',
  '  130  restore or save cancelled by SIGINT (Ctrl-C): its transfers stopped, its folders removed',
  '  143  restore or save cancelled by SIGTERM, the same way',
]

const credentialHelp = [
  'Credentials come from the AWS SDK’s default chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /',
  'AWS_SESSION_TOKEN, AWS_PROFILE (or --profile), SSO, web identity, instance roles. They are never flags.',
  'Keys depend on Package.resolved, the build flags, Xcode (xcrun) and the scipio executable, exactly as in the action.',
]

export function helpText(command?: Command): string {
  const name = 'scipio-s3-cache'
  if (!command) {
    return [
      `${name}: the Scipio S3 cache of the scipio-s3-cache action, on a developer's machine or another CI system.`,
      '',
      `Usage: ${name} <command> [flags]     (${name} <command> --help for its flags)`,
      '',
      'Commands:',
      ...commands.map((c) => `  ${c.padEnd(8)} ${commandSpecs[c].summary}`),
      '',
      ...credentialHelp,
      '',
      ...exitCodeHelp,
      '',
    ].join('\n')
  }
  const spec = commandSpecs[command]
  return [
    `Usage: ${name} ${spec.usage}`,
    '',
    spec.summary,
    '',
    'Flags:',
    ...flagLines(spec.flags),
    '',
    ...credentialHelp,
    '',
    ...exitCodeHelp,
    '',
  ].join('\n')
}
