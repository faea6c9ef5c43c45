import * as http from 'node:http'
import * as https from 'node:https'

/**
 * A GET that any thread can send as it is, with Node's own HTTP client: the restore's extraction threads
 * download their archives themselves (archive/extract-pool.ts says why). The store signs it on the main thread
 * (Storage.direct); its URL can then carry a signature and a session token, so it is never logged, and no error
 * made here names it.
 *
 * This module imports no SDK: it is bundled into the extraction thread.
 */
export interface PlainGet {
  url: string
  headers: Record<string, string>
}

/** How a plain GET failed, as seen by the thread that sent it; the store turns it into its own sentence. */
export type GetFailure =
  | { kind: 'status'; status: number; code?: string; message?: string; region?: string }
  | { kind: 'network'; code: string; message: string }

/** Carries a GetFailure (across threads too: see extract-pool.ts). */
export class PlainGetError extends Error {
  override name = 'PlainGetError'
  constructor(readonly failure: GetFailure) {
    super(
      failure.kind === 'status'
        ? `HTTP ${failure.status}${failure.code ? ` ${failure.code}` : ''}`
        : `${failure.code}: ${failure.message}`,
    )
  }
}

/** No bytes moved for the stall time: the transfer is given up and tried again. */
export class StallError extends Error {
  override name = 'StallError'
}

/** Kept-alive sockets per thread: as many as the restore lets small downloads be in flight (restore/in-flight.ts). */
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 96 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 96 }),
}

/** An S3 error document's `<Code>`, `<Message>` and `<Region>`, from the first 64 KiB of an error answer. */
function errorFields(xml: string): { code?: string; message?: string; region?: string } {
  const field = (name: string) => new RegExp(`<${name}>([^<]{0,1000})</${name}>`).exec(xml)?.[1]
  const code = field('Code')
  const message = field('Message')
  const region = field('Region')
  return { ...(code ? { code } : {}), ...(message ? { message } : {}), ...(region ? { region } : {}) }
}

/**
 * Sends `get`; resolves with the answer once it is a 200, whose body the caller must consume or destroy.
 * No bytes for `stallMs` (waiting for the answer, or between two chunks of the body) fails it with StallError;
 * `signal` aborts it. Any other answer rejects with PlainGetError.
 */
export function sendPlainGet(
  get: PlainGet,
  { stallMs, signal }: { stallMs: number; signal?: AbortSignal },
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const url = new URL(get.url)
    const agent = url.protocol === 'https:' ? agents['https:'] : agents['http:']
    const send = url.protocol === 'https:' ? https.request : http.request
    let request: http.ClientRequest
    let answer: http.IncomingMessage | undefined
    try {
      request = send(url, { method: 'GET', headers: get.headers, agent, ...(signal ? { signal } : {}) })
    } catch (error) {
      reject(error)
      return
    }
    // The socket's idle time: waiting for the answer, then between two chunks of the body.
    request.setTimeout(stallMs, () => {
      const stalled = new StallError(`no data for ${Math.round(stallMs / 1000)} s`)
      if (answer) answer.destroy(stalled)
      else request.destroy(stalled)
    })
    request.on('error', (error: NodeJS.ErrnoException) => {
      if (error instanceof StallError || error.name === 'AbortError') return reject(error)
      // Node's messages name the host at most; drop anything that could be a signed query all the same.
      reject(
        new PlainGetError({ kind: 'network', code: error.code ?? 'EIO', message: error.message.replace(/\?\S*/g, '') }),
      )
    })
    request.on('response', (response) => {
      answer = response
      if (response.statusCode === 200) return resolve(response)
      const status = response.statusCode ?? 0
      const parts: Buffer[] = []
      let size = 0
      response.on('data', (chunk: Buffer) => {
        if (size < 64 * 1024) parts.push(chunk)
        size += chunk.length
      })
      const fail = () => {
        const fields = errorFields(Buffer.concat(parts).toString('utf8'))
        const region = response.headers['x-amz-bucket-region']
        reject(
          new PlainGetError({ kind: 'status', status, ...fields, ...(typeof region === 'string' ? { region } : {}) }),
        )
      }
      response.once('end', fail)
      response.once('error', fail)
      response.once('aborted', fail)
    })
    request.end()
  })
}
