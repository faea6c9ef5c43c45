import * as core from '@actions/core'
import * as path from 'node:path'
import { errorMessage, InputError, ProjectError } from './errors.js'
import { redact } from './secrets.js'

/** Where a problem is, for a GitHub annotation: the input's name as its title, or the file at fault. */
export interface Where {
  input?: string
  file?: string
}

/** GitHub places file annotations by a path relative to the repository (the workspace). */
export function annotationProperties(
  where: Where,
  workspace: string = process.env.GITHUB_WORKSPACE || process.cwd(),
): core.AnnotationProperties {
  const props: core.AnnotationProperties = {}
  if (where.input) props.title = `Input '${where.input}'`
  if (where.file) {
    const relative = path.relative(workspace, path.resolve(workspace, where.file))
    props.file =
      relative && !relative.startsWith('..') && !path.isAbsolute(relative)
        ? relative.split(path.sep).join('/')
        : where.file
    props.title ??= path.basename(where.file)
  }
  return props
}

export function whereOf(error: unknown): Where {
  if (error instanceof InputError) return { input: error.input }
  if (error instanceof ProjectError && error.file) return { file: error.file }
  return {}
}

/** core.setFailed, with the annotation pointing at the input or file at fault. */
export function failStep(error: unknown): void {
  process.exitCode = core.ExitCode.Failure
  core.error(redact(errorMessage(error)), annotationProperties(whereOf(error)))
}
