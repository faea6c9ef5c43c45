#!/usr/bin/env node
// The README's picture of the insights page, made from the synthetic history (scripts/insights-history.mjs):
// an S3 server on loopback, the history put into it, `scipio-s3-cache insights` (the bundle in dist/cli/) writing
// the page, and headless Chromium (Debian's chromium package) taking the screenshot.
//
//   npm run bundle && node scripts/insights-page.mjs [--out docs/insights.png] [--html FILE]
import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { S3Client } from '@aws-sdk/client-s3'
import { chromium } from 'playwright-core'
import { historyNow, putHistory, syntheticHistory } from './insights-history.mjs'
import { startS3ServerProcess } from './s3-server-process.mjs'

const root = path.resolve(import.meta.dirname, '..')
const args = process.argv.slice(2)
const flag = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback)
const out = path.resolve(flag('--out', path.join(root, 'docs/insights.png')))
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'insights-page-'))
const html = path.resolve(flag('--html', path.join(work, 'insights.html')))
const credentials = { accessKeyId: 'AKIAINSIGHTS0000000', secretAccessKey: 'insights-page-secret-0000000000' }
const bucket = 'insights'

const server = await startS3ServerProcess({
  dir: path.join(work, 's3'),
  bucket,
  key: credentials.accessKeyId,
  secret: credentials.secretAccessKey,
})
try {
  const { endpoint } = server
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  })
  const history = syntheticHistory()
  await putHistory(client, bucket, 'scipio', history)
  execFileSync(
    process.execPath,
    [
      path.join(root, 'dist/cli/index.js'),
      'insights',
      ...['--bucket', bucket, '--endpoint', endpoint, '--force-path-style', '--prefix', 'scipio'],
      ...['--since', '90d', '--until', historyNow.toISOString(), '--html', html, '--quiet'],
    ],
    {
      env: {
        ...process.env,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
  const profile = path.join(work, 'profile')
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    viewport: { width: 1280, height: 1000 },
  })
  try {
    const page = await browser.newPage()
    await page.goto(`file://${html}`)
    // The headline figures, the hit rate per day and the weekly build time saved.
    await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1280, height: 1000 } })
  } finally {
    await browser.close()
  }
  console.log(
    `Wrote ${path.relative(process.cwd(), out)} (${fs.statSync(out).size} bytes) from ${history.records.length} records.`,
  )
} finally {
  await server.stop()
  fs.rmSync(work, { recursive: true, force: true })
}
