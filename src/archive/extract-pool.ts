import { createHash, type Hash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import * as path from 'node:path'
import { type Readable, type Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { Worker, type MessagePort } from 'node:worker_threads'
import { extractArchive, Measure, openExtraction } from './archive.js'
import { CorruptArchiveError, UnsafeArchiveError, type ExtractLimits } from './guard.js'
import { moved } from './garbage.js'
import type { ArchiveFormat } from '../keys/keys.js'
import { PlainGetError, sendPlainGet, StallError, type GetFailure, type PlainGet } from '../storage/plain-get.js'

/**
 * Where an archive is downloaded, hashed, decompressed and unpacked: in one of a few worker threads, so a
 * restore uses every core instead of queueing behind one event loop (docs/benchmarks.md).
 *
 * - `fetch`: the thread sends the store's signed GET itself (storage/plain-get.ts) and streams the answer
 *   through SHA-256, zstd and tar. The main thread only signs. Socket reads allocate a buffer each; on the
 *   main thread, whose heap holds the SDK, those 850 MB of a large restore ran 60-70 full collections
 *   (issue 19). A worker's heap is small, so the same garbage costs little there.
 * - `extract`: the main thread receives the bytes (a store without direct GETs) and hands them to a thread
 *   in batches of shared memory.
 *
 * Without the bundled worker (the sources run by the unit tests) the same work runs on the calling thread,
 * unbatched: correct, not tuned.
 */

export interface ExtractSpec {
  /** An empty folder the caller owns; it must not be touched until extract() settles. */
  destination: string
  format: ArchiveFormat
  roots: { folder: string; file: string }
  limits: ExtractLimits
}

/** What the compressed bytes were, for checking them against the index before anything is placed. */
export interface Extracted {
  sha256: string
  bytes: number
}

export interface FetchOptions {
  /** No bytes for this long fails the download with StallError. */
  stallMs: number
  /** The index's size: an answer announcing another fails before anything is unpacked. */
  expectedBytes: number
  signal?: AbortSignal
}

export interface Extractor {
  /** Streams `source` through `stages` (on this thread) into the archive's extraction. Settles only once the extraction has stopped writing. */
  extract(source: Readable, stages: Transform[], spec: ExtractSpec): Promise<Extracted>
  /**
   * Sends `get` and unpacks its answer, both on the extraction's thread. Settles only once the extraction has
   * stopped writing; a refused GET rejects with PlainGetError, for the store to explain.
   */
  fetch(get: PlainGet, spec: ExtractSpec, options: FetchOptions): Promise<Extracted>
}

/** A download and its extraction, on the thread that calls it. */
async function fetchAndExtract(get: PlainGet, spec: ExtractSpec, options: FetchOptions): Promise<Extracted> {
  const { stallMs, expectedBytes, signal } = options
  const answer = await sendPlainGet(get, { stallMs, ...(signal ? { signal } : {}) })
  const announced = answer.headers['content-length']
  if (announced !== undefined && Number(announced) !== expectedBytes) {
    answer.destroy()
    throw new CorruptArchiveError(`size ${announced} differs from the index's ${expectedBytes}`)
  }
  const hash = createHash('sha256')
  // Each compressed byte leaves its socket buffer and about two bytes of decompressed chunks behind: counting
  // three collects them as they come (with one: 65 MB more peak RSS on the default set, docs/benchmarks.md).
  const measure = new Measure(hash, 3)
  await extractArchive(answer, spec.destination, spec.format, spec.roots, spec.limits, [measure])
  return { sha256: hash.digest('hex'), bytes: measure.bytes }
}

export const extractOnThisThread: Extractor = {
  async extract(source, stages, spec) {
    const hash = createHash('sha256')
    const measure = new Measure(hash)
    await extractArchive(source, spec.destination, spec.format, spec.roots, spec.limits, [...stages, measure])
    return { sha256: hash.digest('hex'), bytes: measure.bytes }
  },
  fetch: fetchAndExtract,
}

// ------------------------------------------------------------------ messages between the threads

type ToWorker =
  /** The shared batch memory, once per thread before any job. */
  | { op: 'memory'; memory: SharedArrayBuffer }
  | { op: 'start'; id: number; spec: ExtractSpec }
  /** Download and unpack, all on the thread. */
  | { op: 'fetch'; id: number; get: PlainGet; spec: ExtractSpec; stallMs: number; expectedBytes: number }
  /** `length` bytes of batch `slot`; the worker hands the slot back once the decompressor has consumed them. */
  | { op: 'data'; id: number; slot: number; length: number }
  | { op: 'end'; id: number }
  | { op: 'abort'; id: number }

type FromWorker =
  | { op: 'took'; id: number; slot: number }
  | { op: 'done'; id: number; result: Extracted }
  | { op: 'failed'; id: number; error: ErrorMessage }

interface ErrorMessage {
  name: string
  message: string
  code?: string
  failure?: GetFailure
}

function toMessage(error: unknown): ErrorMessage {
  const e = error as { name?: unknown; message?: unknown; code?: unknown }
  return {
    name: String(e?.name ?? 'Error'),
    message: String(e?.message ?? error),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    ...(error instanceof PlainGetError ? { failure: error.failure } : {}),
  }
}

/** The errors the restore tells apart, as the classes it checks for. */
function fromMessage(error: ErrorMessage): Error {
  if (error.name === 'UnsafeArchiveError') return new UnsafeArchiveError(error.message)
  if (error.name === 'CorruptArchiveError') return new CorruptArchiveError(error.message)
  if (error.name === 'StallError') return new StallError(error.message)
  if (error.failure) return new PlainGetError(error.failure)
  return Object.assign(new Error(error.message), error.code ? { code: error.code } : {})
}

/** The worker's side: one extraction per `start`, fed by `data` messages whose buffers go back once consumed. */
export function serveExtractions(port: MessagePort): void {
  const jobs = new Map<number, { input: Writable; hash: Hash; bytes: number }>()
  const downloads = new Map<number, AbortController>()
  const post = (message: FromWorker) => port.postMessage(message)
  let memory: SharedArrayBuffer | undefined
  port.on('message', (message: ToWorker) => {
    if (message.op === 'memory') {
      memory = message.memory
      return
    }
    const { id } = message
    if (message.op === 'fetch') {
      const abort = new AbortController()
      downloads.set(id, abort)
      const { get, spec, stallMs, expectedBytes } = message
      fetchAndExtract(get, spec, { stallMs, expectedBytes, signal: abort.signal })
        .then(
          (result) => post({ op: 'done', id, result }),
          (error: unknown) => post({ op: 'failed', id, error: toMessage(error) }),
        )
        .finally(() => downloads.delete(id))
      return
    }
    if (message.op === 'abort' && downloads.has(id)) {
      downloads.get(id)!.abort()
      return
    }
    if (message.op === 'start') {
      const { spec } = message
      const { input, done } = openExtraction(spec.destination, spec.format, spec.roots, spec.limits)
      const job = { input, hash: createHash('sha256'), bytes: 0 }
      jobs.set(id, job)
      done
        .then(
          () => post({ op: 'done', id, result: { sha256: job.hash.digest('hex'), bytes: job.bytes } }),
          (error: unknown) => post({ op: 'failed', id, error: toMessage(error) }),
        )
        .finally(() => jobs.delete(id))
      return
    }
    const job = jobs.get(id)
    if (!job) return
    if (message.op === 'data') {
      const { slot, length } = message
      const chunk = Buffer.from(memory!, slot * batchBytes, length)
      job.hash.update(chunk)
      job.bytes += length
      moved(length * 2) // and about as much again decompressed
      job.input.write(chunk, () => post({ op: 'took', id, slot }))
    } else if (message.op === 'end') job.input.end()
    else job.input.destroy(new Error('the download stopped'))
  })
}

// ------------------------------------------------------------------ the main thread's side

/**
 * The main thread copies the socket's chunks into 256 KiB batches of one block of memory shared with the
 * threads: a batch is one small message (its slot and length) and one decompressor call, and nothing is
 * allocated per batch. (Until issue 19 each batch was an ArrayBuffer transferred to the worker and back: every
 * arrival counted as new external memory, and the main thread ran a full collection every 100-200 ms of a
 * restore.) Two per archive keep the worker busy while the next one fills. (1 MiB batches cost 25-30 MB more
 * peak RSS for no measurable speed; 128 KiB cost 1.5-2 CPU-s more in messages: docs/benchmarks.md.)
 */
const batchBytes = 256 * 1024
const buffersPerJob = 2

/** The slots of the shared block; an archive that finds none free waits for one (back-pressure on its socket). */
class SlotPool {
  readonly memory: SharedArrayBuffer
  private readonly free: number[]
  private readonly waiting: (() => void)[] = []

  constructor(slots: number) {
    this.memory = new SharedArrayBuffer(slots * batchBytes)
    this.free = Array.from({ length: slots }, (_, i) => slots - 1 - i)
  }

  take(): number | undefined {
    return this.free.pop()
  }

  /** Calls `then` once a slot may be free (it must `take()` again). */
  wait(then: () => void): void {
    this.waiting.push(then)
  }

  give(slot: number): void {
    this.free.push(slot)
    // A waiter that no longer needs a slot (its job settled, or it waits for its own) leaves it to the next.
    while (this.free.length > 0 && this.waiting.length > 0) this.waiting.shift()!()
  }

  view(slot: number): Buffer {
    return Buffer.from(this.memory, slot * batchBytes, batchBytes)
  }
}

/** An archive at a thread: fed from this thread through `sender` (`start`), or downloaded there (`fetch`). */
class Job {
  readonly sender: Writable
  readonly result: Promise<Extracted>
  private current: { slot: number; bytes: Buffer } | undefined
  private filled = 0
  /** Slots at the worker. */
  private readonly out = new Set<number>()
  private waiting: (() => void) | undefined
  private settled = false
  private settle!: { resolve: (result: Extracted) => void; reject: (error: Error) => void }

  constructor(
    readonly id: number,
    private readonly post: (message: ToWorker) => void,
    private readonly pool: SlotPool,
    private readonly fed: boolean,
  ) {
    this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }))
    this.result.catch(() => undefined) // observed by extract() or fetch(); never an unhandled rejection meanwhile
    this.sender = new Writable({
      write: (chunk: Buffer, _encoding, callback) => this.accept(chunk, 0, callback),
      final: (callback) => {
        if (this.filled > 0) this.send()
        this.post({ op: 'end', id })
        callback()
      },
    })
  }

  private accept(chunk: Buffer, offset: number, callback: () => void): void {
    while (offset < chunk.length) {
      if (this.settled) return callback()
      if (!this.current) {
        if (this.out.size >= buffersPerJob) {
          this.waiting = () => this.accept(chunk, offset, callback)
          return
        }
        const slot = this.pool.take()
        if (slot === undefined) {
          this.pool.wait(() => this.accept(chunk, offset, callback))
          return
        }
        this.current = { slot, bytes: this.pool.view(slot) }
        this.filled = 0
      }
      const copied = chunk.copy(this.current.bytes, this.filled, offset)
      this.filled += copied
      offset += copied
      if (this.filled === batchBytes) this.send()
    }
    callback()
  }

  private send(): void {
    const { slot } = this.current!
    this.post({ op: 'data', id: this.id, slot, length: this.filled })
    this.out.add(slot)
    this.current = undefined
    this.filled = 0
  }

  took(slot: number): void {
    if (!this.out.delete(slot)) return
    this.pool.give(slot)
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.()
  }

  done(result: Extracted): void {
    this.release()
    this.settle.resolve(result)
  }

  failed(error: Error): void {
    this.release()
    this.settle.reject(error)
    // The extraction stopped: stop feeding it (the download is then torn down by the pipeline).
    if (this.fed) this.sender.destroy(error)
  }

  /**
   * Gives back every slot this archive still holds. The thread only reads a slot, and never again for a job it
   * reported settled, so a slot reused meanwhile can at worst feed a failed job's dead decompressor.
   */
  private release(): void {
    if (this.settled) return
    this.settled = true
    if (this.current) this.pool.give(this.current.slot)
    this.current = undefined
    for (const slot of this.out) this.pool.give(slot)
    this.out.clear()
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.()
  }
}

class Thread {
  readonly jobs = new Map<number, Job>()
  private readonly worker: Worker

  constructor(
    file: string,
    private readonly pool: SlotPool,
    onGone: (thread: Thread) => void,
  ) {
    this.worker = new Worker(file)
    this.worker.unref()
    this.post({ op: 'memory', memory: pool.memory })
    this.worker.on('message', (message: FromWorker) => {
      const job = this.jobs.get(message.id)
      if (!job) return
      if (message.op === 'took') return job.took(message.slot)
      this.jobs.delete(message.id)
      if (this.jobs.size === 0) this.worker.unref()
      if (message.op === 'done') job.done(message.result)
      else job.failed(fromMessage(message.error))
    })
    const fail = (error: Error) => {
      onGone(this)
      for (const job of this.jobs.values()) job.failed(new Error(`the extraction thread stopped: ${error.message}`))
      this.jobs.clear()
    }
    this.worker.on('error', fail)
    this.worker.on('exit', (code) => fail(new Error(`exit code ${code}`)))
  }

  post(message: ToWorker): void {
    this.worker.postMessage(message)
  }

  /** Gives the thread an archive: `first` is its `start` (bytes to follow) or its `fetch`. */
  open(first: Extract<ToWorker, { op: 'start' | 'fetch' }>): Job {
    const job = new Job(first.id, (message) => this.post(message), this.pool, first.op === 'start')
    this.jobs.set(first.id, job)
    // A thread with work keeps the process alive; an idle one does not.
    this.worker.ref()
    this.post(first)
    return job
  }

  async terminate(): Promise<void> {
    await this.worker.terminate()
  }
}

export class ThreadPool implements Extractor {
  private readonly threads: Thread[] = []
  private readonly pool: SlotPool
  private nextId = 1

  constructor(
    private readonly file: string,
    private readonly size: number,
    concurrency: number,
  ) {
    this.pool = new SlotPool(buffersPerJob * concurrency)
  }

  async extract(source: Readable, stages: Transform[], spec: ExtractSpec): Promise<Extracted> {
    const thread = this.leastBusy()
    const job = thread.open({ op: 'start', id: this.nextId++, spec })
    let streamError: Error | undefined
    try {
      await pipeline([source, ...stages, job.sender])
    } catch (error) {
      streamError = error as Error // pipeline rejects with the failing stream's error
      thread.post({ op: 'abort', id: job.id })
    }
    // Wait for the extraction to stop writing in every case: the caller removes the folder next.
    try {
      const result = await job.result
      if (streamError !== undefined) throw streamError
      return result
    } catch (error) {
      throw streamError ?? error
    }
  }

  async fetch(get: PlainGet, spec: ExtractSpec, options: FetchOptions): Promise<Extracted> {
    const thread = this.leastBusy()
    const id = this.nextId++
    const { stallMs, expectedBytes, signal } = options
    const job = thread.open({ op: 'fetch', id, get, spec, stallMs, expectedBytes })
    const abort = () => thread.post({ op: 'abort', id })
    signal?.addEventListener('abort', abort, { once: true })
    try {
      return await job.result
    } finally {
      signal?.removeEventListener('abort', abort)
    }
  }

  /** Archives whose extraction has not yet stopped. */
  get active(): number {
    return this.threads.reduce((sum, thread) => sum + thread.jobs.size, 0)
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.splice(0).map((thread) => thread.terminate()))
  }

  private leastBusy(): Thread {
    if (this.threads.length < this.size) {
      const thread = new Thread(this.file, this.pool, (gone) => {
        const at = this.threads.indexOf(gone)
        if (at !== -1) this.threads.splice(at, 1)
      })
      this.threads.push(thread)
      return thread
    }
    return this.threads.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a))
  }
}

/** dist/extract-worker/index.js, beside or above the running bundle (dist/index.js, dist/restore/index.js, ...). */
function workerFile(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url))
  return [path.join(here, 'extract-worker', 'index.js'), path.join(here, '..', 'extract-worker', 'index.js')].find(
    (file) => existsSync(file),
  )
}

let shared: Extractor | undefined

/** One thread per core, but no more than `concurrency` (the large archives in flight at once). */
export function extractionThreads(concurrency: number, cores = availableParallelism()): number {
  return Math.max(1, Math.min(concurrency, cores))
}

export function extractor(concurrency: number): Extractor {
  if (shared) return shared
  const file = workerFile()
  shared = file ? new ThreadPool(file, extractionThreads(concurrency), concurrency) : extractOnThisThread
  return shared
}
