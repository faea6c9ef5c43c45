import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3'
import { getSignedUrl } from '@aws-sdk/s3-request-presigner'
import { afterEach, describe, expect, it } from 'vitest'
import {
  allows,
  callerOf,
  deleteRequestKeys,
  parsePolicy,
  permissionsOf,
  wildcardMatch,
  policyOf,
  type AccessPolicies,
} from './helpers/policy.js'
import { testCredentials, testKeyPair, type TestCredentials } from './helpers/s3-server.js'
import { useStore } from './helpers/store.js'

/**
 * The test proxy's IAM policy engine (helpers/policy.ts): what the suite's least-privilege tests and the docs'
 * policies rest on, so it is checked against what S3 documents: 403 for a missing key without s3:ListBucket, an
 * explicit Deny first, a bucket policy's "*" for anonymous callers, one action per operation.
 */

const bucket = 'policy-bucket'
const reader = testKeyPair('policy-reader')
const lister = testKeyPair('policy-lister')
const store = useStore([bucket], { credentials: [testCredentials, reader, lister] })

afterEach(() => {
  store.proxy.policies = undefined
})

const doc = policyOf
const request = (method: string, url: string, headers: Record<string, string> = {}) => ({ method, url, headers })
const readOnly = doc({ Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/cache/*` })
const readAndList = doc(
  { Effect: 'Allow', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/cache/*` },
  { Effect: 'Allow', Action: 's3:ListBucket', Resource: `arn:aws:s3:::${bucket}` },
)

describe('reading a policy', () => {
  it('takes the documented subset and refuses anything else rather than ignore it', () => {
    expect(parsePolicy(readOnly, 'identity').Statement).toHaveLength(1)
    const single = parsePolicy({ Statement: { Effect: 'Allow', Action: 's3:*', Resource: '*' } }, 'identity')
    expect(single.Statement).toHaveLength(1)
    const refused: [unknown, 'identity' | 'bucket', RegExp][] = [
      [{ Statement: [{ Effect: 'Allow', NotAction: 's3:GetObject', Resource: '*' }] }, 'identity', /NotAction/],
      [{ Statement: [{ Effect: 'Allow', Action: 's3:GetObject', NotResource: '*' }] }, 'identity', /NotResource/],
      [{ Statement: [{ Effect: 'Permit', Action: 's3:GetObject', Resource: '*' }] }, 'identity', /Effect/],
      [
        { Statement: [{ Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: '*' }] },
        'identity',
        /Principal/,
      ],
      [{ Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }] }, 'bucket', /Principal/],
      [
        {
          Statement: [
            { Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::1:root' }, Action: 's3:GetObject', Resource: '*' },
          ],
        },
        'bucket',
        /principals/,
      ],
      [
        {
          Statement: [
            {
              Effect: 'Allow',
              Action: 's3:ListBucket',
              Resource: '*',
              Condition: { IpAddress: { 'aws:SourceIp': '1.2.3.4' } },
            },
          ],
        },
        'identity',
        /IpAddress/,
      ],
      [
        {
          Statement: [
            {
              Effect: 'Allow',
              Action: 's3:ListBucket',
              Resource: '*',
              Condition: { StringEquals: { 's3:delimiter': '/' } },
            },
          ],
        },
        'identity',
        /s3:delimiter/,
      ],
      [{ Version: '2008-10-17', Statement: [] }, 'identity', /Version/],
      [{ Rules: [] }, 'identity', /Statement/],
    ]
    for (const [value, kind, message] of refused) expect(() => parsePolicy(value, kind)).toThrow(message)
  })

  it('matches wildcards as IAM does: `*` across slashes, `?` one character, actions without regard to case', () => {
    expect(wildcardMatch('arn:aws:s3:::b/cache/*', 'arn:aws:s3:::b/cache/a/b/c.json')).toBe(true)
    expect(wildcardMatch('arn:aws:s3:::b/cache/*', 'arn:aws:s3:::b/other/cache/x')).toBe(false)
    expect(wildcardMatch('arn:aws:s3:::b/?ache/x', 'arn:aws:s3:::b/cache/x')).toBe(true)
    expect(wildcardMatch('arn:aws:s3:::b/cache.json', 'arn:aws:s3:::b/cacheXjson')).toBe(false)
    expect(wildcardMatch('s3:get*', 's3:GetObject', true)).toBe(true)
    expect(wildcardMatch('arn:aws:s3:::B/*', 'arn:aws:s3:::b/x')).toBe(false)
  })
})

describe('evaluating policies', () => {
  const key = { accessKeyId: reader.accessKeyId }
  const get = (k: string) => ({ action: 's3:GetObject', resource: `arn:aws:s3:::${bucket}/${k}` })
  const list = (prefix?: string) => ({
    action: 's3:ListBucket',
    resource: `arn:aws:s3:::${bucket}`,
    ...(prefix === undefined ? {} : { context: { 's3:prefix': prefix } }),
  })

  it('allows what a statement allows and nothing else; an explicit Deny wins; an unlisted key is the owner', () => {
    const policies: AccessPolicies = { identities: { [reader.accessKeyId]: readOnly } }
    expect(allows(policies, key, bucket, get('cache/x'))).toBe(true)
    expect(allows(policies, key, bucket, get('elsewhere/x'))).toBe(false)
    expect(allows(policies, key, bucket, { action: 's3:PutObject', resource: `arn:aws:s3:::${bucket}/cache/x` })).toBe(
      false,
    )
    expect(allows(policies, key, bucket, list())).toBe(false)
    expect(allows(policies, { accessKeyId: 'AKIAOWNER' }, bucket, list())).toBe(true)
    expect(allows(policies, 'anonymous', bucket, get('cache/x'))).toBe(false)
    const denied: AccessPolicies = {
      identities: {
        [reader.accessKeyId]: doc(
          { Effect: 'Allow', Action: 's3:*', Resource: '*' },
          { Effect: 'Deny', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/cache/secret/*` },
        ),
      },
    }
    expect(allows(denied, key, bucket, get('cache/x'))).toBe(true)
    expect(allows(denied, key, bucket, get('cache/secret/x'))).toBe(false)
  })

  it('a bucket policy with Principal "*" lets everyone in, anonymous callers too; its Deny binds the owner as well', () => {
    const policies: AccessPolicies = {
      identities: { [reader.accessKeyId]: doc() },
      buckets: {
        [bucket]: doc(
          { Effect: 'Allow', Principal: '*', Action: 's3:GetObject', Resource: `arn:aws:s3:::${bucket}/public/*` },
          {
            Effect: 'Deny',
            Principal: { AWS: '*' },
            Action: 's3:GetObject',
            Resource: `arn:aws:s3:::${bucket}/public/no/*`,
          },
        ),
      },
    }
    expect(allows(policies, 'anonymous', bucket, get('public/x'))).toBe(true)
    expect(allows(policies, key, bucket, get('public/x'))).toBe(true)
    expect(allows(policies, 'anonymous', bucket, get('private/x'))).toBe(false)
    expect(allows(policies, { accessKeyId: 'AKIAOWNER' }, bucket, get('public/no/x'))).toBe(false)
    expect(allows(policies, 'anonymous', 'other-bucket', get('public/x'))).toBe(false)
  })

  it('an s3:prefix condition limits a listing to its prefixes (StringLike with wildcards, StringEquals exactly)', () => {
    const policies: AccessPolicies = {
      identities: {
        [reader.accessKeyId]: doc({
          Effect: 'Allow',
          Action: 's3:ListBucket',
          Resource: `arn:aws:s3:::${bucket}`,
          Condition: { StringLike: { 's3:prefix': ['cache/*', ''] } },
        }),
        [lister.accessKeyId]: doc({
          Effect: 'Allow',
          Action: 's3:ListBucket',
          Resource: `arn:aws:s3:::${bucket}`,
          Condition: { StringEquals: { 's3:prefix': 'cache/' } },
        }),
      },
    }
    expect(allows(policies, key, bucket, list('cache/a/'))).toBe(true)
    expect(allows(policies, key, bucket, list(''))).toBe(true)
    expect(allows(policies, key, bucket, list('other/'))).toBe(false)
    expect(allows(policies, key, bucket, list())).toBe(false) // no s3:prefix: the condition does not hold
    const other = { accessKeyId: lister.accessKeyId }
    expect(allows(policies, other, bucket, list('cache/'))).toBe(true)
    expect(allows(policies, other, bucket, list('cache/a/'))).toBe(false)
  })
})

describe('mapping a request to what it needs', () => {
  it('names the S3 action and resource of every request the cache sends', () => {
    const arn = `arn:aws:s3:::${bucket}`
    const cases: [ReturnType<typeof request>, unknown][] = [
      [request('GET', `/${bucket}/cache/a%20b.json`), [{ action: 's3:GetObject', resource: `${arn}/cache/a b.json` }]],
      [request('HEAD', `/${bucket}/cache/x`), [{ action: 's3:GetObject', resource: `${arn}/cache/x` }]],
      [request('PUT', `/${bucket}/cache/x`), [{ action: 's3:PutObject', resource: `${arn}/cache/x` }]],
      [
        request('PUT', `/${bucket}/cache/x`, { 'x-amz-acl': 'public-read' }),
        [
          { action: 's3:PutObject', resource: `${arn}/cache/x` },
          { action: 's3:PutObjectAcl', resource: `${arn}/cache/x` },
        ],
      ],
      [
        request('GET', `/${bucket}?list-type=2&prefix=cache%2F&max-keys=1000`),
        [{ action: 's3:ListBucket', resource: arn, context: { 's3:prefix': 'cache/' } }],
      ],
      [request('HEAD', `/${bucket}`), [{ action: 's3:ListBucket', resource: arn, context: { 's3:prefix': '' } }]],
      [request('POST', `/${bucket}?delete`), 'multiDelete'],
      [
        request('POST', `/${bucket}/big?uploads`, { 'x-amz-acl': 'public-read' }),
        [
          { action: 's3:PutObject', resource: `${arn}/big` },
          { action: 's3:PutObjectAcl', resource: `${arn}/big` },
        ],
      ],
      [request('PUT', `/${bucket}/big?partNumber=2&uploadId=u`), [{ action: 's3:PutObject', resource: `${arn}/big` }]],
      [request('POST', `/${bucket}/big?uploadId=u`), [{ action: 's3:PutObject', resource: `${arn}/big` }]],
      [request('DELETE', `/${bucket}/big?uploadId=u`), [{ action: 's3:AbortMultipartUpload', resource: `${arn}/big` }]],
      [request('DELETE', `/${bucket}/cache/x`), [{ action: 's3:DeleteObject', resource: `${arn}/cache/x` }]],
      [request('PUT', `/${bucket}/cache/x?acl`), [{ action: 's3:PutObjectAcl', resource: `${arn}/cache/x` }]],
      [request('GET', '/'), [{ action: 's3:ListAllMyBuckets', resource: '*' }]],
    ]
    for (const [req, expected] of cases) expect(permissionsOf(req), `${req.method} ${req.url}`).toEqual(expected)
  })

  it('knows the caller from Authorization, from a presigned URL, or not at all', () => {
    const auth = `AWS4-HMAC-SHA256 Credential=${reader.accessKeyId}/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x`
    expect(callerOf({ url: `/${bucket}/k`, headers: { authorization: auth } })).toEqual({
      accessKeyId: reader.accessKeyId,
    })
    const presigned = `/${bucket}/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${lister.accessKeyId}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request`
    expect(callerOf({ url: presigned, headers: {} })).toEqual({ accessKeyId: lister.accessKeyId })
    expect(callerOf({ url: `/${bucket}/k`, headers: {} })).toBe('anonymous')
  })

  it('reads the keys of a DeleteObjects body, escaped characters included', () => {
    const xml =
      '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a/b&amp;c.json</Key></Object>' +
      '<Object><Key>x&lt;y&#x41;</Key></Object><Quiet>true</Quiet></Delete>'
    expect(deleteRequestKeys(xml)).toEqual({ keys: ['a/b&c.json', 'x<yA'], quiet: true })
  })
})

describe('the proxy answers as S3 does', () => {
  const client = (credentials: TestCredentials) =>
    new S3Client({
      region: 'us-east-1',
      endpoint: store.endpoint,
      forcePathStyle: true,
      credentials,
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
  const status = async (send: Promise<unknown>) =>
    send.then(
      () => 200,
      (e: { $metadata?: { httpStatusCode?: number }; name?: string }) => `${e.$metadata?.httpStatusCode} ${e.name}`,
    )
  const owner = () => client(testCredentials)

  it('a missing key: 404 to a caller that may list the bucket, 403 AccessDenied to one that may not (HEAD: no body)', async () => {
    await owner().send(new PutObjectCommand({ Bucket: bucket, Key: 'cache/there', Body: 'x' }))
    store.proxy.policies = { identities: { [reader.accessKeyId]: readOnly, [lister.accessKeyId]: readAndList } }
    const get = (c: S3Client, Key: string) => status(c.send(new GetObjectCommand({ Bucket: bucket, Key })))
    const head = (c: S3Client, Key: string) => status(c.send(new HeadObjectCommand({ Bucket: bucket, Key })))
    expect(await get(client(reader), 'cache/there')).toBe(200)
    expect(await get(client(reader), 'cache/missing')).toBe('403 AccessDenied')
    expect(await get(client(lister), 'cache/missing')).toBe('404 NoSuchKey')
    expect(await head(client(reader), 'cache/missing')).toMatch(/^403 /)
    expect(await head(client(lister), 'cache/missing')).toBe('404 NotFound')
    expect(await get(owner(), 'cache/missing')).toBe('404 NoSuchKey')
    const missing = store.proxy.requests.filter((r) => r.url.endsWith('/cache/missing'))
    expect(missing.filter((r) => r.denied)).toEqual([]) // a hidden missing key is not a refused action
  })

  it('an action the policy does not allow: 403 AccessDenied, recorded, and nothing written', async () => {
    store.proxy.policies = { identities: { [reader.accessKeyId]: readAndList } }
    expect(
      await status(client(reader).send(new PutObjectCommand({ Bucket: bucket, Key: 'cache/new', Body: 'x' }))),
    ).toBe('403 AccessDenied')
    expect(await store.listKeys(bucket, 'cache/new')).toEqual([])
    expect(store.proxy.requests.at(-1)?.denied).toBe('s3:PutObject')
    expect(await status(client(reader).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'cache/' })))).toBe(200)
    store.proxy.policies = { identities: { [reader.accessKeyId]: readOnly } }
    expect(await status(client(reader).send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'cache/' })))).toBe(
      '403 AccessDenied',
    )
    expect(store.proxy.requests.at(-1)?.denied).toBe('s3:ListBucket')
    const acl = doc({ Effect: 'Allow', Action: 's3:PutObject', Resource: `arn:aws:s3:::${bucket}/*` })
    store.proxy.policies = { identities: { [reader.accessKeyId]: acl } }
    const publicPut = new PutObjectCommand({ Bucket: bucket, Key: 'cache/acl', Body: 'x', ACL: 'public-read' })
    expect(await status(client(reader).send(publicPut))).toBe('403 AccessDenied')
    expect(store.proxy.requests.at(-1)?.denied).toBe('s3:PutObjectAcl')
  })

  it('a presigned GET is judged as its signer; an anonymous GET only by the bucket policy', async () => {
    await owner().send(new PutObjectCommand({ Bucket: bucket, Key: 'public/x', Body: 'hello' }))
    store.proxy.policies = {
      identities: { [reader.accessKeyId]: readOnly },
      buckets: {
        [bucket]: doc({
          Effect: 'Allow',
          Principal: '*',
          Action: 's3:GetObject',
          Resource: `arn:aws:s3:::${bucket}/public/*`,
        }),
      },
    }
    const presigned = await getSignedUrl(client(reader), new GetObjectCommand({ Bucket: bucket, Key: 'cache/missing' }))
    expect((await fetch(presigned)).status).toBe(403)
    const anonymous = (key: string, method = 'GET') => fetch(`${store.endpoint}/${bucket}/${key}`, { method })
    const got = await anonymous('public/x')
    expect([got.status, await got.text()]).toEqual([200, 'hello'])
    expect((await anonymous('public/missing')).status).toBe(403)
    expect((await anonymous('cache/there')).status).toBe(403)
    const head = await anonymous('public/missing', 'HEAD')
    expect([head.status, await head.text()]).toEqual([403, ''])
  })

  it('DeleteObjects deletes the keys the policy allows and answers AccessDenied for each other one', async () => {
    for (const Key of ['cache/d1', 'cache/d2', 'keep/d3'])
      await owner().send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }))
    store.proxy.policies = {
      identities: {
        [reader.accessKeyId]: doc({
          Effect: 'Allow',
          Action: 's3:DeleteObject',
          Resource: `arn:aws:s3:::${bucket}/cache/*`,
        }),
      },
    }
    const out = await client(reader).send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: ['cache/d1', 'keep/d3', 'cache/d2'].map((Key) => ({ Key })) },
      }),
    )
    expect((out.Deleted ?? []).map((d) => d.Key).sort()).toEqual(['cache/d1', 'cache/d2'])
    expect((out.Errors ?? []).map((e) => [e.Key, e.Code])).toEqual([['keep/d3', 'AccessDenied']])
    expect(await store.listKeys(bucket, 'cache/d')).toEqual([])
    expect(await store.listKeys(bucket, 'keep/')).toEqual(['keep/d3'])
    const allowed = await client(reader).send(
      new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: [{ Key: 'cache/there' }] } }),
    )
    expect((allowed.Deleted ?? []).map((d) => d.Key)).toEqual(['cache/there'])
    expect(await store.listKeys(bucket, 'cache/there')).toEqual([])
  })
})
