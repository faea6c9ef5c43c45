import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { pathToFileURL } from 'node:url'
import { root } from './s3-server.js'

export interface TestBundle {
  zip: Buffer
  sha256: string
}

/**
 * A Scipio artifact bundle laid out like the real release's (scipio.artifactbundle/info.json plus
 * scipio-<version>-<platform>/<triple>/bin/scipio), whose binaries run the Scipio test double and, when
 * INSTALLED_SCIPIO_LOG is set, append a line to that file so a test can tell this binary ran.
 * Besides the macOS triples it has Linux ones, so that it installs on this machine.
 */
export async function makeTestBundle(version: string): Promise<TestBundle> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bundle-'))
  const bundle = path.join(dir, 'scipio.artifactbundle')
  const double = pathToFileURL(path.join(root, 'scipio-test-double/scipio.mjs')).href
  const script = [
    '#!/usr/bin/env node',
    '// Installed from a test artifact bundle: runs the Scipio test double.',
    `if (process.env.INSTALLED_SCIPIO_LOG) require('node:fs').appendFileSync(process.env.INSTALLED_SCIPIO_LOG, __filename + '\\n')`,
    `import(${JSON.stringify(double)})`,
    '',
  ].join('\n')
  const variants = [
    ['macos', 'arm64-apple-macosx'],
    ['macos', 'x86_64-apple-macosx'],
    ['linux', 'x86_64-unknown-linux-gnu'],
    ['linux', 'aarch64-unknown-linux-gnu'],
  ].map(([platform, triple]) => ({
    path: `scipio-${version}-${platform}/${triple}/bin/scipio`,
    supportedTriples: [triple!],
  }))
  for (const v of variants) {
    await fs.mkdir(path.join(bundle, path.dirname(v.path)), { recursive: true })
    await fs.writeFile(path.join(bundle, v.path), script, { mode: 0o755 })
  }
  const info = { schemaVersion: '1.0', artifacts: { scipio: { version, type: 'executable', variants } } }
  await fs.writeFile(path.join(bundle, 'info.json'), JSON.stringify(info, null, 2))
  execFileSync('zip', ['-qr', 'bundle.zip', 'scipio.artifactbundle'], { cwd: dir })
  const zip = await fs.readFile(path.join(dir, 'bundle.zip'))
  await fs.rm(dir, { recursive: true, force: true })
  return { zip, sha256: createHash('sha256').update(zip).digest('hex') }
}

export interface BundleServer {
  /** Base URL for SCIPIO_S3_CACHE_SCIPIO_DOWNLOAD_URL (and, answering 404 to the rest, a public URL with nothing stored). */
  url: string
  /** Paths of the requests for a bundle. */
  bundleRequests: string[]
  close(): Promise<void>
}

/** Serves `/<version>/scipio-<version>.artifactbundle.zip` on 127.0.0.1; 404 for anything else. */
export async function startBundleServer(bundles: Record<string, Buffer>): Promise<BundleServer> {
  const bundleRequests: string[] = []
  const server: Server = createServer((req, res) => {
    const m = /^\/([^/]+)\/scipio-([^/]+)\.artifactbundle\.zip$/.exec(req.url ?? '')
    const zip = m && m[1] === m[2] ? bundles[m[1]!] : undefined
    if (m) bundleRequests.push(req.url!)
    if (!zip) {
      res.writeHead(404).end('Not Found')
      return
    }
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': zip.length }).end(zip)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    bundleRequests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** A loopback port with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}
