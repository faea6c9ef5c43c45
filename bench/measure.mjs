// Runs one contender's command and measures it: wall time, CPU time (user + system of the process and every
// child it waited for) and peak RSS (the largest single process), through GNU time when it is installed.
import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export const gnuTime = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined

export async function measure(command, args, { env = process.env, cwd, stdin } = {}) {
  const statsFile = path.join(
    os.tmpdir(),
    `bench-time-${process.pid}-${Date.now()}-${Math.random().toString(16).slice(2)}`,
  )
  const [cmd, argv] = gnuTime ? [gnuTime, ['-f', '%e %U %S %M', '-o', statsFile, command, ...args]] : [command, args]
  const started = process.hrtime.bigint()
  const child = spawn(cmd, argv, { env, cwd, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  if (stdin) child.stdin.end(stdin)
  const code = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? -1)))
  const wallS = Number(process.hrtime.bigint() - started) / 1e9
  let cpuS
  let rssMB
  if (gnuTime) {
    const text = fs.readFileSync(statsFile, 'utf8').trim().split('\n').pop() ?? ''
    fs.rmSync(statsFile, { force: true })
    const [, user, sys, rssKB] = text.split(/\s+/).map(Number)
    if (Number.isFinite(user)) cpuS = user + sys
    if (Number.isFinite(rssKB)) rssMB = rssKB / 1024
  }
  return { code, wallS, cpuS, rssMB, stdout, stderr }
}
