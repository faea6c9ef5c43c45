import { parentPort } from 'node:worker_threads'
import { serveExtractions } from './extract-pool.js'

// Entry of dist/extract-worker/: a thread that hashes, decompresses and unpacks archives the main thread
// downloads (extract-pool.ts says why and how).
if (parentPort) serveExtractions(parentPort)
