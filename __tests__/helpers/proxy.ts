import * as http from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  addressOf,
  allows,
  bucketArn,
  callerOf,
  deleteRequestKeys,
  objectArn,
  permissionsOf,
  type AccessPolicies,
  type Caller,
} from './policy.js'

export interface RecordedRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
  /** The status the client got, once the answer is sent. */
  status?: number
  /** The action the policies refused (403 AccessDenied), when they did: not a 403 for a hidden missing key. */
  denied?: string
}

/**
 * Decides what happens to one request: forward it as is (undefined), or handle it here.
 * A handler gets the client's request and response and the function that forwards upstream.
 */
export type Fault = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  forward: (onResponse?: (upstream: http.IncomingMessage, res: http.ServerResponse) => void) => void,
) => boolean | void

/** A request held at the proxy: `arrived` resolves when it comes in; it goes on (to the store) on `release()`. */
export interface Hold {
  arrived: Promise<RecordedRequest>
  release(): void
}

/**
 * How the store treats `If-None-Match` / `If-Match` on PUT. `ignore` (the default): as s3rver does, every write
 * succeeds. `enforce`: as Amazon S3 does, emulated here per key and atomically: `If-None-Match: *` on an existing
 * key answers 412; `If-Match` answers 412 when the ETag differs and 404 NoSuchKey when the key is absent; a
 * conditional write to a key while another is in flight answers 409 ConditionalRequestConflict.
 */
export type ConditionMode = 'ignore' | 'enforce'

export interface Proxy {
  endpoint: string
  requests: RecordedRequest[]
  /** Set per test; returns true when it handled the request. */
  fault: Fault | undefined
  conditions: ConditionMode
  /**
   * Set per test: IAM identity and bucket policies enforced as S3 does (helpers/policy.ts); undefined (the default):
   * every request goes through, as s3rver lets it. With policies, a GET or HEAD of a missing key answers 404 only to
   * a caller that may list the bucket (s3:ListBucket), and 403 to any other.
   */
  policies: AccessPolicies | undefined
  /** Holds the next request that matches until the test releases it (before any fault or condition applies). */
  hold(match: Match): Hold
  close(): Promise<void>
}

interface PendingHold {
  match: Match
  taken: boolean
  arrive: (request: RecordedRequest) => void
  released: Promise<void>
}

/** An HTTP proxy on 127.0.0.1 in front of the S3 server: records every request and can inject faults. */
export async function startProxy(upstreamPort: number): Promise<Proxy> {
  const holds: PendingHold[] = []
  const inFlight = new Set<string>()
  const proxy: Proxy = {
    endpoint: '',
    requests: [],
    fault: undefined,
    conditions: 'ignore',
    policies: undefined,
    hold(match) {
      let arrive!: (request: RecordedRequest) => void
      let release!: () => void
      const arrived = new Promise<RecordedRequest>((resolve) => (arrive = resolve))
      const released = new Promise<void>((resolve) => (release = resolve))
      holds.push({ match, taken: false, arrive, released })
      return { arrived, release }
    },
    close: async () => undefined,
  }
  const server = http.createServer((req, res) => {
    const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers }
    proxy.requests.push(recorded)
    res.once('finish', () => (recorded.status = res.statusCode))
    const forward = (onResponse?: (upstream: http.IncomingMessage, res: http.ServerResponse) => void) => {
      const upstream = http.request(
        { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          if (onResponse) return onResponse(up, res)
          res.writeHead(up.statusCode ?? 502, up.headers)
          up.pipe(res)
        },
      )
      upstream.on('error', () => res.destroy())
      req.pipe(upstream)
    }
    const handle = async () => {
      const hold = holds.find((h) => !h.taken && h.match(req))
      if (hold) {
        hold.taken = true
        hold.arrive(recorded)
        await hold.released
      }
      const policies = proxy.policies
      let pass = forward
      if (policies) {
        const needed = permissionsOf(req)
        if (needed === 'multiDelete') return deleteObjects(policies, req, res, upstreamPort, recorded)
        const caller = callerOf(req)
        const { bucket } = addressOf(req.url ?? '/')
        const refused = needed.find((p) => !allows(policies, caller, bucket, p))
        if (refused) {
          recorded.denied = refused.action
          req.resume()
          return accessDenied(req, res)
        }
        if (isObjectRead(req) && !mayList(policies, caller, bucket))
          pass = (onResponse) => forward(onResponse ?? ((up, response) => hideMissing(req, up, response)))
      }
      if (proxy.fault?.(req, res, pass)) return
      if (proxy.conditions === 'enforce' && isConditionalPut(req)) return conditionalPut(req, res, pass)
      pass()
    }
    const conditionalPut = async (
      request: http.IncomingMessage,
      response: http.ServerResponse,
      go: typeof forward,
    ): Promise<void> => {
      const key = new URL(request.url ?? '/', 'http://proxy').pathname
      if (inFlight.has(key)) {
        request.resume()
        return s3Error(response, 409, 'ConditionalRequestConflict', 'A conflicting operation is in progress')
      }
      inFlight.add(key)
      response.once('close', () => inFlight.delete(key))
      const current = await currentEtag(upstreamPort, key)
      const refusal = conditionRefusal(request.headers, current)
      if (refusal) {
        request.resume()
        return s3Error(response, refusal.status, refusal.code, refusal.code)
      }
      go()
    }
    handle().catch(() => res.destroy())
  })
  server.keepAliveTimeout = 1000
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  proxy.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return proxy
}

export type Match = (req: http.IncomingMessage) => boolean

const isObjectRead = (req: http.IncomingMessage) =>
  (req.method === 'GET' || req.method === 'HEAD') && addressOf(req.url ?? '/').key !== undefined

/** Whether `caller` may list `bucket`: what decides between 404 and 403 for a missing key (no condition key given). */
function mayList(policies: AccessPolicies, caller: Caller, bucket: string): boolean {
  return allows(policies, caller, bucket, { action: 's3:ListBucket', resource: bucketArn(bucket) })
}

function accessDenied(req: http.IncomingMessage, res: http.ServerResponse): void {
  // HEAD answers carry no body.
  if (req.method === 'HEAD') res.writeHead(403).end()
  else s3Error(res, 403, 'AccessDenied', 'Access Denied')
}

/** A missing key's 404, as S3 answers a caller that may not list the bucket: 403 AccessDenied. */
function hideMissing(req: http.IncomingMessage, up: http.IncomingMessage, res: http.ServerResponse): void {
  if (up.statusCode !== 404) {
    res.writeHead(up.statusCode ?? 502, up.headers)
    up.pipe(res)
    return
  }
  up.resume()
  accessDenied(req, res)
}

/**
 * DeleteObjects under policies: S3 checks s3:DeleteObject per key and answers 200 with an `<Error>` for each key
 * refused. All allowed: the request goes to the store as it is; otherwise the allowed keys are deleted one by one
 * and the answer is written here.
 */
async function deleteObjects(
  policies: AccessPolicies,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  port: number,
  recorded: RecordedRequest,
): Promise<void> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  const body = Buffer.concat(chunks)
  const caller = callerOf(req)
  const { bucket } = addressOf(req.url ?? '/')
  const { keys, quiet } = deleteRequestKeys(body.toString('utf8'))
  const refused = new Set(
    keys.filter(
      (key) => !allows(policies, caller, bucket, { action: 's3:DeleteObject', resource: objectArn(bucket, key) }),
    ),
  )
  if (refused.size === 0) {
    const upstream = http.request(
      { host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
      },
    )
    upstream.on('error', () => res.destroy())
    upstream.end(body)
    return
  }
  recorded.denied = 's3:DeleteObject'
  const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  const entries: string[] = []
  for (const key of keys) {
    if (refused.has(key)) {
      entries.push(`<Error><Key>${escape(key)}</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>`)
      continue
    }
    const path = `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'DELETE' })
    await response.arrayBuffer()
    if (!quiet) entries.push(`<Deleted><Key>${escape(key)}</Key></Deleted>`)
  }
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${entries.join('')}</DeleteResult>`
  res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) })
  res.end(xml)
}

function isConditionalPut(req: http.IncomingMessage): boolean {
  return req.method === 'PUT' && (req.headers['if-none-match'] !== undefined || req.headers['if-match'] !== undefined)
}

/** The stored object's ETag, asked anonymously (s3rver does not check reads): undefined when it is absent. */
async function currentEtag(port: number, pathname: string): Promise<string | undefined> {
  const response = await fetch(`http://127.0.0.1:${port}${pathname}`, { method: 'HEAD' })
  if (response.status === 404) return undefined
  if (!response.ok) throw new Error(`HEAD ${pathname} answered ${response.status}`)
  return response.headers.get('etag') ?? ''
}

const bareEtag = (etag: string) => etag.replace(/^W\//, '').replace(/"/g, '')

/** What S3 answers a conditional PUT when the object is as `current` says (undefined: the write goes through). */
export function conditionRefusal(
  headers: http.IncomingHttpHeaders,
  current: string | undefined,
): { status: number; code: string } | undefined {
  const ifNoneMatch = headers['if-none-match']
  const ifMatch = headers['if-match']
  if (ifNoneMatch === '*' && current !== undefined) return { status: 412, code: 'PreconditionFailed' }
  if (ifMatch !== undefined) {
    if (current === undefined) return { status: 404, code: 'NoSuchKey' }
    if (bareEtag(ifMatch) !== bareEtag(current)) return { status: 412, code: 'PreconditionFailed' }
  }
  return undefined
}

export const isArchiveGet: Match = (req) => req.method === 'GET' && /\.tar\.(zst|gz)(\?|$)/.test(req.url ?? '')
export const isIndexGet: Match = (req) => req.method === 'GET' && /\/packages\/[0-9a-f]{64}\.json/.test(req.url ?? '')
export const isMarkerGet: Match = (req) => req.method === 'GET' && /\/complete\/[0-9a-f]{64}\.json/.test(req.url ?? '')
export const isArchivePut: Match = (req) =>
  (req.method === 'PUT' || req.method === 'POST') && /\.tar\.(zst|gz)(\?|$)/.test(req.url ?? '')
export const isAnyPut: Match = (req) => req.method === 'PUT' || req.method === 'POST'
/** A request for exactly this object key (path style: `/<bucket>/<key>`). */
export const forKey =
  (method: string, bucket: string, key: string): Match =>
  (req) =>
    req.method === method && new URL(req.url ?? '/', 'http://proxy').pathname === `/${bucket}/${key}`

/** Applies `fault` to the first `times` requests that match; the rest pass through. */
export function limited(match: Match, times: number, fault: Fault): Fault & { hits: () => number } {
  let hits = 0
  const wrapped = ((req, res, forward) => {
    if (!match(req) || hits >= times) return false
    hits += 1
    return fault(req, res, forward) ?? true
  }) as Fault & { hits: () => number }
  wrapped.hits = () => hits
  return wrapped
}

function s3Error(
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: http.OutgoingHttpHeaders = {},
) {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>TEST</RequestId></Error>`
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), ...headers })
  res.end(body)
}

/** Fault builders: each answers or damages one request. */
export const faults = {
  status:
    (status: number, code: string, message = code, headers: http.OutgoingHttpHeaders = {}): Fault =>
    (req, res) => {
      req.resume()
      // HEAD answers carry no body.
      if (req.method === 'HEAD') {
        res.writeHead(status, headers)
        res.end()
      } else s3Error(res, status, code, message, headers)
      return true
    },
  /** Closes the connection before any answer, as a reset on the way does. */
  drop: (): Fault => (req) => {
    req.socket.destroy()
    return true
  },
  /** Sends the headers and half the body, then resets the connection. */
  resetMidBody: (): Fault => (_req, _res, forward) => {
    forward((up, res) => {
      res.writeHead(up.statusCode ?? 200, up.headers)
      const length = Number(up.headers['content-length'] ?? 0)
      let sent = 0
      up.on('data', (chunk: Buffer) => {
        const room = Math.floor(length / 2) - sent
        if (room > 0) res.write(chunk.subarray(0, room))
        sent += chunk.length
        if (sent >= length / 2) {
          up.destroy()
          res.socket?.destroy()
        }
      })
    })
    return true
  },
  /** Ends the body cleanly after half its bytes (no Content-Length, so the transfer itself looks fine). */
  truncate: (): Fault => (_req, _res, forward) => {
    forward((up, res) => {
      const headers = { ...up.headers }
      const length = Number(headers['content-length'] ?? 0)
      delete headers['content-length']
      res.writeHead(up.statusCode ?? 200, headers)
      const chunks: Buffer[] = []
      up.on('data', (c: Buffer) => chunks.push(c))
      up.on('end', () => res.end(Buffer.concat(chunks).subarray(0, Math.floor(length / 2))))
    })
    return true
  },
  /** Sends the headers and a few bytes, then nothing more. */
  stall: (): Fault => (_req, _res, forward) => {
    forward((up, res) => {
      res.writeHead(up.statusCode ?? 200, up.headers)
      up.once('data', (c: Buffer) => res.write(c.subarray(0, 10)))
      up.pause()
    })
    return true
  },
  /** Flips one byte in the middle of the body, length unchanged. */
  flipByte: (): Fault => (_req, _res, forward) => {
    forward((up, res) => {
      res.writeHead(up.statusCode ?? 200, up.headers)
      const chunks: Buffer[] = []
      up.on('data', (c: Buffer) => chunks.push(c))
      up.on('end', () => {
        const body = Buffer.concat(chunks)
        const at = Math.floor(body.length / 2)
        body[at] = body[at]! ^ 0xff
        res.end(body)
      })
    })
    return true
  },
}
