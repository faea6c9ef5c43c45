import type * as http from 'node:http'

/**
 * An IAM policy engine for the test proxy: the subset of AWS's policy language the docs use, evaluated as S3 does
 * (AWS's IAM policy evaluation logic and the S3 user guide's actions and condition keys). Identity policies per access key, and a bucket policy per bucket whose
 * `"Principal": "*"` is what lets anonymous callers in. An explicit Deny wins, then any Allow; otherwise the request
 * is denied. Anything outside the subset (NotAction, NotResource, NotPrincipal, another condition key or operator)
 * is refused when the policy is read, so a policy is never half understood.
 */

export type Effect = 'Allow' | 'Deny'

export interface PolicyStatement {
  Sid?: string
  Effect: Effect
  Action: string | string[]
  Resource: string | string[]
  /** Only in a bucket policy: `"*"` (everyone, anonymous callers included) or `{ "AWS": ... }`. */
  Principal?: '*' | { AWS: string | string[] }
  /** Only `StringEquals` / `StringLike` on `s3:prefix` (ListBucket). */
  Condition?: Record<string, Record<string, string | string[]>>
}

export interface PolicyDocument {
  Version?: string
  Statement: PolicyStatement[]
}

export interface AccessPolicies {
  /** Identity policies by access key id. A key not listed belongs to the bucket's owner, who may do anything. */
  identities?: Record<string, PolicyDocument>
  /** Bucket policies by bucket name. */
  buckets?: Record<string, PolicyDocument>
}

/** Who signed the request: an access key (Authorization header or presigned query), or nobody. */
export type Caller = { accessKeyId: string } | 'anonymous'

/** One permission a request needs: an S3 action on a resource ARN, with the condition keys it is asked with. */
export interface Permission {
  action: string
  resource: string
  context?: Record<string, string>
}

/** A policy document of these statements. */
export function policyOf(...Statement: PolicyStatement[]): PolicyDocument {
  return { Version: '2012-10-17', Statement }
}

const conditionOperators = new Set(['StringEquals', 'StringLike'])
const conditionKeys = new Set(['s3:prefix'])
const statementMembers = new Set(['Sid', 'Effect', 'Action', 'Resource', 'Principal', 'Condition'])

const asList = (value: string | string[]): string[] => (Array.isArray(value) ? value : [value])

/** Reads a policy document (a parsed JSON value); throws for anything this engine does not evaluate. */
export function parsePolicy(value: unknown, kind: 'identity' | 'bucket'): PolicyDocument {
  const doc = value as { Version?: unknown; Statement?: unknown }
  if (typeof doc !== 'object' || doc === null || doc.Statement === undefined)
    throw new Error('a policy document needs a Statement')
  if (doc.Version !== undefined && doc.Version !== '2012-10-17')
    throw new Error(`unknown Version ${String(doc.Version)}`)
  const statements = (Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement]) as PolicyStatement[]
  for (const s of statements) {
    for (const member of Object.keys(s))
      if (!statementMembers.has(member)) throw new Error(`statement member ${member} is not supported here`)
    if (s.Effect !== 'Allow' && s.Effect !== 'Deny') throw new Error(`Effect must be Allow or Deny, not ${s.Effect}`)
    if (s.Action === undefined || s.Resource === undefined) throw new Error('a statement needs Action and Resource')
    if (kind === 'identity' && s.Principal !== undefined) throw new Error('an identity policy names no Principal')
    if (kind === 'bucket' && s.Principal === undefined) throw new Error('a bucket policy statement needs a Principal')
    if (s.Principal !== undefined && s.Principal !== '*' && asList(s.Principal.AWS ?? []).join() !== '*')
      throw new Error('only the principals "*" and { "AWS": "*" } (everyone) are supported')
    for (const [operator, keys] of Object.entries(s.Condition ?? {})) {
      if (!conditionOperators.has(operator)) throw new Error(`condition operator ${operator} is not supported`)
      for (const key of Object.keys(keys))
        if (!conditionKeys.has(key)) throw new Error(`condition key ${key} is not supported`)
    }
  }
  return { ...(typeof doc.Version === 'string' ? { Version: doc.Version } : {}), Statement: statements }
}

/** IAM's wildcard match: `*` any run of characters (`/` included), `?` one character. */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const escaped = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
  return new RegExp(`^${escaped}$`, ignoreCase ? 'si' : 's').test(value)
}

function conditionHolds(statement: PolicyStatement, context: Record<string, string>): boolean {
  for (const [operator, keys] of Object.entries(statement.Condition ?? {})) {
    for (const [key, expected] of Object.entries(keys)) {
      const actual = context[key]
      // A condition on a key the request does not carry does not hold.
      if (actual === undefined) return false
      const match = (p: string) => (operator === 'StringLike' ? wildcardMatch(p, actual) : p === actual)
      if (!asList(expected).some(match)) return false
    }
  }
  return true
}

function statementApplies(statement: PolicyStatement, permission: Permission): boolean {
  return (
    asList(statement.Action).some((a) => wildcardMatch(a, permission.action, true)) &&
    asList(statement.Resource).some((r) => wildcardMatch(r, permission.resource)) &&
    conditionHolds(statement, permission.context ?? {})
  )
}

/** The effects of the statements of `doc` that apply to `permission` (every principal parsePolicy accepts is everyone). */
function effects(doc: PolicyDocument | undefined, permission: Permission): Effect[] {
  return (doc?.Statement ?? []).filter((s) => statementApplies(s, permission)).map((s) => s.Effect)
}

/** Whether `caller` may do `permission` on `bucket`, as S3 evaluates the identity and bucket policies together. */
export function allows(policies: AccessPolicies, caller: Caller, bucket: string, permission: Permission): boolean {
  const fromBucket = effects(policies.buckets?.[bucket], permission)
  if (fromBucket.includes('Deny')) return false
  const identity = caller === 'anonymous' ? undefined : policies.identities?.[caller.accessKeyId]
  const fromIdentity = effects(identity, permission)
  if (fromIdentity.includes('Deny')) return false
  const owner = caller !== 'anonymous' && identity === undefined
  return owner || fromIdentity.includes('Allow') || fromBucket.includes('Allow')
}

/** The access key of a SigV4 request (`Credential=<key>/...` in Authorization, or `X-Amz-Credential` when presigned). */
export function callerOf(req: Pick<http.IncomingMessage, 'headers' | 'url'>): Caller {
  const header = /Credential=([^/,\s]+)\//.exec(String(req.headers.authorization ?? ''))
  if (header) return { accessKeyId: header[1]! }
  const query = new URL(req.url ?? '/', 'http://proxy').searchParams.get('X-Amz-Credential')
  return query ? { accessKeyId: query.split('/')[0]! } : 'anonymous'
}

/** A path-style request's bucket and key (`/<bucket>/<key>`), the key decoded. */
export function addressOf(url: string): { bucket: string; key?: string; query: URLSearchParams } {
  const parsed = new URL(url, 'http://proxy')
  const [, bucket = '', ...rest] = parsed.pathname.split('/')
  const key = rest.length > 0 ? decodeURIComponent(rest.join('/')) : undefined
  return { bucket: decodeURIComponent(bucket), ...(key ? { key } : {}), query: parsed.searchParams }
}

export const bucketArn = (bucket: string) => `arn:aws:s3:::${bucket}`
export const objectArn = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`

/**
 * The permissions a request needs, as S3 maps its operations to actions. A multi-object delete
 * (`POST /<bucket>?delete`) needs `s3:DeleteObject` per key, which only its body names: it is `multiDelete`.
 */
export function permissionsOf(
  req: Pick<http.IncomingMessage, 'method' | 'url' | 'headers'>,
): Permission[] | 'multiDelete' {
  const method = req.method ?? 'GET'
  const { bucket, key, query } = addressOf(req.url ?? '/')
  if (!bucket) return [{ action: 's3:ListAllMyBuckets', resource: '*' }]
  if (key === undefined) {
    if (method === 'POST' && query.has('delete')) return 'multiDelete'
    if (method === 'GET' && query.has('location'))
      return [{ action: 's3:GetBucketLocation', resource: bucketArn(bucket) }]
    if (method === 'GET' && query.has('uploads'))
      return [{ action: 's3:ListBucketMultipartUploads', resource: bucketArn(bucket) }]
    if (method === 'GET' || method === 'HEAD')
      return [
        { action: 's3:ListBucket', resource: bucketArn(bucket), context: { 's3:prefix': query.get('prefix') ?? '' } },
      ]
    if (method === 'PUT') return [{ action: 's3:CreateBucket', resource: bucketArn(bucket) }]
    if (method === 'DELETE') return [{ action: 's3:DeleteBucket', resource: bucketArn(bucket) }]
    return [{ action: `s3:Unknown${method}Bucket`, resource: bucketArn(bucket) }]
  }
  const resource = objectArn(bucket, key)
  if (method === 'GET' || method === 'HEAD') {
    if (query.has('acl')) return [{ action: 's3:GetObjectAcl', resource }]
    if (query.has('uploadId')) return [{ action: 's3:ListMultipartUploadParts', resource }]
    return [{ action: 's3:GetObject', resource }]
  }
  if (method === 'PUT' && query.has('acl')) return [{ action: 's3:PutObjectAcl', resource }]
  if (method === 'PUT' || method === 'POST') {
    // A single PUT, a multipart upload's start, parts and completion: all s3:PutObject; an ACL header adds its own.
    const acl = method === 'PUT' || query.has('uploads') ? req.headers['x-amz-acl'] : undefined
    return [{ action: 's3:PutObject', resource }, ...(acl ? [{ action: 's3:PutObjectAcl', resource }] : [])]
  }
  if (method === 'DELETE')
    return [{ action: query.has('uploadId') ? 's3:AbortMultipartUpload' : 's3:DeleteObject', resource }]
  return [{ action: `s3:Unknown${method}Object`, resource }]
}

/** The keys of a DeleteObjects body (`<Delete><Object><Key>…</Key></Object>…</Delete>`), and whether it is quiet. */
export function deleteRequestKeys(xml: string): { keys: string[]; quiet: boolean } {
  const unescape = (text: string) =>
    text
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>')
      .replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'")
      .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
      .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number(dec)))
      .replace(/&amp;/g, '&')
  const keys = [...xml.matchAll(/<Key>([\s\S]*?)<\/Key>/g)].map((m) => unescape(m[1]!))
  return { keys, quiet: /<Quiet>\s*true\s*<\/Quiet>/i.test(xml) }
}

/**
 * A role that may read the whole bucket and list it, and write (PUT) only under `writable` key prefixes: what a
 * role limited to some prefixes has. It may delete nothing.
 */
export function prefixWriterPolicy(bucket: string, writable: string[]): PolicyDocument {
  return policyOf(
    { Effect: 'Allow', Action: 's3:GetObject', Resource: `${bucketArn(bucket)}/*` },
    { Effect: 'Allow', Action: 's3:PutObject', Resource: writable.map((p) => `${objectArn(bucket, p)}*`) },
    { Effect: 'Allow', Action: 's3:ListBucket', Resource: bucketArn(bucket) },
  )
}
