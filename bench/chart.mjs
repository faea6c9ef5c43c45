// A small SVG bar chart: one group per scenario, one bar per contender (median wall time).
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#7f7f7f', '#bcbd22', '#9467bd']

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;')

export function barChart({ title, groups, series }) {
  // groups: [{ label, values: { [seriesName]: seconds | undefined } }]
  const barH = 14
  const gap = 10
  const left = 200
  const width = 900
  const plotW = width - left - 80
  const max = Math.max(1e-9, ...groups.flatMap((g) => Object.values(g.values).filter((v) => v !== undefined)))
  let y = 50
  const parts = []
  for (const group of groups) {
    parts.push(`<text x="10" y="${y + 12}" font-weight="bold">${esc(group.label)}</text>`)
    y += 18
    series.forEach((name, i) => {
      const v = group.values[name]
      if (v === undefined) return
      const w = Math.max(1, (v / max) * plotW)
      parts.push(`<text x="${left - 6}" y="${y + barH - 3}" text-anchor="end">${esc(name)}</text>`)
      parts.push(
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${palette[i % palette.length]}"/>`,
      )
      parts.push(`<text x="${left + w + 4}" y="${y + barH - 3}">${v.toFixed(2)} s</text>`)
      y += barH + 3
    })
    y += gap
  }
  const height = y + 10
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="24" font-size="16" font-weight="bold">${esc(title)}</text>
${parts.join('\n')}
</svg>
`
}
