import * as http from 'node:http'
import type { AddressInfo } from 'node:net'

export interface Cdn {
  /** The public URL to give the consumer, e.g. http://127.0.0.1:PORT/cache */
  baseUrl: string
  requests: { method: string; url: string; authorized: boolean }[]
  close(): Promise<void>
}

/**
 * A CDN stand-in on 127.0.0.1: serves `/cache/<key>` from `<origin>/<bucket>/<key>`, like a CDN or public
 * domain in front of a bucket, under another host and base path. Only GET and HEAD, never signed.
 */
export async function startCdn(origin: string, bucket: string, basePath = '/cache', missingStatus = 404): Promise<Cdn> {
  const cdn: Cdn = { baseUrl: '', requests: [], close: async () => undefined }
  const server = http.createServer((req, res) => {
    cdn.requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      authorized: req.headers.authorization !== undefined,
    })
    if ((req.method !== 'GET' && req.method !== 'HEAD') || !req.url?.startsWith(`${basePath}/`)) {
      res.writeHead(req.method === 'GET' || req.method === 'HEAD' ? 404 : 405).end()
      return
    }
    const upstream = http.request(
      `${origin}/${bucket}/${req.url.slice(basePath.length + 1)}`,
      { method: req.method },
      (up) => {
        const headers: http.OutgoingHttpHeaders = { 'cache-control': 'public, max-age=60', via: '1.1 cdn-stand-in' }
        for (const name of ['content-length', 'content-type', 'etag', 'last-modified'])
          if (up.headers[name]) headers[name] = up.headers[name]
        // S3 answers 403 for a missing key when anonymous users may not list the bucket.
        const status = up.statusCode === 404 ? missingStatus : (up.statusCode ?? 502)
        res.writeHead(status, headers)
        up.pipe(res)
      },
    )
    upstream.on('error', () => res.destroy())
    upstream.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cdn.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${basePath}`
  cdn.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return cdn
}
