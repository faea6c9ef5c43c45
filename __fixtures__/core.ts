import type * as core from '@actions/core'
import { vi } from 'vitest'

/** The one typed @actions/core mock every unit test shares: `vi.mock('@actions/core', () => import('../__fixtures__/core.js'))`. */
export const debug = vi.fn<typeof core.debug>()
export const info = vi.fn<typeof core.info>()
export const warning = vi.fn<typeof core.warning>()
export const error = vi.fn<typeof core.error>()
export const notice = vi.fn<typeof core.notice>()
export const getInput = vi.fn<typeof core.getInput>()
export const setOutput = vi.fn<typeof core.setOutput>()
export const setFailed = vi.fn<typeof core.setFailed>()
export const setSecret = vi.fn<typeof core.setSecret>()
export const group = vi.fn(async <T>(_name: string, fn: () => Promise<T>) => fn())
