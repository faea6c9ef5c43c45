// Renders what an action writes to stdout the way a GitHub Actions runner shows it in a job's log, for
// `npm run local`: workflow commands (`::group::`, `::warning::`, `::add-mask::`, ...) become group headings,
// marked warnings and errors, hidden debug lines and masked values, never raw `::` lines. Also renders the job
// summary (the Markdown and HTML an action appends to GITHUB_STEP_SUMMARY) as terminal text or as an HTML page.
// Reference: https://docs.github.com/actions/reference/workflow-commands-for-github-actions

const ansi = {
  reset: '\x1b[0m',
  bold: '\x1b[1m',
  dim: '\x1b[2m',
  red: '\x1b[31m',
  yellow: '\x1b[33m',
  blue: '\x1b[34m',
  cyan: '\x1b[36m',
  magenta: '\x1b[35m',
}

/** Undoes the escaping of a workflow command's message. */
export function unescapeData(text) {
  return text.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%')
}

/** Undoes the escaping of a workflow command's property value. */
export function unescapeProperty(text) {
  return text
    .replace(/%0D/gi, '\r')
    .replace(/%0A/gi, '\n')
    .replace(/%3A/gi, ':')
    .replace(/%2C/gi, ',')
    .replace(/%25/g, '%')
}

/** `::name key=value,key=value::message` → { name, properties, message }, or undefined for an ordinary line. */
export function parseCommand(line) {
  const m = /^::([A-Za-z-]+)(?: ([^:]*))?::(.*)$/s.exec(line)
  if (!m) return undefined
  const properties = {}
  for (const pair of (m[2] ?? '').split(',')) {
    const eq = pair.indexOf('=')
    if (eq > 0) properties[pair.slice(0, eq).trim()] = unescapeProperty(pair.slice(eq + 1))
  }
  return { name: m[1].toLowerCase(), properties, message: unescapeData(m[3]) }
}

/**
 * A runner-like log. Feed it the action's output line by line (`line`), with `stderr: true` for its standard
 * error; it calls `write` with the rendered lines. `groups` records each group's title and duration.
 * Options: verbose (show debug lines), color (ANSI colours), now (a clock, for tests).
 */
export function createRunnerLog({ write, verbose = false, color = false, now = () => Date.now() }) {
  const masks = new Set()
  const groups = []
  const annotations = []
  let open // the group being written, if any
  let stopToken // while commands are stopped (::stop-commands::token), lines are printed as they are

  const paint = (style, text) => (color ? `${style}${text}${ansi.reset}` : text)
  const mask = (text) => {
    let out = text
    // Longest first, so that a secret containing another is hidden whole.
    for (const value of [...masks].sort((a, b) => b.length - a.length)) out = out.split(value).join('***')
    return out
  }
  const emit = (text, style) => {
    const indent = open ? '  ' : ''
    for (const l of mask(text).split(/\r?\n/)) write(`${indent}${style ? paint(style, l) : l}`)
  }
  const closeGroup = () => {
    if (!open) return
    open.ms = now() - open.started
    open = undefined
  }

  function annotate(kind, { properties, message }) {
    const labels = { error: ['Error', ansi.red], warning: ['Warning', ansi.yellow], notice: ['Notice', ansi.cyan] }
    const [label, style] = labels[kind]
    const where = properties.file
      ? `${properties.file}${properties.line ? `:${properties.line}` : ''}${properties.col ? `:${properties.col}` : ''}`
      : ''
    // A runner's log shows the message; the title only when the message does not already start with it.
    const title = properties.title && !message.startsWith(properties.title) ? `${properties.title}: ` : ''
    annotations.push({ kind, title: properties.title, file: properties.file, message: mask(message) })
    const [first, ...rest] = message.split(/\r?\n/)
    emit(`${label}: ${title}${first}${where ? ` (${where})` : ''}`, style)
    for (const l of rest) emit(`  ${l}`, style)
  }

  function line(raw, { stderr = false } = {}) {
    const text = raw.replace(/\r$/, '')
    if (stopToken !== undefined) {
      if (text === `::${stopToken}::`) stopToken = undefined
      else emit(text)
      return
    }
    const command = stderr ? undefined : parseCommand(text)
    if (!command) {
      if (text.startsWith('[command]')) emit(text.slice('[command]'.length), ansi.blue)
      else emit(text)
      return
    }
    switch (command.name) {
      case 'add-mask':
        if (command.message.trim()) masks.add(command.message)
        return
      case 'group':
        closeGroup() // groups do not nest on a runner
        write(paint(ansi.bold, `▾ ${mask(command.message)}`))
        open = { title: mask(command.message), started: now(), ms: undefined }
        groups.push(open)
        return
      case 'endgroup':
        closeGroup()
        return
      case 'debug':
        if (verbose) emit(`Debug: ${command.message}`, ansi.magenta)
        return
      case 'error':
      case 'warning':
      case 'notice':
        annotate(command.name, command)
        return
      case 'stop-commands':
        stopToken = command.message
        return
      case 'echo':
      case 'set-output':
      case 'save-state':
      case 'add-path':
      case 'set-env':
        return // not shown in a runner's log
      default:
        emit(text) // a runner prints what it does not recognise as it is
    }
  }

  return {
    line,
    /** Ends an open group; returns what the log saw. */
    end() {
      closeGroup()
      return { groups, annotations }
    },
    /** Hides the registered secrets in a text. */
    mask,
  }
}

const entities = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' }
function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (all, name) => {
    if (name[0] === '#')
      return String.fromCodePoint(
        name[1] === 'x' || name[1] === 'X' ? parseInt(name.slice(2), 16) : Number(name.slice(1)),
      )
    return entities[name.toLowerCase()] ?? all
  })
}

/** Inline HTML and Markdown of a summary → plain text (links keep their target). */
function inlineText(html) {
  return decodeEntities(
    html
      .replace(/<br\s*\/?>/gi, '\n')
      .replace(/<a\b[^>]*href="([^"]*)"[^>]*>([\s\S]*?)<\/a>/gi, (_, href, text) => `${text} (${href})`)
      .replace(/<code>([\s\S]*?)<\/code>/gi, '`$1`')
      .replace(/<[^>]+>/g, '')
      .replace(/\*\*([^*]+)\*\*/g, '$1'),
  )
}

function tableText(html) {
  const rows = [...html.matchAll(/<tr\b[^>]*>([\s\S]*?)<\/tr>/gi)].map((r) =>
    [...r[1].matchAll(/<t([hd])\b[^>]*>([\s\S]*?)<\/t[hd]>/gi)].map((c) => ({
      header: c[1] === 'h',
      text: inlineText(c[2]).replace(/\s+/g, ' ').trim(),
    })),
  )
  if (!rows.length) return []
  const columns = Math.max(...rows.map((r) => r.length))
  const widths = Array.from({ length: columns }, (_, i) => Math.max(...rows.map((r) => r[i]?.text.length ?? 0)))
  const lines = []
  for (const [n, row] of rows.entries()) {
    lines.push(
      row
        .map((c, i) => c.text.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    if (n === 0 && row.every((c) => c.header)) lines.push(widths.map((w) => '-'.repeat(w)).join('  '))
  }
  return lines
}

/** A job summary (what the action appended to GITHUB_STEP_SUMMARY) as plain text for a terminal. */
export function summaryToText(markdown) {
  const out = []
  // Tables, headings and list items become blocks of their own; the rest is text between them.
  const parts = markdown.split(
    /(<table\b[\s\S]*?<\/table>|<h[1-6]\b[^>]*>[\s\S]*?<\/h[1-6]>|<li\b[^>]*>[\s\S]*?<\/li>)/i,
  )
  for (const part of parts) {
    if (!part) continue
    const heading = /^<h([1-6])\b[^>]*>([\s\S]*?)<\/h[1-6]>$/i.exec(part)
    if (heading) {
      const title = inlineText(heading[2]).trim()
      out.push('', title, (heading[1] === '1' || heading[1] === '2' ? '=' : '-').repeat(title.length))
    } else if (/^<table\b/i.test(part)) {
      out.push('', ...tableText(part), '')
    } else if (/^<li\b/i.test(part)) {
      out.push(`- ${inlineText(part).trim()}`)
    } else {
      for (const l of part.split('\n')) {
        const md = /^(#{1,6})\s+(.*)$/.exec(l)
        if (md) {
          const title = inlineText(md[2]).trim()
          out.push('', title, (md[1].length <= 2 ? '=' : '-').repeat(title.length))
        } else out.push(inlineText(l).trimEnd())
      }
    }
  }
  // No runs of blank lines, none at either end.
  return out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()
}

function escapeHtml(text) {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function inlineHtml(text) {
  return escapeHtml(text)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
}

/** Job summaries as one HTML page a person can open: [{ title, markdown }]. */
export function summariesToHtml(summaries, pageTitle = 'Job summaries') {
  const body = summaries.map(({ title, markdown }) => {
    // The summary mixes HTML (headings, tables) with Markdown text lines; runs of text lines become paragraphs.
    const blocks = []
    let paragraph = []
    const flush = () => {
      if (paragraph.length) blocks.push(`<p>${paragraph.map(inlineHtml).join('<br>\n')}</p>`)
      paragraph = []
    }
    for (const l of markdown.split('\n')) {
      const md = /^(#{1,6})\s+(.*)$/.exec(l)
      if (!l.trim()) flush()
      else if (l.trimStart().startsWith('<')) {
        flush()
        blocks.push(l)
      } else if (md) {
        flush()
        blocks.push(`<h${md[1].length}>${inlineHtml(md[2])}</h${md[1].length}>`)
      } else paragraph.push(l)
    }
    flush()
    return `<section>\n<h1>${escapeHtml(title)}</h1>\n${blocks.join('\n')}\n</section>`
  })
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(pageTitle)}</title>
<style>
body { font: 14px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1000px; margin: 2em auto; color: #1f2328; }
section { border: 1px solid #d1d9e0; border-radius: 6px; padding: 0 1.5em 1em; margin-bottom: 2em; }
h1 { font-size: 1.1em; color: #59636e; border-bottom: 1px solid #d1d9e0; padding: .6em 0; }
table { border-collapse: collapse; } th, td { border: 1px solid #d1d9e0; padding: 4px 12px; text-align: left; }
code { background: #eff1f3; padding: .1em .3em; border-radius: 4px; }
</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`
}

/** Milliseconds as a person reads them: 850 ms, 2.4 s, 1 min 5 s. */
export function formatDuration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)} min ${s % 60} s`
}

/** Rows of text as aligned columns. */
export function columns(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)))
  return rows.map((r) =>
    r
      .map((c, i) => String(c ?? '').padEnd(widths[i]))
      .join('   ')
      .trimEnd(),
  )
}
