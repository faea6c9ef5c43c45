import type { IndexEntry, PackageIndex } from './cache-index.js'

/**
 * One package's index as a scoped run sees it (bucket/layout.ts): every entry of the first layout (its scope),
 * then every entry of each later layout (the shared cache), an archive listed twice kept once. Entries come in
 * order of preference, so the dependency-aware choice (restore/choose.ts) takes the scope's entry where it fits
 * and still finds the shared cache's other dependency contexts of the same framework; undefined when no layout has
 * an index.
 */
export function layerIndexes(layers: readonly (PackageIndex | undefined)[]): PackageIndex | undefined {
  const present = layers.filter((index): index is PackageIndex => index !== undefined)
  const [first] = present
  if (!first || present.length === 1) return first
  const byKey = new Map<string, IndexEntry>()
  for (const entry of present.flatMap((index) => index.targets)) if (!byKey.has(entry.key)) byKey.set(entry.key, entry)
  return { ...first, targets: [...byKey.values()] }
}
