/** Writes raw ustar entries, so the tests can build archives no honest tar tool would produce. */
export interface RawEntry {
  path: string
  /** `pax`: a pax extended header (records in `content`) for the entry after it. */
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'pax'
  linkpath?: string
  content?: Buffer
  mode?: number
}

const typeFlags: Record<RawEntry['type'], string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
  pax: 'x',
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0'
}

export function tarEntry(entry: RawEntry): Buffer {
  const content = entry.content ?? Buffer.alloc(0)
  const header = Buffer.alloc(512)
  header.write(entry.path, 0, 100, 'utf8')
  header.write(octal(entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644), 8), 100)
  header.write(octal(0, 8), 108)
  header.write(octal(0, 8), 116)
  const body = entry.type === 'file' || entry.type === 'pax'
  header.write(octal(body ? content.length : 0, 12), 124)
  header.write(octal(1_700_000_000, 12), 136)
  header.write('        ', 148)
  header.write(typeFlags[entry.type], 156)
  if (entry.linkpath) header.write(entry.linkpath, 157, 100, 'utf8')
  header.write('ustar\0', 257)
  header.write('00', 263)
  let sum = 0
  for (const byte of header) sum += byte
  header.write(octal(sum, 7) + ' ', 148)
  if (!body) return header
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512)
  return Buffer.concat([header, content, padding])
}

export function tarArchive(entries: RawEntry[]): Buffer {
  return Buffer.concat([...entries.map(tarEntry), Buffer.alloc(1024)])
}

/** A pax record (`<length> <key>=<value>\n`), for a `pax` entry's content. */
export function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`
  let length = Buffer.byteLength(body) + 1
  while (String(length).length + Buffer.byteLength(body) !== length)
    length = String(length).length + Buffer.byteLength(body)
  return Buffer.from(`${length}${body}`)
}
