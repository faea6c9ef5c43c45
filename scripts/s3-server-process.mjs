// Starts scripts/s3-server.mjs (s3rver on loopback) as a child process, for the scripts and the benchmarks that
// need an S3 server: `const server = await startS3ServerProcess({ dir, bucket, key, secret })`, then
// `server.endpoint`, and `await server.stop()` (it stops when its standard input closes).
import { spawn } from 'node:child_process'
import * as path from 'node:path'
import { createInterface } from 'node:readline'

const script = path.join(import.meta.dirname, 's3-server.mjs')

export async function startS3ServerProcess({ dir, bucket, key, secret }) {
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', script, '--dir', dir, '--bucket', bucket, '--credentials', `${key}:${secret}`],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  )
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`the S3 server exited with ${code}`)))
  })
  const { port } = JSON.parse(line)
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    pid: child.pid,
    stop: () => new Promise((resolve) => (child.once('exit', resolve), child.stdin.end())),
  }
}
