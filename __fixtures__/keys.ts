import type { BuildOptions } from '../src/inputs/inputs.js'
import type { Toolchain } from '../src/keys/toolchain.js'

/** Scipio's default build options (release, dynamic, device slices only), as the unit tests key them. */
export const releaseBuild: BuildOptions = {
  configuration: 'release',
  frameworkType: 'dynamic',
  supportSimulators: false,
  embedDebugSymbols: false,
  libraryEvolution: false,
  extraArgs: [],
}

/** Xcode 16.2 (16C5032a) with its clang, and a Scipio binary's hash and path. */
export const xcode162Toolchain: Toolchain = {
  xcodeVersion: '16.2',
  xcodeBuildVersion: '16C5032a',
  clangVersion: 'clang-1600.0.26.6',
  scipioSha256: 'a'.repeat(64),
  scipioPath: '/usr/local/bin/scipio',
}
