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
