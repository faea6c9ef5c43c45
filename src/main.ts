import * as core from '@actions/core'
import * as fs from 'node:fs/promises'
import * as path from 'node:path'
import { preferredFormat } from './archive.js'
import { builtTargets, runScipio, scipioArgs } from './build.js'
import { errorMessage, ProjectError } from './errors.js'
import { scanOutput } from './frameworks.js'
import { actionInputReader, maskSecrets, readConfig, type Config, type InputReader } from './inputs.js'
import { planKeys } from './keys.js'
import { actionLog, type Log } from './log.js'
import { cacheHit, setOutputs, writeSummary, type RunReport } from './report.js'
import { findResolvedFile, readResolvedFile } from './resolved.js'
import { restore } from './restore.js'
import { save } from './save.js'
import { redact, registerSecret } from './secrets.js'
import { createStorage } from './storage/index.js'
import { detectToolchain } from './toolchain.js'

async function readManifest(config: Config): Promise<Buffer> {
  const file = path.join(config.packageDirectory, 'Package.swift')
  try {
    return await fs.readFile(file)
  } catch {
    throw new ProjectError(`${file} does not exist: 'package-directory' must name the Scipio dependencies package (the folder with Package.swift).`, file)
  }
}

/** The whole flow: inputs → keys → restore → build → save → report. */
export async function run(read: InputReader = actionInputReader, log: Log = actionLog): Promise<void> {
  maskSecrets(read)
  for (const name of ['access-key-id', 'secret-access-key', 'session-token']) registerSecret(read(name))
  const report: RunReport = { built: [], buildSkipped: false }
  try {
    const config = readConfig(read)
    const resolvedPath = config.resolvedFile ?? (await findResolvedFile(config.packageDirectory))
    const resolved = await readResolvedFile(resolvedPath)
    const manifest = await readManifest(config)
    const toolchain = await detectToolchain(config.scipioPath)
    const plan = planKeys(config.prefix, resolved.pins, manifest, config.build, toolchain, config.keySalt)
    const storage = createStorage(config.storage)
    log.info(
      `${resolved.pins.length} pinned packages in ${path.relative(process.cwd(), resolvedPath) || resolvedPath}; ` +
        `Xcode ${toolchain.xcodeVersion} (${toolchain.xcodeBuildVersion}), ${toolchain.clangVersion}, Scipio at ${toolchain.scipioPath}; cache at ${storage.description}`,
    )

    if (config.consume) {
      report.restore = await log.group('Restore frameworks from the cache', () =>
        restore({ storage, plan, prefix: config.prefix, outputDirectory: config.outputDirectory, concurrency: config.concurrency, log }),
      )
      const restored = report.restore.targets.filter((t) => t.result === 'restored').length
      const kept = report.restore.targets.filter((t) => t.result === 'kept').length
      log.info(`Restored ${restored} frameworks, kept ${kept} already in place; ${report.restore.packagesMissing.length} packages not in the cache.`)
    }

    if (report.restore?.complete) {
      report.buildSkipped = true
      log.info('Every framework of this exact build was restored and a producer marked it complete: skipping the Scipio build.')
    } else {
      const before = await scanOutput(config.outputDirectory)
      report.buildExitCode = await log.group('Build with Scipio', () => runScipio(toolchain.scipioPath, scipioArgs(config)))
      report.built = builtTargets(before, await scanOutput(config.outputDirectory))
      log.info(`Scipio exited with ${report.buildExitCode}; built ${report.built.length} frameworks.`)
    }

    if (config.produce) {
      const saved = await log.group('Upload frameworks to the cache', () =>
        save({
          storage,
          plan,
          prefix: config.prefix,
          outputDirectory: config.outputDirectory,
          publicRead: config.shouldPublish,
          concurrency: config.concurrency,
          format: preferredFormat(),
          buildSucceeded: report.buildSkipped || report.buildExitCode === 0,
          ...(report.restore ? { restored: report.restore } : {}),
          log,
        }).catch((error: unknown) => {
          log.warning(`Uploading to the cache failed: ${errorMessage(error)}`)
          return undefined
        }),
      )
      if (saved) report.save = saved
    }

    setOutputs(report)
    await writeSummary(report).catch((error: unknown) => log.warning(`Could not write the job summary: ${errorMessage(error)}`))
    if (!report.buildSkipped && report.buildExitCode !== 0) {
      core.setFailed(`Scipio failed with exit code ${report.buildExitCode}.${config.produce ? ' The frameworks it did build were uploaded.' : ''}`)
    } else {
      log.info(`Done. Cache hit: ${cacheHit(report)}.`)
    }
  } catch (error) {
    setOutputs(report)
    core.setFailed(redact(errorMessage(error)))
  }
}
