import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { root } from './s3-server.js'

/**
 * The last commit before code.tar.zst: the release its entries must not break. Its bundle (dist/, committed) is
 * taken from git, so the tests run that release's own code against what this one writes.
 */
export const earlierCommit = 'f6682e0'

/** The earlier release's dist/ in a temporary folder, as a path relative to the repository (for runAction's `entry`). */
export function earlierBundle(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'earlier-release-'))
  const tar = path.join(dir, 'dist.tar')
  execFileSync('git', ['archive', '--format=tar', '-o', tar, earlierCommit, 'dist'], { cwd: root })
  execFileSync('tar', ['-xf', tar, '-C', dir])
  return path.relative(root, path.join(dir, 'dist'))
}
