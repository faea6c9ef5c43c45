#!/usr/bin/env node
// Release helpers for .github/workflows/release.yml (see docs/development.md#cutting-a-release).
//   node scripts/release.mjs notes vX.Y.Z    prints the CHANGELOG.md section of X.Y.Z (the release notes); fails
//                                           unless the tag is vX.Y.Z, package.json's version is X.Y.Z and the
//                                           section is dated (## [X.Y.Z] - YYYY-MM-DD) and not empty
//   node scripts/release.mjs major vX.Y.Z [TAG...]
//                                           prints the major tag to move (vX), or nothing when one of the
//                                           other release tags given (git tag --list) is a later vX.*.*: a fix
//                                           to an older minor release does not move vX back
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(import.meta.dirname, '..')

export class ReleaseError extends Error {}

/** X.Y.Z of a release tag vX.Y.Z (no pre-release or build suffix). */
export function versionOfTag(tag) {
  const m = /^v(\d+)\.(\d+)\.(\d+)$/.exec(tag ?? '')
  if (!m) throw new ReleaseError(`'${tag ?? ''}' is not a release tag (vX.Y.Z)`)
  return `${m[1]}.${m[2]}.${m[3]}`
}

/** The major tag vX to point at `tag`, or undefined when `tags` hold a later release of the same major. */
export function majorTag(tag, tags = []) {
  const parts = (v) => v.split('.').map(Number)
  const [major, minor, patch] = parts(versionOfTag(tag))
  const later = tags
    .filter((t) => /^v\d+\.\d+\.\d+$/.test(t))
    .map((t) => parts(versionOfTag(t)))
    .some(([x, y, z]) => x === major && (y > minor || (y === minor && z > patch)))
  return later ? undefined : `v${major}`
}

/** The body of CHANGELOG's `## [version] - YYYY-MM-DD` section, trimmed, without its heading. */
export function releaseNotes(changelog, version) {
  const lines = changelog.split('\n')
  const headingOf = (line) => /^## \[([^\]]+)\](?:\s+-\s+(.*))?\s*$/.exec(line)
  const start = lines.findIndex((l) => headingOf(l)?.[1] === version)
  if (start < 0) throw new ReleaseError(`CHANGELOG.md has no section '## [${version}] - YYYY-MM-DD'`)
  const date = headingOf(lines[start])[2]?.trim() ?? ''
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date))
    throw new ReleaseError(
      `CHANGELOG.md: the section of ${version} is not dated ('${date || 'no date'}'): write '## [${version}] - YYYY-MM-DD' before tagging`,
    )
  let end = lines.findIndex((l, i) => i > start && (/^## /.test(l) || /^\[[^\]]+\]:\s/.test(l)))
  if (end < 0) end = lines.length
  const body = lines
    .slice(start + 1, end)
    .join('\n')
    .trim()
  if (!body) throw new ReleaseError(`CHANGELOG.md: the section of ${version} is empty`)
  return body
}

export function notesForTag(tag, { changelog, packageVersion }) {
  const version = versionOfTag(tag)
  if (packageVersion !== version)
    throw new ReleaseError(
      `package.json's version is ${packageVersion}, the tag says ${version}: run 'npm version ${version} --no-git-tag-version' and commit before tagging`,
    )
  return releaseNotes(changelog, version)
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [command, tag] = process.argv.slice(2)
  try {
    if (command === 'notes') {
      const changelog = fs.readFileSync(path.join(root, 'CHANGELOG.md'), 'utf8')
      const packageVersion = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version
      process.stdout.write(notesForTag(tag, { changelog, packageVersion }) + '\n')
    } else if (command === 'major') {
      const major = majorTag(tag, process.argv.slice(4))
      if (major) process.stdout.write(major + '\n')
      else console.error(`${tag} is not the latest release of its major version: the major tag stays where it is.`)
    } else throw new ReleaseError('usage: release.mjs notes|major vX.Y.Z')
  } catch (error) {
    console.error(`::error::${error instanceof ReleaseError ? error.message : (error.stack ?? error)}`)
    process.exit(1)
  }
}
