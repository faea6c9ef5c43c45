import { describeKeyInputs, recordPackageKey } from '../bucket/pin-record.js'
import { errorMessage } from '../errors.js'
import type { PackagePlan } from '../keys/keys.js'
import type { Log } from '../log.js'
import type { RunSetup } from '../setup/setup.js'

/**
 * Adds each package key a producer is about to index to its pin's record. save() calls it before writing the
 * package's index, so an index that is stored implies a recorded key: an unchanged run, whose indexes already
 * list everything, reads no record at all. A failure costs consumers their explanation only, so it is one
 * warning at the end, not a cache error for `strict`.
 */
export class PinRecords {
  private readonly failures: string[] = []
  private written = 0

  constructor(
    private readonly setup: Pick<RunSetup, 'config' | 'storage' | 'toolchain'>,
    private readonly log: Log,
    private readonly signal?: AbortSignal,
    /** Where the records live: the cache's prefix, or the scope's when saving into a scope. */
    private readonly prefix: string = setup.config.prefix,
  ) {}

  /** Never throws. */
  async record(pkg: PackagePlan): Promise<void> {
    const { config, storage, toolchain } = this.setup
    try {
      const wrote = await recordPackageKey(
        {
          storage,
          prefix: this.prefix,
          publicRead: config.shouldPublish,
          log: this.log,
          ...(this.signal ? { signal: this.signal } : {}),
        },
        pkg.pin,
        pkg.packageKey,
        describeKeyInputs(pkg.pin, config.build, toolchain, config.keySalt),
      )
      if (wrote) this.written += 1
    } catch (error) {
      this.failures.push(`${pkg.pin.identity}: ${errorMessage(error)}`)
    }
  }

  /** Logs what the run recorded, and one warning for the records it could not update. */
  finish(): void {
    if (this.failures.length > 0) {
      this.log.warning(
        `Could not update ${this.failures.length} pin records (consumers lose the explanation of their misses, nothing else): ${this.failures.slice(0, 3).join('; ')}`,
      )
    }
    if (this.written > 0)
      this.log.info(
        `Recorded ${this.written} package keys in their pin records (what consumers compare against to explain a miss).`,
      )
  }
}
