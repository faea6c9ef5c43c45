import { frameworkName } from '../keys/frameworks.js'
import type { PackageIndex } from './cache-index.js'

/**
 * One package's index as a scoped run sees it (bucket/layout.ts): the first layout's entries (its scope), then
 * those of each later layout (the shared cache) for the frameworks no earlier one lists. The first hit per framework
 * wins; undefined when no layout has an index.
 */
export function layerIndexes(layers: readonly (PackageIndex | undefined)[]): PackageIndex | undefined {
  const present = layers.filter((index): index is PackageIndex => index !== undefined)
  const [first] = present
  if (!first || present.length === 1) return first
  const taken = new Set<string>()
  const targets = present.flatMap((index) => {
    const fresh = index.targets.filter((t) => !taken.has(frameworkName(t.targetName)))
    for (const t of index.targets) taken.add(frameworkName(t.targetName))
    return fresh
  })
  return { ...first, targets }
}
