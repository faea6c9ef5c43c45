/**
 * Charts as inline SVG for the insights page: columns (stacked or side by side), lines and horizontal bars, with
 * axes, a legend and a tooltip (`<title>`) per mark. No script, no font or image: the page opens offline.
 */

export interface Series {
  name: string
  color: string
  /** One value per category; null where there is none (a line has a gap there). */
  values: (number | null)[]
}

export interface ChartOptions {
  /** The id of the heading that names the chart (`aria-labelledby`). */
  labelledBy: string
  categories: string[]
  series: Series[]
  /** A value as the axis and the tooltips show it. */
  format: (value: number) => string
  /** A category as the axis shows it (default: as it is). */
  label?: (category: string) => string
}

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
}

const width = 760
/** Down to the end of the category labels: the legend comes below. */
const height = 264
const margin = { top: 16, right: 16, bottom: 56, left: 72 }
const plotWidth = width - margin.left - margin.right
const plotHeight = height - margin.top - margin.bottom
const num = (n: number) => String(Math.round(n * 10) / 10)

/** A round maximum for an axis at or above `max` (1, 2 or 5 times a power of ten). */
export function niceMax(max: number): number {
  if (max <= 0) return 1
  const power = 10 ** Math.floor(Math.log10(max))
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power
  return 10 * power
}

function svgOpen(labelledBy: string, h: number): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${h}" width="${width}" height="${h}" role="img" aria-labelledby="${escapeXml(labelledBy)}">`
}

const legendLine = 16

/** The legend below a chart, wrapped to the chart's width: its marks, and how many lines it takes. */
function legend(series: readonly Series[], top: number): { svg: string; lines: number } {
  let x = margin.left
  let line = 0
  const items = series.map((s) => {
    const itemWidth = 24 + s.name.length * 6.5
    if (x + itemWidth > width && x > margin.left) {
      x = margin.left
      line += 1
    }
    const y = top + line * legendLine
    const item =
      `<rect x="${num(x)}" y="${y - 9}" width="10" height="10" fill="${s.color}"/>` +
      `<text x="${num(x + 14)}" y="${y}" class="legend">${escapeXml(s.name)}</text>`
    x += itemWidth
    return item
  })
  return { svg: items.join(''), lines: line + 1 }
}

/** A chart of `plotBottom` height above its legend: the whole SVG. */
function chart(labelledBy: string, plotBottom: number, series: readonly Series[], marks: string): string {
  const key = legend(series, plotBottom + 14)
  return `${svgOpen(labelledBy, plotBottom + 8 + key.lines * legendLine)}${marks}${key.svg}</svg>`
}

function valueAxis(max: number, format: (n: number) => string): string {
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * max)
  return ticks
    .map((t) => {
      const y = margin.top + plotHeight - (t / max) * plotHeight
      return (
        `<line x1="${margin.left}" x2="${margin.left + plotWidth}" y1="${num(y)}" y2="${num(y)}" class="grid"/>` +
        `<text x="${margin.left - 6}" y="${num(y + 4)}" text-anchor="end" class="tick">${escapeXml(format(t))}</text>`
      )
    })
    .join('')
}

function categoryAxis(categories: readonly string[], label: (c: string) => string): string {
  const step = Math.max(1, Math.ceil(categories.length / 12))
  const band = plotWidth / Math.max(1, categories.length)
  return categories
    .map((c, i) => {
      if (i % step !== 0) return ''
      const x = margin.left + band * (i + 0.5)
      const y = margin.top + plotHeight + 14
      return `<text x="${num(x)}" y="${y}" text-anchor="end" transform="rotate(-40 ${num(x)} ${y})" class="tick">${escapeXml(label(c))}</text>`
    })
    .join('')
}

function empty(labelledBy: string): string {
  return `${svgOpen(labelledBy, 80)}<text x="${width / 2}" y="44" text-anchor="middle" class="tick">No runs in this window.</text></svg>`
}

const hasData = (series: readonly Series[]) => series.some((s) => s.values.some((v) => v !== null && v > 0))

/** Vertical columns per category: stacked, or side by side. */
export function columnsChart(options: ChartOptions & { stacked: boolean }): string {
  const { categories, series, format, stacked } = options
  if (!hasData(series)) return empty(options.labelledBy)
  const label = options.label ?? ((c: string) => c)
  const totals = categories.map((_, i) =>
    stacked ? series.reduce((n, s) => n + (s.values[i] ?? 0), 0) : Math.max(...series.map((s) => s.values[i] ?? 0)),
  )
  const max = niceMax(Math.max(...totals))
  const band = plotWidth / Math.max(1, categories.length)
  const gap = Math.min(4, band * 0.2)
  const barWidth = stacked ? band - gap : (band - gap) / series.length
  const marks: string[] = []
  categories.forEach((c, i) => {
    let base = 0
    series.forEach((s, k) => {
      const v = s.values[i] ?? 0
      if (v <= 0) return
      const h = (v / max) * plotHeight
      const x = margin.left + band * i + gap / 2 + (stacked ? 0 : k * barWidth)
      const y = margin.top + plotHeight - (stacked ? base + h : h)
      if (stacked) base += h
      marks.push(
        `<rect x="${num(x)}" y="${num(y)}" width="${num(Math.max(1, barWidth))}" height="${num(h)}" fill="${s.color}">` +
          `<title>${escapeXml(`${c} ${s.name}: ${format(v)}`)}</title></rect>`,
      )
    })
  })
  return chart(
    options.labelledBy,
    height,
    series,
    valueAxis(max, format) + marks.join('') + categoryAxis(categories, label),
  )
}

/** One line per series over the categories; a null value breaks the line. */
export function linesChart(options: ChartOptions): string {
  const { categories, series, format } = options
  if (!hasData(series)) return empty(options.labelledBy)
  const label = options.label ?? ((c: string) => c)
  const max = niceMax(Math.max(...series.flatMap((s) => s.values.map((v) => v ?? 0))))
  const band = plotWidth / Math.max(1, categories.length)
  const point = (i: number, v: number) =>
    [margin.left + band * (i + 0.5), margin.top + plotHeight - (v / max) * plotHeight] as const
  const marks = series.map((s) => {
    let path = ''
    let pen = 'M'
    const dots: string[] = []
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = 'M'
        return
      }
      const [x, y] = point(i, v)
      path += `${pen}${num(x)} ${num(y)} `
      pen = 'L'
      dots.push(
        `<circle cx="${num(x)}" cy="${num(y)}" r="2.5" fill="${s.color}"><title>${escapeXml(`${categories[i]} ${s.name}: ${format(v)}`)}</title></circle>`,
      )
    })
    return `<path d="${path.trim()}" fill="none" stroke="${s.color}" stroke-width="2"/>${dots.join('')}`
  })
  return chart(
    options.labelledBy,
    height,
    series,
    valueAxis(max, format) + marks.join('') + categoryAxis(categories, label),
  )
}

/** Horizontal bars, one row per category (stacked series), the category's name at the left. */
export function barsChart(options: ChartOptions): string {
  const { categories, series, format } = options
  if (!hasData(series)) return empty(options.labelledBy)
  const rowHeight = 20
  const left = 220
  const h = margin.top + categories.length * rowHeight + 8
  const plot = width - left - margin.right
  const max = niceMax(Math.max(...categories.map((_, i) => series.reduce((n, s) => n + (s.values[i] ?? 0), 0))))
  const marks = categories.map((c, i) => {
    const y = margin.top + i * rowHeight
    const name = c.length > 32 ? `${c.slice(0, 31)}…` : c
    let x = left
    const bars = series.map((s) => {
      const v = s.values[i] ?? 0
      if (v <= 0) return ''
      const w = (v / max) * plot
      const bar =
        `<rect x="${num(x)}" y="${y + 3}" width="${num(Math.max(1, w))}" height="${rowHeight - 6}" fill="${s.color}">` +
        `<title>${escapeXml(`${c} ${s.name}: ${format(v)}`)}</title></rect>`
      x += w
      return bar
    })
    return `<text x="${left - 6}" y="${y + 14}" text-anchor="end" class="tick">${escapeXml(name)}</text>${bars.join('')}`
  })
  const scale = `<text x="${width - margin.right}" y="${h}" text-anchor="end" class="tick">${escapeXml(`scale: 0 to ${format(max)}`)}</text>`
  return chart(options.labelledBy, h + 8, series, marks.join('') + scale)
}
