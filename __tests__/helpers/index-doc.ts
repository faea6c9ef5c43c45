/**
 * The entries a stored index (or a manifest's package) lists for each target: `targets`, and `laterFormats`,
 * where entries in formats earlier releases cannot read (code.tar.zst, what this release's producers store) live.
 */
export function listedEntries<T>(doc: { targets: T[]; laterFormats?: T[] | undefined }): T[] {
  return [...doc.targets, ...(doc.laterFormats ?? [])]
}
