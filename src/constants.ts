/** Every input, output and object-layout name in one place (no string literals spread around). */

export const Inputs = {
  Bucket: 'bucket',
  Region: 'region',
  AccessKeyId: 'access-key-id',
  SecretAccessKey: 'secret-access-key',
  SessionToken: 'session-token',
  ShouldPublish: 'should-publish',
  Mode: 'mode',
  PublicUrl: 'public-url',
  Endpoint: 'endpoint',
  ForcePathStyle: 'force-path-style',
  Prefix: 'prefix',
  PackageDirectory: 'package-directory',
  OutputDirectory: 'output-directory',
  ResolvedFile: 'resolved-file',
  Configuration: 'configuration',
  SupportSimulators: 'support-simulators',
  EmbedDebugSymbols: 'embed-debug-symbols',
  FrameworkType: 'framework-type',
  LibraryEvolution: 'library-evolution',
  ScipioPath: 'scipio-path',
  ExtraArgs: 'extra-args',
  KeySalt: 'key-salt',
  Concurrency: 'concurrency',
  FailOnCacheMiss: 'fail-on-cache-miss',
  Strict: 'strict',
  AllowUntrustedUpload: 'allow-untrusted-upload',
  StallTimeoutSeconds: 'stall-timeout-seconds',
  CacheTimeoutMinutes: 'cache-timeout-minutes',
  LookupOnly: 'lookup-only',
  Scope: 'scope',
  BuildOutcome: 'build-outcome',

  ScipioVersion: 'scipio-version',
  ScipioChecksum: 'scipio-checksum',
  CacheSwiftpm: 'cache-swiftpm',
  ScipioS3StorageObjects: 'scipio-s3-storage-objects',
  RecordRuns: 'record-runs',
} as const

export const Outputs = {
  CacheHit: 'cache-hit',
  Restored: 'restored',
  Built: 'built',
  Uploaded: 'uploaded',
  RestoredCount: 'restored-count',
  BuiltCount: 'built-count',
  UploadedCount: 'uploaded-count',
  Missing: 'missing',
  MissReasons: 'miss-reasons',
  PackageKeys: 'package-keys',
  SetKey: 'set-key',
} as const

/** Versions of what this project writes; bump one to invalidate what older releases wrote. */
export const Formats = {
  packageKey: 'scipio-s3-cache/package-key/v1',
  setKey: 'scipio-s3-cache/set-key/v1',
  index: 'scipio-s3-cache/index/v1',
  complete: 'scipio-s3-cache/complete/v1',
  pinRecord: 'scipio-s3-cache/pin-record/v1',
  runRecord: 'scipio-s3-cache/run-record/v1',
  insightsDay: 'scipio-s3-cache/insights-day/v1',
  insights: 'scipio-s3-cache/insights/v1',
} as const

/** Folder under the prefix for our own bookkeeping objects; a leading dot keeps it apart from target folders. */
export const MetaFolder = '.scipio-s3-cache'

/**
 * Folder under the prefix that holds every scope (`<prefix>/.scipio-s3-cache-scopes/<scope>/…`): one IAM resource
 * pattern covers all of them, and nothing of the shared cache lives there.
 */
export const ScopesFolder = '.scipio-s3-cache-scopes'

/**
 * Folder under the prefix that holds the run records (`<prefix>/.scipio-s3-cache-runs/<yyyy>/<mm>/<dd>/…`) and the
 * insights' day roll-ups (`…/rollups/`): one IAM resource pattern lets a consumer write there and nowhere else, and
 * nothing a restore reads lives there.
 */
export const RunsFolder = '.scipio-s3-cache-runs'

/** The `scope` input's one value: this pull request's own scope. */
export const PullRequestScope = 'pull-request'

/**
 * Events whose code is the repository's own (a push, a schedule, a manual run). Any other event, above all
 * pull_request and pull_request_target, may run code from a fork: uploading from it could poison the cache.
 */
export const TrustedEvents = [
  'push',
  'schedule',
  'workflow_dispatch',
  'release',
  'create',
  'repository_dispatch',
  'merge_group',
  'deployment',
] as const

/** Environment variables this action reads besides its inputs. */
export const Env = {
  /** Base URL of Scipio's release downloads, for tests and mirrors: `<base>/<version>/scipio-<version>.artifactbundle.zip`. */
  ScipioDownloadUrl: 'SCIPIO_S3_CACHE_SCIPIO_DOWNLOAD_URL',
} as const
