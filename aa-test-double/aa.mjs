// AA TEST DOUBLE: stands in for macOS's /usr/bin/aa (Apple Archive) in this project's tests, on machines
// without macOS. It is never on PATH in production: only tests put `aa-test-double/bin` there.
//
// Commands and options it implements (aa(1)); anything else exits 64 with a message:
//   aa archive -d DIR -o FILE [-a lzfse|zlib|lzma|lz4|raw] [-b SIZE] [-exclude-field KEYS] [-include-field KEYS] [-v]
//       archives the contents of DIR (its root entry has an empty path) with the selected fields
//   aa extract -d DIR -i FILE [-ignore-eperm] [-v]
//       writes the entries below DIR
// See apple-archive.mjs for the byte format and what it does not implement (LZFSE: it writes stored blocks
// and reads stored or zlib blocks only).
//
// Test hook: AA_TEST_DOUBLE_LOG appends one JSON line per run: {"argv": [...]}.
import * as fs from 'node:fs'
import {
  archiveDirectory,
  decodeEntries,
  extractEntries,
  fieldKeySet,
  unwrapBlocks,
  wrapBlocks,
} from './apple-archive.mjs'

function fail(message, code = 64) {
  console.error(`aa (test double): ${message}`)
  process.exit(code)
}

function blockSize(text) {
  const m = /^(\d+)([bkmg]?)$/i.exec(text)
  if (!m) fail(`bad block size '${text}'`)
  return Number(m[1]) * { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()]
}

const argv = process.argv.slice(2)
if (process.env.AA_TEST_DOUBLE_LOG) fs.appendFileSync(process.env.AA_TEST_DOUBLE_LOG, `${JSON.stringify({ argv })}\n`)
const [command, ...rest] = argv
const allowed = {
  archive: ['-d', '-o', '-a', '-b', '-exclude-field', '-include-field', '-v'],
  extract: ['-d', '-i', '-ignore-eperm', '-v'],
}
if (!(command in allowed)) fail(`the test double implements only 'archive' and 'extract' (got '${command ?? ''}')`)
const opts = { fields: [], ignoreEperm: false, algorithm: 'lzfse', blockSize: 4 * 1024 ** 2 }
for (let i = 0; i < rest.length; i++) {
  const a = rest[i]
  if (!allowed[command].includes(a)) fail(`option '${a}' is not implemented for '${command}' by the test double`)
  const value = () => rest[++i] ?? fail(`${a} needs a value`)
  if (a === '-d') opts.dir = value()
  else if (a === '-o') opts.output = value()
  else if (a === '-i') opts.input = value()
  else if (a === '-a') opts.algorithm = value()
  else if (a === '-b') opts.blockSize = blockSize(value())
  else if (a === '-exclude-field') opts.fields.push({ op: 'exclude', spec: value() })
  else if (a === '-include-field') opts.fields.push({ op: 'include', spec: value() })
  else if (a === '-ignore-eperm') opts.ignoreEperm = true
}

try {
  if (command === 'archive') {
    if (!opts.dir || !opts.output) fail('archive needs -d and -o (the double does not write to stdout)')
    if (!fs.statSync(opts.dir).isDirectory()) fail(`${opts.dir} is not a folder`, 1)
    const stream = archiveDirectory(opts.dir, fieldKeySet(opts.fields))
    fs.writeFileSync(
      opts.output,
      opts.algorithm === 'raw' ? stream : wrapBlocks(stream, opts.algorithm, opts.blockSize),
    )
  } else {
    if (!opts.dir || !opts.input) fail('extract needs -d and -i (the double does not read stdin)')
    extractEntries(decodeEntries(unwrapBlocks(fs.readFileSync(opts.input))), opts.dir, {
      ignoreEperm: opts.ignoreEperm,
    })
  }
} catch (error) {
  fail(error instanceof Error ? error.message : String(error), 1)
}
