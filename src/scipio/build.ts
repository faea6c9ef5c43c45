import * as exec from '@actions/exec'
import type { LocalFramework } from '../keys/frameworks.js'
import type { Config } from '../inputs/inputs.js'

/**
 * `scipio prepare` with the framework cache policy that makes Scipio check every restored framework
 * against its own key and build only the rest. Never `--overwrite`: it would discard what was restored.
 */
export function scipioArgs(config: Pick<Config, 'packageDirectory' | 'outputDirectory' | 'build'>): string[] {
  const { build } = config
  const args = [
    'prepare',
    config.packageDirectory,
    '--output',
    config.outputDirectory,
    '--framework-cache-policy',
    'project',
    '--configuration',
    build.configuration,
    '--framework-type',
    build.frameworkType,
  ]
  if (build.supportSimulators) args.push('--support-simulators')
  if (build.embedDebugSymbols) args.push('--embed-debug-symbols')
  if (build.libraryEvolution) args.push('--enable-library-evolution')
  return [...args, ...build.extraArgs]
}

/** Runs Scipio with its output streamed to the log; returns its exit code. */
export async function runScipio(scipioPath: string, args: string[]): Promise<number> {
  return exec.exec(scipioPath, args, { ignoreReturnCode: true })
}

/** Targets whose framework appeared or changed during the build: what Scipio built rather than kept. */
export function builtTargets(before: Map<string, LocalFramework>, after: Map<string, LocalFramework>): string[] {
  const built: string[] = []
  for (const [name, now] of after) {
    const was = before.get(name)
    if (!was || was.scipioKey !== now.scipioKey || was.identity !== now.identity) built.push(name)
  }
  return built.sort()
}
