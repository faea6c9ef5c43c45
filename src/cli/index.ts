#!/usr/bin/env node
import { main } from './main.js'
import { unsupportedNode } from './runtime.js'
import { exitIfCancelled } from '../flow/cancel.js'

// Node.js releases before 22 are past their end of life, and the AWS SDK drops them in 2027.
const unsupported = unsupportedNode()
if (unsupported) {
  process.stderr.write(`${unsupported}\n`)
  process.exitCode = 2
} else {
  process.exitCode = await main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  })
  exitIfCancelled(process.exitCode)
}
