import * as http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface RecordedRequest {
  method: string
  url: string
  headers: http.IncomingHttpHeaders
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

export interface Proxy {
  endpoint: string
  requests: RecordedRequest[]
  /** Set per test; returns true when it handled the request. */
  fault: Fault | undefined
  close(): Promise<void>
}

/** An HTTP proxy on 127.0.0.1 in front of the S3 server: records every request and can inject faults. */
export async function startProxy(upstreamPort: number): Promise<Proxy> {
  const proxy: Proxy = { endpoint: '', requests: [], fault: undefined, close: async () => undefined }
  const server = http.createServer((req, res) => {
    proxy.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers })
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
    if (proxy.fault?.(req, res, forward)) return
    forward()
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

export const isArchiveGet: Match = (req) => req.method === 'GET' && /\.tar\.(zst|gz)(\?|$)/.test(req.url ?? '')
export const isIndexGet: Match = (req) => req.method === 'GET' && /\/packages\/[0-9a-f]{64}\.json/.test(req.url ?? '')
export const isMarkerGet: Match = (req) => req.method === 'GET' && /\/complete\/[0-9a-f]{64}\.json/.test(req.url ?? '')
export const isArchivePut: Match = (req) =>
  (req.method === 'PUT' || req.method === 'POST') && /\.tar\.(zst|gz)(\?|$)/.test(req.url ?? '')
export const isAnyPut: Match = (req) => req.method === 'PUT' || req.method === 'POST'

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
