import * as fs from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleUrl, hostTriples, readScipioInstall, selectVariant, actionsCacheKey } from '../src/scipio/install.js'
import { runAction } from './helpers/action.js'
import { doubleBin, exampleWorkspace } from './helpers/workspace.js'
import {
  closedPort,
  makeTestBundle,
  startBundleServer,
  type BundleServer,
  type TestBundle,
} from './helpers/bundle-server.js'

const version = '0.33.0'
let bundle: TestBundle
let server: BundleServer

beforeAll(async () => {
  bundle = await makeTestBundle(version)
  server = await startBundleServer({ [version]: bundle.zip })
})
afterAll(async () => {
  await server?.close()
})

const tmp = (prefix: string) => fs.mkdtemp(path.join(os.tmpdir(), prefix))

interface Install {
  toolCache: string
  ranLog: string
  env: Record<string, string>
}

async function freshInstall(): Promise<Install> {
  const toolCache = await tmp('tool-cache-')
  const ranLog = path.join(await tmp('ran-'), 'ran.log')
  return {
    toolCache,
    ranLog,
    env: {
      RUNNER_TOOL_CACHE: toolCache,
      RUNNER_TEMP: await tmp('runner-temp-'),
      SCIPIO_S3_CACHE_SCIPIO_DOWNLOAD_URL: server.url,
      INSTALLED_SCIPIO_LOG: ranLog,
    },
  }
}

/** A consumer reading through a public URL on the same loopback server, where nothing is stored: it builds everything. */
async function inputs(extra: Record<string, string>): Promise<Record<string, string>> {
  return {
    'public-url': `${server.url}/store`,
    'package-directory': await exampleWorkspace(),
    'cache-swiftpm': 'false',
    ...extra,
  }
}

const ranLines = async (file: string) => (await fs.readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean)

describe('scipio-version through dist/index.js, against a bundle server on 127.0.0.1', () => {
  let install: Install

  it('downloads, verifies and installs the bundle into the tool cache, and runs that scipio', async () => {
    install = await freshInstall()
    const before = server.bundleRequests.length
    const run = await runAction(
      await inputs({ 'scipio-version': version, 'scipio-checksum': bundle.sha256 }),
      install.env,
    )
    expect(run.code, run.stdout).toBe(0)
    expect(server.bundleRequests.slice(before)).toEqual([`/${version}/scipio-${version}.artifactbundle.zip`])

    const installedDir = path.join(install.toolCache, 'scipio', version, process.arch)
    const binary = path.join(installedDir, `scipio-${version}-linux`, hostTriples()[0]!, 'bin', 'scipio')
    expect(run.stdout).toContain(`Scipio ${version} from the download: ${binary}`)
    expect(await ranLines(install.ranLog)).toEqual([binary])
    await expect(fs.access(`${installedDir}.complete`)).resolves.toBeUndefined()
    expect(run.outputs['built-count']).toBe('7')
    expect(run.summary).toContain(`Scipio ${version} from the download.`)
    // The store is empty, so the only warning is the one saying nothing came from the cache (and why).
    expect(run.stdout.split('\n').filter((l) => l.startsWith('::warning'))).toEqual([
      expect.stringMatching(/^::warning::Nothing came from the cache .*no producer has stored this pin yet/),
    ])
  })

  it('a second run finds it in the tool cache and downloads nothing', async () => {
    const before = server.bundleRequests.length
    const run = await runAction(
      await inputs({ 'scipio-version': version, 'scipio-checksum': bundle.sha256 }),
      install.env,
    )
    expect(run.code, run.stdout).toBe(0)
    expect(server.bundleRequests.length).toBe(before)
    expect(run.stdout).toContain(`Scipio ${version} from the tool cache:`)
    expect(await ranLines(install.ranLog)).toHaveLength(2)
  })

  it('a checksum mismatch fails the step with an error naming scipio-checksum, and installs nothing', async () => {
    const fresh = await freshInstall()
    const wrong = 'f'.repeat(64)
    const run = await runAction(await inputs({ 'scipio-version': version, 'scipio-checksum': wrong }), fresh.env)
    expect(run.code).toBe(1)
    expect(run.stdout).toContain(
      `::error title=Input 'scipio-checksum'::Input 'scipio-checksum': the artifact bundle at ${server.url}/${version}/`,
    )
    expect(run.stdout).toContain(`has SHA-256 ${bundle.sha256}, not ${wrong}`)
    await expect(fs.readdir(fresh.toolCache)).resolves.toEqual([])
    expect(await ranLines(fresh.ranLog)).toEqual([])
  })

  it('without scipio-checksum it installs, and warns with the checksum to pin', async () => {
    const fresh = await freshInstall()
    const run = await runAction(await inputs({ 'scipio-version': version }), fresh.env)
    expect(run.code, run.stdout).toBe(0)
    expect(run.stdout).toContain(
      `::warning title=Input 'scipio-checksum'::Scipio ${version} was installed unverified: set 'scipio-checksum: ${bundle.sha256}'`,
    )
  })

  it('scipio-path wins over scipio-version: nothing is downloaded', async () => {
    const fresh = await freshInstall()
    const before = server.bundleRequests.length
    const run = await runAction(
      await inputs({ 'scipio-version': version, 'scipio-path': path.join(doubleBin, 'scipio') }),
      fresh.env,
    )
    expect(run.code, run.stdout).toBe(0)
    expect(server.bundleRequests.length).toBe(before)
    expect(run.stdout).toContain(`'scipio-path' is set, so Scipio ${version} ('scipio-version') is not installed.`)
    expect(await ranLines(fresh.ranLog)).toEqual([])
  })

  it('a release with no bundle is an error naming scipio-version and the URL', async () => {
    const run = await runAction(await inputs({ 'scipio-version': '9.9.9' }), (await freshInstall()).env)
    expect(run.code).toBe(1)
    expect(run.stdout).toContain(
      `::error title=Input 'scipio-version'::Input 'scipio-version': Scipio 9.9.9 has no artifact bundle at ${server.url}/9.9.9/scipio-9.9.9.artifactbundle.zip`,
    )
  })

  it('a bad version is refused before any request', async () => {
    const before = server.bundleRequests.length
    const run = await runAction(await inputs({ 'scipio-version': 'v0.33.0' }), (await freshInstall()).env)
    expect(run.code).toBe(1)
    expect(run.stdout).toContain("Input 'scipio-version': 'v0.33.0': Scipio's release tags have no 'v'; use '0.33.0'.")
    expect(server.bundleRequests.length).toBe(before)
  })

  it('on a runner without the Actions cache service it warns and still installs', async () => {
    const fresh = await freshInstall()
    const run = await runAction(await inputs({ 'scipio-version': version, 'scipio-checksum': bundle.sha256 }), {
      ...fresh.env,
      GITHUB_ACTIONS: 'true',
    })
    expect(run.code, run.stdout).toBe(0)
    expect(run.stdout).toContain(
      "::warning::GitHub's cache service is not available to this step (ACTIONS_CACHE_URL / ACTIONS_RESULTS_URL unset): the Actions cache is not used in this run.",
    )
    expect(run.stdout.match(/cache service is not available/g)).toHaveLength(1)
    expect(await ranLines(fresh.ranLog)).toHaveLength(1)
  })

  it('when the Actions cache service does not answer, it warns, downloads and installs', async () => {
    const fresh = await freshInstall()
    const port = await closedPort()
    const before = server.bundleRequests.length
    const run = await runAction(await inputs({ 'scipio-version': version, 'scipio-checksum': bundle.sha256 }), {
      ...fresh.env,
      GITHUB_ACTIONS: 'true',
      ACTIONS_CACHE_URL: `http://127.0.0.1:${port}/`,
      ACTIONS_RUNTIME_TOKEN: 'test-token',
    })
    expect(run.code, run.stdout).toBe(0)
    expect(run.stdout).toMatch(/::warning::Failed to restore: /)
    expect(run.stdout).toMatch(/::warning::(Failed to save|Could not save)/)
    expect(server.bundleRequests.length).toBe(before + 1)
    expect(await ranLines(fresh.ranLog)).toHaveLength(1)
  })
})

describe('install-scipio units', () => {
  it('reads and checks the inputs', () => {
    const reader = (values: Record<string, string>) => (name: string) => values[name] ?? ''
    expect(readScipioInstall(reader({}))).toBeUndefined()
    expect(readScipioInstall(reader({ 'scipio-version': '0.33.0', 'scipio-checksum': 'AB'.repeat(32) }))).toEqual({
      version: '0.33.0',
      checksum: 'ab'.repeat(32),
    })
    expect(() => readScipioInstall(reader({ 'scipio-checksum': 'ab'.repeat(32) }))).toThrow(
      "Input 'scipio-checksum': needs 'scipio-version'",
    )
    expect(() => readScipioInstall(reader({ 'scipio-version': 'latest' }))).toThrow(
      "Input 'scipio-version': 'latest' is not a Scipio release version",
    )
    expect(() => readScipioInstall(reader({ 'scipio-version': '0.33.0', 'scipio-checksum': 'abc' }))).toThrow(
      "Input 'scipio-checksum': 'abc' is not a SHA-256",
    )
  })

  it('builds the release URL, overridable for tests and mirrors', () => {
    expect(bundleUrl('0.33.0', {})).toBe(
      'https://github.com/giginet/Scipio/releases/download/0.33.0/scipio-0.33.0.artifactbundle.zip',
    )
    expect(bundleUrl('0.33.0', { SCIPIO_S3_CACHE_SCIPIO_DOWNLOAD_URL: 'http://127.0.0.1:1/m/' })).toBe(
      'http://127.0.0.1:1/m/0.33.0/scipio-0.33.0.artifactbundle.zip',
    )
  })

  it('names the triples SwiftPM uses', () => {
    expect(hostTriples('darwin', 'arm64')).toEqual(['arm64-apple-macosx'])
    expect(hostTriples('darwin', 'x64')).toEqual(['x86_64-apple-macosx'])
    expect(hostTriples('linux', 'x64')).toEqual(['x86_64-unknown-linux-gnu', 'x86_64-swift-linux-musl'])
  })

  it('selects the variant for the host, and refuses paths outside the bundle', () => {
    const info = {
      artifacts: {
        scipio: {
          variants: [
            { path: 'scipio-0.33.0-macos/arm64-apple-macosx/bin/scipio', supportedTriples: ['arm64-apple-macosx'] },
            { path: 'scipio-0.33.0-macos/x86_64-apple-macosx/bin/scipio', supportedTriples: ['x86_64-apple-macosx'] },
          ],
        },
      },
    }
    expect(selectVariant(info, ['x86_64-apple-macosx'], 'info.json')).toBe(
      'scipio-0.33.0-macos/x86_64-apple-macosx/bin/scipio',
    )
    expect(() => selectVariant(info, ['x86_64-unknown-linux-gnu'], 'info.json')).toThrow(
      'has no Scipio binary for x86_64-unknown-linux-gnu',
    )
    expect(() => selectVariant({ artifacts: { other: {} } }, ['arm64-apple-macosx'], 'info.json')).toThrow(
      "no 'scipio' artifact",
    )
    const escaping = {
      artifacts: { scipio: { variants: [{ path: '../../evil', supportedTriples: ['arm64-apple-macosx'] }] } },
    }
    expect(() => selectVariant(escaping, ['arm64-apple-macosx'], 'info.json')).toThrow('outside the bundle')
  })

  it('keys the Actions cache by version, OS, arch and pinned checksum', () => {
    expect(actionsCacheKey({ version: '0.33.0' }, 'darwin', 'arm64')).toBe(
      'scipio-s3-cache-scipio-v1-0.33.0-darwin-arm64-unpinned',
    )
    expect(actionsCacheKey({ version: '0.33.0', checksum: 'ab'.repeat(32) }, 'darwin', 'arm64')).toBe(
      'scipio-s3-cache-scipio-v1-0.33.0-darwin-arm64-abababababababab',
    )
  })
})
