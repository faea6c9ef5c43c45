// A TCP proxy on loopback in front of the S3 server. It counts the bytes each way and the HTTP requests, so
// every contender's traffic is measured the same way (request bodies and headers up, responses down), and it
// can model the link between a runner and S3 for every contender alike (`setLink`):
//
// - `rttMs`: every byte is held for half the round-trip time in each direction (a delay line), so a request
//   and its response cost one round trip, as on a kept-alive connection; a new connection pays one more round
//   trip before its first bytes go out (TCP's handshake; TLS is not modelled). At most 4 MiB per connection and
//   direction are in flight (like a TCP window): the proxy stops reading the sending side until they are
//   delivered, so back-pressure reaches the sender.
// - `mbit`: a bandwidth cap shared by every connection, like one link: a token bucket per direction (the link
//   is full duplex: uploads and downloads each get the rate), taken in pieces of at most 64 KiB so concurrent
//   connections interleave.
//
// Without either (the default) bytes are passed on as they arrive, with the sockets' own back-pressure.
import * as net from 'node:net'

const PIECE = 64 * 1024
const WINDOW = 4 * 1024 * 1024

/** A token bucket of `mbit` megabits per second; `take(n)` returns 0 (taken) or the milliseconds to wait. */
function tokenBucket(mbit) {
  const perMs = (mbit * 1e6) / 8 / 1000
  const capacity = Math.max(256 * 1024, perMs * 20) // 20 ms of burst absorbs timer lateness without exceeding the rate
  let tokens = capacity
  let last = performance.now()
  return {
    take(n) {
      const now = performance.now()
      tokens = Math.min(capacity, tokens + (now - last) * perMs)
      last = now
      if (tokens >= n) {
        tokens -= n
        return 0
      }
      return Math.max(1, Math.ceil((n - tokens) / perMs))
    },
  }
}

/**
 * Counts HTTP/1.1 requests in the client's byte stream: request line and headers, then a body of
 * Content-Length bytes or chunked (Expect: 100-continue bodies follow later on the same stream).
 */
function requestCounter(onRequest) {
  let state = 'head'
  let head = ''
  let remaining = 0 // body bytes left (length or current chunk, with its CRLF)
  let line = ''
  return (chunk) => {
    let i = 0
    while (i < chunk.length) {
      if (state === 'head') {
        // The head may straddle chunks: keep what we have and look again with the next chunk.
        const before = head.length
        head += chunk.toString('latin1', i)
        const at = head.indexOf('\r\n\r\n')
        if (at === -1) {
          if (head.length > 1 << 20) head = head.slice(-3)
          return
        }
        i += at + 4 - before
        const text = head.slice(0, at)
        head = ''
        const [requestLine, ...headers] = text.split('\r\n')
        const [method, target] = requestLine.split(' ')
        const header = (name) =>
          headers
            .find((h) => h.toLowerCase().startsWith(`${name}:`))
            ?.slice(name.length + 1)
            .trim()
        onRequest(method, target)
        if (/chunked/i.test(header('transfer-encoding') ?? '')) state = 'chunk-size'
        else {
          remaining = Number(header('content-length') ?? 0) || 0
          state = remaining > 0 ? 'body' : 'head'
        }
      } else if (state === 'body' || state === 'chunk-data') {
        const n = Math.min(remaining, chunk.length - i)
        i += n
        remaining -= n
        if (remaining === 0) state = state === 'body' ? 'head' : 'chunk-size'
      } else {
        // chunk-size or trailer: read a line
        const nl = chunk.indexOf('\n', i)
        if (nl === -1) {
          line += chunk.toString('latin1', i)
          return
        }
        line += chunk.toString('latin1', i, nl)
        i = nl + 1
        const text = line.trim()
        line = ''
        if (state === 'chunk-size') {
          const size = parseInt(text.split(';')[0], 16)
          if (size > 0) {
            remaining = size + 2 // data and its CRLF
            state = 'chunk-data'
          } else state = 'trailer'
        } else if (text === '') state = 'head' // end of trailers
      }
    }
  }
}

export async function startCountingProxy(targetPort) {
  const counters = { up: 0, down: 0, connections: 0, requests: 0, methods: {}, log: [] }
  let since = performance.now()
  const link = { rttMs: 0, mbit: 0, buckets: undefined }
  const sockets = new Set()

  /** Moves bytes from `src` to `dst` through the link's delay line and bandwidth cap. */
  function lane(src, dst, direction, connectedAt, onBytes) {
    const queue = [] // pieces waiting for the bucket: Buffer
    const flight = [] // pieces through the bucket, waiting out the delay: { piece, at }
    let queued = 0
    let ended = false
    let first = true
    let bucketTimer
    let flightTimer
    const shaped = () => link.rttMs > 0 || link.mbit > 0
    const backlog = () => queued + dst.writableLength
    const maybeEnd = () => {
      if (ended && queue.length === 0 && flight.length === 0 && !dst.destroyed) dst.end()
    }
    const maybeResume = () => {
      if (src.isPaused() && backlog() < WINDOW / 2) src.resume()
    }
    dst.on('drain', maybeResume)
    const deliver = () => {
      flightTimer = undefined
      const now = performance.now()
      while (flight.length && flight[0].at <= now) {
        const { piece } = flight.shift()
        queued -= piece.length
        if (!dst.destroyed) dst.write(piece)
      }
      if (flight.length) flightTimer = setTimeout(deliver, Math.max(0, flight[0].at - performance.now()))
      maybeResume()
      maybeEnd()
    }
    const pump = () => {
      bucketTimer = undefined
      const bucket = link.buckets?.[direction]
      while (queue.length) {
        const wait = bucket ? bucket.take(queue[0].length) : 0
        if (wait > 0) {
          bucketTimer = setTimeout(pump, wait)
          return
        }
        const piece = queue.shift()
        const now = performance.now()
        // A new connection's first bytes wait for the handshake's round trip.
        const start = first && direction === 'up' ? Math.max(now, connectedAt + link.rttMs) : now
        first = false
        flight.push({ piece, at: start + link.rttMs / 2 })
        if (!flightTimer) flightTimer = setTimeout(deliver, Math.max(0, flight[0].at - performance.now()))
      }
      maybeEnd()
    }
    src.on('data', (d) => {
      onBytes(d)
      if (!shaped() && queue.length === 0 && flight.length === 0) {
        first = false
        if (!dst.write(d)) src.pause()
        return
      }
      for (let o = 0; o < d.length; o += PIECE) {
        const piece = d.subarray(o, Math.min(d.length, o + PIECE))
        queue.push(piece)
        queued += piece.length
      }
      if (backlog() > WINDOW) src.pause()
      if (!bucketTimer) pump()
    })
    src.on('end', () => {
      ended = true
      maybeEnd()
    })
    return () => {
      clearTimeout(bucketTimer)
      clearTimeout(flightTimer)
    }
  }

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const connectedAt = performance.now()
    counters.connections += 1
    const id = counters.connections
    const upstream = net.connect({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true })
    sockets.add(client).add(upstream)
    const count = requestCounter((method, target) => {
      counters.requests += 1
      counters.methods[method] = (counters.methods[method] ?? 0) + 1
      if (counters.log.length < 10_000)
        counters.log.push({ ms: Math.round(performance.now() - since), conn: id, method, path: target })
    })
    const stopUp = lane(client, upstream, 'up', connectedAt, (d) => {
      counters.up += d.length
      count(d)
    })
    const stopDown = lane(upstream, client, 'down', connectedAt, (d) => (counters.down += d.length))
    let closed = 0
    const close = () => {
      stopUp()
      stopDown()
      client.destroy()
      upstream.destroy()
      sockets.delete(client)
      sockets.delete(upstream)
    }
    client.on('error', close)
    upstream.on('error', close)
    // Both sides closed (each after its lane delivered everything and ended the other side's writing).
    const closedOne = () => (++closed === 2 ? close() : undefined)
    client.on('close', closedOne)
    upstream.on('close', closedOne)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = server.address().port
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    /** The link every new byte crosses from now on: `{ rttMs, mbit }` (0 or absent: none). */
    setLink({ rttMs = 0, mbit = 0 } = {}) {
      link.rttMs = rttMs
      link.mbit = mbit
      link.buckets = mbit > 0 ? { up: tokenBucket(mbit), down: tokenBucket(mbit) } : undefined
    },
    link: () => ({ rttMs: link.rttMs, mbit: link.mbit }),
    /** The counters since the last reset; `log` lists every request: ms since the reset, connection, method, path. */
    reset() {
      const snapshot = { ...counters }
      counters.up = counters.down = counters.connections = counters.requests = 0
      counters.methods = {}
      counters.log = []
      since = performance.now()
      return snapshot
    },
    read: () => ({ ...counters }),
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(resolve)
      }),
  }
}
