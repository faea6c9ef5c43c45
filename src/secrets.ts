/**
 * Secret values known to this process. `core.setSecret` masks them in the runner's log;
 * `redact` also keeps them out of outputs, the job summary and error texts we build ourselves.
 */
const secrets = new Set<string>()

export function registerSecret(value: string): void {
  if (value.length >= 4) secrets.add(value)
}

export function redact(text: string): string {
  let out = text
  for (const secret of secrets) out = out.split(secret).join('***')
  return out
}
