import { S3Client } from '@aws-sdk/client-s3'
import { spawn, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { createInterface } from 'node:readline'

export const root = path.resolve(import.meta.dirname, '../..')

export interface TestCredentials {
  accessKeyId: string
  secretAccessKey: string
}

export const testCredentials: TestCredentials = {
  accessKeyId: 'AKIASCIPIOTEST0001',
  secretAccessKey: 'test-secret-key-0123456789abcdefghij',
}

/** A key pair of its own for a test identity (a role, a job): `label` makes it recognisable in recorded requests. */
export function testKeyPair(label: string): TestCredentials {
  const id = label.toUpperCase().replace(/[^A-Z0-9]/g, '')
  return {
    accessKeyId: `AKIA${id.padEnd(16, '0').slice(0, 16)}`,
    secretAccessKey: `${label}-secret-0123456789abcdefghij`,
  }
}

export interface S3Server {
  port: number
  endpoint: string
  directory: string
  client(credentials?: TestCredentials): S3Client
  stop(): Promise<void>
}

/** Starts s3rver in its own process on 127.0.0.1 (port chosen by the system) with the given buckets. */
export async function startS3Server(
  buckets: string[],
  credentials: TestCredentials[] = [testCredentials],
): Promise<S3Server> {
  const directory = await fs.mkdtemp(path.join(os.tmpdir(), 's3rver-test-'))
  const args = ['--openssl-legacy-provider', path.join(root, 'scripts/s3-server.mjs'), '--dir', directory]
  for (const b of buckets) args.push('--bucket', b)
  for (const c of credentials) args.push('--credentials', `${c.accessKeyId}:${c.secretAccessKey}`)
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`s3 server exited with ${code}`)))
  })
  const { port } = JSON.parse(line) as { port: number }
  const endpoint = `http://127.0.0.1:${port}`
  return {
    port,
    endpoint,
    directory,
    client: (c = testCredentials) =>
      new S3Client({
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        credentials: c,
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      }),
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.stdin!.end()
      await exited
      await fs.rm(directory, { recursive: true, force: true })
    },
  }
}
