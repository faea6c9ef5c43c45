#!/usr/bin/env node
// An S3 server on loopback (s3rver) for the tests and the local run. Prints one JSON line, {"port": N},
// once it listens; stops when its standard input closes (unless --ignore-stdin: a server left running in the
// background, as scripts/e2e/e2e.mjs starts it) or on SIGTERM.
//   node --openssl-legacy-provider scripts/s3-server.mjs --dir DIR --bucket NAME [--bucket NAME] [--credentials KEY:SECRET] [--ignore-stdin]
// (s3rver needs the legacy OpenSSL provider for ListObjectsV2 continuation tokens.)
import { createRequire } from 'node:module'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const require = createRequire(import.meta.url)
const S3rver = require('s3rver')
const AWSAccount = require('s3rver/lib/models/account')

const args = process.argv.slice(2)
const buckets = []
const credentials = []
let directory
let ignoreStdin = false
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--bucket') buckets.push({ name: args[++i] })
  else if (args[i] === '--credentials') credentials.push(args[++i])
  else if (args[i] === '--dir') directory = args[++i]
  else if (args[i] === '--ignore-stdin') ignoreStdin = true
}
directory ??= fs.mkdtempSync(path.join(os.tmpdir(), 's3rver-'))
for (const pair of credentials) {
  const [key, secret] = pair.split(':')
  new AWSAccount(123456789001, 'test').createKeyPair(key, secret)
}

const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets })
const { port } = await server.run()
process.stdout.write(JSON.stringify({ port, directory }) + '\n')

const stop = () => server.close(() => process.exit(0))
if (!ignoreStdin) {
  process.stdin.on('end', stop)
  process.stdin.on('close', stop)
  process.stdin.resume()
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
