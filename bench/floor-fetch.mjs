#!/usr/bin/env node
// The network floor: GETs the given objects from the S3 server in parallel and throws the bytes away, with
// no hashing, decompression or disk writes. Reads {"endpoint", "bucket", "keys", "concurrency"} on stdin.
import * as http from 'node:http'

const input = JSON.parse(
  await new Promise((resolve) => {
    let text = ''
    process.stdin.on('data', (d) => (text += d)).on('end', () => resolve(text))
  }),
)
// One connection per object: a reused keep-alive socket can be closed by the server under it (socket hang up).
const agent = new http.Agent({ keepAlive: false, maxSockets: input.concurrency })
const url = new URL(input.endpoint)
let bytes = 0

function get(key) {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        host: url.hostname,
        port: url.port,
        path: `/${input.bucket}/${key.split('/').map(encodeURIComponent).join('/')}`,
        agent,
      },
      (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET ${key}: HTTP ${res.statusCode}`))
        res
          .on('data', (d) => (bytes += d.length))
          .on('end', resolve)
          .on('error', reject)
      },
    )
    req.on('error', reject)
  })
}

const queue = [...input.keys]
await Promise.all(
  Array.from({ length: input.concurrency }, async () => {
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) await get(key)
  }),
)
agent.destroy()
process.stdout.write(JSON.stringify({ bytes }) + '\n')
