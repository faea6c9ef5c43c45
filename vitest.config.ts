import { defineConfig } from 'vitest/config'

// The CLI and library support Node.js 22 and later and the action runs on 24; the suite is not run on older
// releases. `npm test` runs it on Node 22 and 24 whatever the machine's node is (scripts/test.mjs).
const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  throw new Error(
    `The tests run on Node.js 22 or later, and this is ${process.version}. Run \`npm test\`: it installs Node 22 and 24 from npm and runs the suite on each.`,
  )
}

export default defineConfig({
  test: {
    include: ['__tests__/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
})
