import type { StorageSettings } from '../inputs/inputs.js'
import { PublicUrlStorage } from './public-url.js'
import { S3Storage } from './s3.js'
import type { Storage } from './storage.js'

export type { ListedObject, Storage, StoredObject, PutOptions } from './storage.js'
export { countBytes, getJson, getJsonVersion, putFile } from './storage.js'

export function createStorage(settings: StorageSettings, idleTimeoutMs?: number): Storage {
  return settings.kind === 's3'
    ? new S3Storage(settings, idleTimeoutMs)
    : new PublicUrlStorage(settings.baseUrl, idleTimeoutMs)
}
