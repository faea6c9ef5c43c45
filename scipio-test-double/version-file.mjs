// Encodes a VersionFile the way Scipio 0.33 does (Swift JSONEncoder with .prettyPrinted and .sortedKeys):
// 2-space indent, `"key" : value`, keys sorted, '/' escaped as '\/', no trailing newline.

function encodeString(s) {
  return JSON.stringify(s).replace(/\//g, '\\/')
}

function encode(value, indent) {
  const pad = '  '.repeat(indent + 1)
  const end = '  '.repeat(indent)
  if (Array.isArray(value)) {
    if (value.length === 0) return '[\n\n' + end + ']'
    return '[\n' + value.map((v) => pad + encode(v, indent + 1)).join(',\n') + '\n' + end + ']'
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort()
    if (keys.length === 0) return '{\n\n' + end + '}'
    return (
      '{\n' +
      keys.map((k) => pad + encodeString(k) + ' : ' + encode(value[k], indent + 1)).join(',\n') +
      '\n' +
      end +
      '}'
    )
  }
  if (typeof value === 'string') return encodeString(value)
  return JSON.stringify(value)
}

export function encodeVersionFile(doc) {
  return encode(doc, 0)
}

/** The VersionFile document for one target, with Scipio's field names; absent optionals are left out. */
export function versionFileDocument({
  targetName,
  pin,
  buildOptions,
  clangVersion,
  xcodeVersion,
  xcodeBuildVersion,
  scipioVersion,
  dependencyChecksums,
}) {
  const doc = {
    buildOptions: {
      buildConfiguration: buildOptions.configuration,
      enableLibraryEvolution: buildOptions.libraryEvolution,
      frameworkType: buildOptions.frameworkType,
      isDebugSymbolsEmbedded: buildOptions.embedDebugSymbols,
      keepPublicHeadersStructure: false,
      sdks: [...buildOptions.sdks].sort(),
      stripStaticDWARFSymbols: false,
    },
    clangVersion,
    pin: { revision: pin.revision, version: pin.version, branch: pin.branch },
    scipioVersion,
    targetName,
    xcodeVersion: { xcodeBuildVersion, xcodeVersion },
  }
  if (dependencyChecksums.length > 0) {
    doc.dependencyCacheKeyChecksums = [...dependencyChecksums].sort((a, b) =>
      a.targetName < b.targetName ? -1 : a.targetName > b.targetName ? 1 : a.checksum < b.checksum ? -1 : 1,
    )
  }
  return doc
}
