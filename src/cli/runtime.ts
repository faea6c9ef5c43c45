/** The oldest Node.js release the command line supports (package.json `engines` says the same). */
export const minimumNodeMajor = 22

/** Why this Node.js cannot run the command line, or undefined when it can. */
export function unsupportedNode(version: string = process.version): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1])
  if (major >= minimumNodeMajor) return undefined
  return `scipio-s3-cache needs Node.js ${minimumNodeMajor} or later; this is ${version}.`
}
