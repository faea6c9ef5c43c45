// Shared by the benchmark's runners (run.mjs, macho.mjs): the S3 server behind a counting proxy, where its objects
// are on disk, the action's outputs, and small tools.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { startS3ServerProcess } from '../scripts/s3-server-process.mjs'

export const root = path.resolve(import.meta.dirname, '..')
export const MiB = 1024 * 1024
export const bucket = 'bench'
export const credentials = { key: 'AKIABENCH0000000', secret: 'bench-secret-000000000000000' }

// ---------------------------------------------------------------- tools
export function which(file) {
  return fs.existsSync(file) ? file : undefined
}
export function versionOf(command, args) {
  const r = spawnSync(command, args, { encoding: 'utf8' })
  return (r.stdout || r.stderr || '').trim().split('\n')[0]
}
export const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2
}

export function cpuOfPid(pid) {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100 // utime + stime in clock ticks (USER_HZ = 100)
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------- S3 server behind a counting proxy
export function startServer(dir) {
  return startS3ServerProcess({ dir, bucket, ...credentials })
}

/** Sizes of the objects stored under `prefix/`, read from s3rver's folder (key → bytes). */
export function storedObjects(s3Dir, prefix) {
  const out = new Map()
  const base = path.join(s3Dir, bucket)
  const walk = (dir) => {
    if (!fs.existsSync(dir)) return
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const abs = path.join(dir, e.name)
      if (e.isDirectory()) walk(abs)
      else if (e.name.endsWith('._S3rver_object'))
        out.set(path.relative(base, abs).slice(0, -'._S3rver_object'.length), fs.statSync(abs).size)
    }
  }
  walk(path.join(base, prefix))
  return out
}

export function readOutputs(file) {
  const outputs = {}
  const lines = fs.readFileSync(file, 'utf8').split('\n')
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i])
    if (!m) continue
    const value = []
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i])
    outputs[m[1]] = value.join('\n')
  }
  return outputs
}
