import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
var __webpack_exports__ = {};

;// CONCATENATED MODULE: external "node:worker_threads"
const external_node_worker_threads_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:worker_threads");
;// CONCATENATED MODULE: external "node:crypto"
const external_node_crypto_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:crypto");
;// CONCATENATED MODULE: external "node:fs"
const external_node_fs_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs");
;// CONCATENATED MODULE: external "node:os"
const external_node_os_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:os");
;// CONCATENATED MODULE: external "node:path"
const external_node_path_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:path");
;// CONCATENATED MODULE: external "node:stream"
const external_node_stream_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:stream");
;// CONCATENATED MODULE: external "node:stream/promises"
const promises_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:stream/promises");
;// CONCATENATED MODULE: external "node:url"
const external_node_url_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:url");
;// CONCATENATED MODULE: external "node:zlib"
const external_node_zlib_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:zlib");
;// CONCATENATED MODULE: ./src/archive/guard.ts

/**
 * What an archive may contain, judged entry by entry before anything touches the disk, and the errors that
 * say an archive was refused (unsafe) or could not be read (corrupt).
 */
class guard_UnsafeArchiveError extends Error {
    constructor(message) {
        super(message);
        this.name = 'UnsafeArchiveError';
    }
}
/** The bytes do not decompress or do not parse as tar: the archive is damaged. */
class guard_CorruptArchiveError extends Error {
    constructor(message) {
        super(message);
        this.name = 'CorruptArchiveError';
    }
}
const defaultExtractLimits = { maxBytes: 16 * 1024 ** 3, maxEntries: 500_000 };
const allowedTypes = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink']);
/** Checks each entry against the archive's expected shape before tar may write it. */
class EntryGuard {
    roots;
    limits;
    bytes = 0;
    entries = 0;
    symlinks = new Set();
    constructor(roots, limits) {
        this.roots = roots;
        this.limits = limits;
    }
    /** Returns why the entry is refused, or undefined when it may be written. */
    check(entryPath, type, size, linkpath) {
        const p = entryPath.replace(/\/+$/, '');
        if (!allowedTypes.has(type))
            return `'${p}' is a ${type} entry; only files, folders and symlinks are allowed`;
        if (p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.includes('\\'))
            return `'${p}' is an absolute path`;
        const parts = p.split('/');
        if (parts.some((part) => part === '..' || part === '.' || part === ''))
            return `'${p}' has a '..', '.' or empty component`;
        const [root] = parts;
        if (root === this.roots.file) {
            if (parts.length !== 1 || (type !== 'File' && type !== 'OldFile'))
                return `'${p}' must be a plain file`;
        }
        else if (root !== this.roots.folder) {
            return `'${p}' lies outside ${this.roots.folder}`;
        }
        for (let i = 1; i < parts.length; i++) {
            if (this.symlinks.has(parts.slice(0, i).join('/')))
                return `'${p}' would be written through the symlink '${parts.slice(0, i).join('/')}'`;
        }
        if (type === 'SymbolicLink') {
            if (!linkpath || linkpath.startsWith('/'))
                return `symlink '${p}' points to an absolute path`;
            const resolved = external_node_path_namespaceObject.posix.normalize(external_node_path_namespaceObject.posix.join(external_node_path_namespaceObject.posix.dirname(p), linkpath));
            if (resolved !== root && !resolved.startsWith(`${root}/`))
                return `symlink '${p}' -> '${linkpath}' points outside ${root}`;
            this.symlinks.add(p);
        }
        this.entries += 1;
        this.bytes += size;
        if (this.entries > this.limits.maxEntries)
            return `more than ${this.limits.maxEntries} entries`;
        if (this.bytes > this.limits.maxBytes)
            return `more than ${this.limits.maxBytes} bytes once unpacked`;
        return undefined;
    }
}

;// CONCATENATED MODULE: external "node:fs/promises"
const external_node_fs_promises_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs/promises");
;// CONCATENATED MODULE: ./src/archive/machine-code/macho.ts
const fatMagic = 0xcafebabe;
const fatMagic64 = 0xcafebabf;
const machMagic64 = 0xfeedfacf;
const cpuArm64 = 0x0100000c;
const cpuX86_64 = 0x01000007;
const lcSegment64 = 0x19;
const lcCodeSignature = 0x1d;
const superBlobMagic = 0xfade0cc0;
const codeDirectoryMagic = 0xfade0c02;
/** The primary CodeDirectory's slot, and the alternates (another hash type each). */
const codeDirectorySlots = new Set([0, 0x1000, 0x1001, 0x1002, 0x1003, 0x1004]);
/** Load commands or a signature larger than this are not a framework's: the file is stored as it is. */
const maxHeaderBytes = 16 * 1024 * 1024;
/** Fat files hold a handful of slices; FAT_MAGIC is also a Java class file's magic, whose next field is larger. */
const maxSlices = 32;
const hashTypes = {
    1: { name: 'sha1', size: 20 },
    2: { name: 'sha256', size: 32 },
    3: { name: 'sha256', size: 20 }, // SHA-256 truncated to 20 bytes
    4: { name: 'sha384', size: 48 },
};
class Reader {
    readAt;
    size;
    /** Every byte range the parse looked at. */
    regions = [];
    constructor(readAt, size) {
        this.readAt = readAt;
        this.size = size;
    }
    /** `length` bytes at `position`, or undefined when the file is shorter. */
    bytes(position, length) {
        if (position < 0 || length < 0 || position + length > this.size)
            return undefined;
        const data = this.readAt(position, length);
        if (data.length !== length)
            return undefined;
        this.regions.push({ start: position, end: position + length });
        return data;
    }
}
/** The transforms the headers of a file of `size` bytes allow; [] when it is not Mach-O, or not as expected. */
function macho_machineCodeTransforms(readAt, size) {
    const reader = new Reader(readAt, size);
    const head = reader.bytes(0, 8);
    if (!head)
        return [];
    const magic = head.readUInt32BE(0);
    const slices = magic === fatMagic || magic === fatMagic64 ? fatSlices(reader, magic === fatMagic64) : [[0, size]];
    const found = (slices ?? []).flatMap(([base, length]) => sliceTransforms(reader, base, length));
    const kept = found.filter((t) => !overlaps(modified(t), reader.regions));
    // Each rewritten range apart from the others, and no page hash inside the bytes that are hashed, so that the
    // hashes are of the same bytes on both sides; an honest file is always so. Otherwise the file is stored as it is.
    const rewritten = kept.flatMap(modified);
    const slots = kept.flatMap((t) => (t.kind === 'pages' ? modified(t) : []));
    const hashed = kept.flatMap((t) => (t.kind === 'pages' ? [{ start: t.base, end: t.base + t.limit }] : []));
    const apart = rewritten.every((r, i) => !overlaps([r], rewritten.slice(0, i))) && !overlaps(slots, hashed);
    return apart ? kept : [];
}
function overlaps(a, b) {
    return a.some((x) => b.some((y) => x.start < y.end && y.start < x.end));
}
/** The byte ranges a transform rewrites. */
function modified(t) {
    if (t.kind === 'pages') {
        const count = Math.ceil(t.limit / 2 ** t.pageBits);
        return [{ start: t.slots, end: t.slots + count * t.hashSize }];
    }
    return [{ start: t.start, end: t.start + t.length }];
}
function fatSlices(reader, wide) {
    const head = reader.bytes(0, 8);
    const count = head.readUInt32BE(4);
    if (count === 0 || count > maxSlices)
        return undefined;
    const entryBytes = wide ? 32 : 20;
    const table = reader.bytes(8, count * entryBytes);
    if (!table)
        return undefined;
    const slices = [];
    for (let i = 0; i < count; i++) {
        const at = i * entryBytes;
        const offset = wide ? Number(table.readBigUInt64BE(at + 8)) : table.readUInt32BE(at + 8);
        const length = wide ? Number(table.readBigUInt64BE(at + 16)) : table.readUInt32BE(at + 12);
        if (offset < 8 + count * entryBytes || offset + length > reader.size)
            return undefined;
        slices.push([offset, length]);
    }
    const sorted = [...slices].sort((a, b) => a[0] - b[0]);
    if (sorted.some(([offset], i) => i > 0 && offset < sorted[i - 1][0] + sorted[i - 1][1]))
        return undefined;
    return slices;
}
function sliceTransforms(reader, base, length) {
    const layout = loadCommands(reader, base, length);
    if (!layout)
        return [];
    const out = [];
    const { text, signature, kind } = layout;
    // Instructions are converted with 32-bit arithmetic on their offset in the slice.
    if (text && text.size > 0 && text.offset % 4 === 0 && text.offset + text.size <= 2 ** 32) {
        out.push({ kind, base, start: base + text.offset, length: text.size });
    }
    if (signature)
        out.push(...pageHashes(reader, base, length, signature));
    return out;
}
function loadCommands(reader, base, length) {
    const header = reader.bytes(base, 32);
    if (!header || header.readUInt32LE(0) !== machMagic64)
        return undefined;
    const cpu = header.readUInt32LE(4);
    const kind = cpu === cpuArm64 ? 'arm64' : cpu === cpuX86_64 ? 'x86_64' : undefined;
    const count = header.readUInt32LE(16);
    const bytes = header.readUInt32LE(20);
    if (!kind || bytes > maxHeaderBytes || 32 + bytes > length)
        return undefined;
    const commands = reader.bytes(base + 32, bytes);
    if (!commands)
        return undefined;
    const layout = { kind };
    const headerEnd = 32 + bytes;
    for (let i = 0, at = 0; i < count; i++) {
        if (at + 8 > bytes)
            return undefined;
        const cmd = commands.readUInt32LE(at);
        const size = commands.readUInt32LE(at + 4);
        if (size < 8 || at + size > bytes)
            return undefined;
        if (cmd === lcSegment64 && size >= 72) {
            const sections = commands.readUInt32LE(at + 64);
            if (72 + sections * 80 > size)
                return undefined;
            for (let s = 0; s < sections; s++) {
                const sa = at + 72 + s * 80;
                if (macho_name(commands, sa) !== '__text' || macho_name(commands, sa + 16) !== '__TEXT')
                    continue;
                const sectionSize = Number(commands.readBigUInt64LE(sa + 40));
                const offset = commands.readUInt32LE(sa + 48);
                if (offset >= headerEnd && offset + sectionSize <= length)
                    layout.text = { offset, size: sectionSize };
            }
        }
        else if (cmd === lcCodeSignature && size >= 16) {
            const offset = commands.readUInt32LE(at + 8);
            const blob = commands.readUInt32LE(at + 12);
            if (offset >= headerEnd && offset + blob <= length && blob <= maxHeaderBytes)
                layout.signature = { offset, size: blob };
        }
        at += size;
    }
    return layout;
}
function macho_name(bytes, at) {
    const raw = bytes.subarray(at, at + 16);
    const end = raw.indexOf(0);
    return raw.toString('latin1', 0, end === -1 ? 16 : end);
}
/**
 * The page hashes of each CodeDirectory in the signature: hash `i` is the digest of the slice's bytes
 * [i·pageSize, min((i+1)·pageSize, codeLimit)). They are a function of bytes the archive holds anyway.
 */
function pageHashes(reader, base, length, signature) {
    const blobStart = base + signature.offset;
    const head = reader.bytes(blobStart, 12);
    if (!head || head.readUInt32BE(0) !== superBlobMagic)
        return [];
    const count = head.readUInt32BE(8);
    if (count > 64 || 12 + count * 8 > signature.size)
        return [];
    const index = reader.bytes(blobStart + 12, count * 8);
    const out = [];
    for (let i = 0; i < count; i++) {
        if (!codeDirectorySlots.has(index.readUInt32BE(i * 8)))
            continue;
        const at = index.readUInt32BE(i * 8 + 4);
        if (at + 44 > signature.size)
            continue;
        const cd = reader.bytes(blobStart + at, 44);
        if (cd.readUInt32BE(0) !== codeDirectoryMagic)
            continue;
        const hashOffset = cd.readUInt32BE(16);
        const slots = cd.readUInt32BE(28);
        const limit = cd.readUInt32BE(32);
        const hash = hashTypes[cd[37]];
        const pageBits = cd[39];
        if (!hash || cd[36] !== hash.size || pageBits < 9 || pageBits > 20 || limit === 0)
            continue;
        // 64-bit code limits (CodeDirectory 2.3+) are not handled: such a signature is left as it is.
        if (cd.readUInt32BE(8) >= 0x20300) {
            const wide = reader.bytes(blobStart + at + 56, 8);
            if (!wide || wide.readBigUInt64BE(0) !== 0n)
                continue;
        }
        const pageBytes = 2 ** pageBits;
        const slotsAt = blobStart + at + hashOffset;
        const fits = slots === Math.ceil(limit / pageBytes) &&
            limit <= signature.offset &&
            base % pageBytes === 0 &&
            at + hashOffset + slots * hash.size <= signature.size &&
            slotsAt + slots * hash.size <= base + length;
        if (fits)
            out.push({ kind: 'pages', hash: hash.name, hashSize: hash.size, base, limit, pageBits, slots: slotsAt });
    }
    return out;
}

;// CONCATENATED MODULE: ./src/archive/machine-code/transforms.ts
/**
 * The reversible transforms a `code.tar.zst` archive may apply to a file's bytes, so that zstd finds more of
 * what machine code repeats (docs/storage.md, "Archive formats"):
 *
 * - `arm64` and `x86_64`: the branch conversion. A call stores its target relative to its own address, so calls
 *   to one function differ at every call site; stored as absolute offsets (relative to the slice), they repeat.
 *   arm64: `BL` (imm26, in words) and `ADRP` (imm21, in 4 KiB pages). x86_64: `E8` (call rel32), when the
 *   displacement's top byte is 00 or FF.
 * - `pages`: the page hashes of a code signature, stored XORed with the hashes of the pages as archived. Those
 *   hashes are random to a compressor, yet a function of bytes the archive holds anyway: an honest signature is
 *   stored as zeros, and any other comes back exactly as it was.
 *
 * Each transform is its own inverse's mirror and depends only on bytes it does not change, so a restore undoes it
 * exactly, whatever the bytes are. Branches are converted within each 1 MiB block of the file (file offsets
 * k·2^20) independently: an instruction across a block boundary is left as it is, and the x86_64 scan starts
 * afresh at each block, so a writer or a reader can work on any block alone.
 */
const transforms_blockBytes = 1024 * 1024;
/** Converts the branches of `range` within `block` (the file's bytes at `blockStart`); `sign` 1 stores, −1 restores. */
function transforms_convertBranches(block, blockStart, range, sign) {
    const from = Math.max(range.start, blockStart);
    const to = Math.min(range.start + range.length, blockStart + block.length);
    if (from >= to)
        return false;
    const view = new DataView(block.buffer, block.byteOffset + (from - blockStart), to - from);
    const pcAt = from - range.base;
    return range.kind === 'arm64' ? convertArm64(view, pcAt, sign) : convertX86(view, pcAt, sign);
}
const littleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const blOpcode = 0x94000000 | 0;
/** The words of `view` (its first byte at slice offset `pcAt`). */
function convertArm64(view, pcAt, sign) {
    const count = view.byteLength >>> 2;
    if (littleEndian && view.byteOffset % 4 === 0)
        return convertArm64Words(new Int32Array(view.buffer, view.byteOffset, count), pcAt >>> 2, sign);
    // Unaligned (never for blocks this project reads): converted in an aligned copy.
    const words = new Int32Array(count);
    for (let i = 0; i < count; i++)
        words[i] = view.getInt32(i * 4, true);
    const changed = convertArm64Words(words, pcAt >>> 2, sign);
    for (let i = 0; i < count; i++)
        view.setInt32(i * 4, words[i], true);
    return changed;
}
/**
 * The instruction words at word `firstWord` of the slice and on. One tight loop over a typed array: this runs on
 * every restored byte of arm64 code, so it stays monomorphic and divides only by shifts (the 4 KiB page of word
 * `w` is `w >>> 10`).
 */
function convertArm64Words(words, firstWord, sign) {
    let changed = false;
    for (let i = 0; i < words.length; i++) {
        const word = words[i];
        const top = word >>> 24;
        if ((top & 0xfc) === 0x94) {
            // BL: imm26 counts words from this instruction.
            words[i] = blOpcode | ((word + sign * (firstWord + i)) & 0x03ffffff);
            changed = true;
        }
        else if ((top & 0x9f) === 0x90) {
            // ADRP: imm21 (immhi in bits 5-23, immlo in bits 29-30) counts 4 KiB pages from this instruction's page.
            const pages = (((word >>> 5) & 0x7ffff) << 2) | ((word >>> 29) & 3);
            const target = (pages + sign * ((firstWord + i) >>> 10)) & 0x1fffff;
            words[i] = (word & 0x9f00001f) | ((target & 3) << 29) | ((target >>> 2) << 5);
            changed = true;
        }
    }
    return changed;
}
/**
 * `E8` followed by a displacement whose top byte is 00 or FF (a call within ±16 MiB): the low 25 bits become
 * the target's offset modulo 2^25, and the top byte again copies bit 24, so a reader finds the same calls. Every
 * E8 takes its four bytes with it, converted or not: no displacement ever overlaps another, whatever the bytes.
 */
function convertX86(view, pcAt, sign) {
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    let changed = false;
    const end = view.byteLength - 4;
    // indexOf finds the next E8 natively; the bytes between are no instruction this filter changes.
    for (let p = bytes.indexOf(0xe8); p !== -1 && p < end; p = bytes.indexOf(0xe8, p + 5)) {
        const top = bytes[p + 4];
        if (top !== 0x00 && top !== 0xff)
            continue;
        const next = pcAt + p + 5; // rel32 counts from the next instruction
        let target = (view.getInt32(p + 1, true) + sign * next) & 0x1ffffff;
        if (target & 0x1000000)
            target |= ~0x1ffffff;
        view.setInt32(p + 1, target, true);
        changed = true;
    }
    return changed;
}
/** The transforms as a file's record in the archive (a pax value): a JSON list of tuples. */
function transforms_formatRecord(transforms) {
    return JSON.stringify(transforms.map((t) => t.kind === 'pages'
        ? ['pages', t.hash, t.hashSize, t.base, t.limit, t.pageBits, t.slots]
        : [t.kind, t.base, t.start, t.length]));
}
const isCount = (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
/** The transforms of a record; undefined when it is not one this release writes. */
function parseRecord(text) {
    let raw;
    try {
        raw = JSON.parse(text);
    }
    catch {
        return undefined;
    }
    if (!Array.isArray(raw) || raw.length === 0 || raw.length > 64)
        return undefined;
    const out = [];
    for (const item of raw) {
        if (!Array.isArray(item))
            return undefined;
        const [kind, ...rest] = item;
        if ((kind === 'arm64' || kind === 'x86_64') && rest.length === 3 && rest.every(isCount)) {
            const [base, start, length] = rest;
            out.push({ kind, base: base, start: start, length: length });
        }
        else if (kind === 'pages' && rest.length === 6 && rest.slice(1).every(isCount)) {
            const [hash, hashSize, base, limit, pageBits, slots] = rest;
            if (hash !== 'sha1' && hash !== 'sha256' && hash !== 'sha384')
                return undefined;
            out.push({ kind, hash, hashSize, base, limit, pageBits, slots });
        }
        else
            return undefined;
    }
    return out;
}
/** Same transform. */
function sameTransform(a, b) {
    return transforms_formatRecord([a]) === transforms_formatRecord([b]);
}

;// CONCATENATED MODULE: ./src/archive/machine-code/codec.ts





/**
 * Applying a file's transforms (machine-code/transforms.ts): the producer stores each 1 MiB block converted, and
 * the consumer, once the file is whole on disk, converts it back in place and puts the page hashes back.
 */
/** Smaller files are stored as they are: a Mach-O worth converting is larger. */
const minimumBytes = (/* unused pure expression or super */ null && (16 * 1024));
function readerOf(fd) {
    return (position, length) => {
        const data = Buffer.alloc(length);
        let done = 0;
        while (done < length) {
            const n = external_node_fs_namespaceObject.readSync(fd, data, done, length - done, position + done);
            if (n === 0)
                break;
            done += n;
        }
        return data.subarray(0, done);
    };
}
/** The file's bytes from `position` to the end of the block buffer or of the file, read into `block`. */
function readBlock(fd, block, position, size) {
    const length = Math.max(0, Math.min(block.length, size - position));
    for (let done = 0; done < length;) {
        const n = fs.readSync(fd, block, done, length - done, position + done);
        if (n === 0)
            throw new Error('the file is shorter than its size');
        done += n;
    }
    return block.subarray(0, length);
}
/** The file's plan, or undefined when it is stored as it is (not Mach-O, damaged, or nothing to convert). */
function codec_planMachineCode(file, size) {
    if (size < minimumBytes)
        return undefined;
    const fd = fs.openSync(file, 'r');
    try {
        const transforms = machineCodeTransforms(readerOf(fd), size);
        if (transforms.length === 0)
            return undefined;
        const patches = transforms.flatMap((t) => (t.kind === 'pages' ? [storedPageHashes(fd, t, size)] : []));
        return { transforms, record: formatRecord(transforms), patches };
    }
    finally {
        fs.closeSync(fd);
    }
}
function slotBytes(t) {
    return Math.ceil(t.limit / 2 ** t.pageBits) * t.hashSize;
}
/** The hash array XORed with the hashes of the pages as they are: zeros for an honest signature. */
function storedPageHashes(fd, t, size) {
    const bytes = readerOf(fd)(t.slots, slotBytes(t));
    const block = Buffer.allocUnsafe(blockBytes);
    for (let start = t.base - (t.base % blockBytes); start < t.base + t.limit; start += blockBytes) {
        xorPageHashes(readBlock(fd, block, start, size), start, t, bytes);
    }
    return { offset: t.slots, bytes };
}
/** XORs into `slots` the digest of every page of `t` that starts in `block` (the file's bytes at `blockStart`). */
function xorPageHashes(block, blockStart, t, slots) {
    const pageBytes = 2 ** t.pageBits;
    const end = t.base + t.limit;
    const first = Math.max(0, Math.ceil((blockStart - t.base) / pageBytes));
    for (let i = first;; i++) {
        const start = t.base + i * pageBytes;
        if (start >= end || start >= blockStart + block.length)
            break;
        const stop = Math.min(start + pageBytes, end);
        if (stop > blockStart + block.length)
            throw new guard_CorruptArchiveError('the archive is corrupted (a page out of place)');
        const digest = (0,external_node_crypto_namespaceObject.hash)(t.hash, block.subarray(start - blockStart, stop - blockStart), 'buffer');
        const at = i * t.hashSize;
        for (let b = 0; b < t.hashSize; b++)
            slots[at + b] ^= digest[b];
    }
}
/** Converts a block the producer read at `blockStart` into what the archive stores. */
function codec_encodeBlock(block, blockStart, plan) {
    for (const t of plan.transforms)
        if (t.kind !== 'pages')
            convertBranches(block, blockStart, t, 1);
    for (const patch of plan.patches) {
        const from = Math.max(patch.offset, blockStart);
        const to = Math.min(patch.offset + patch.bytes.length, blockStart + block.length);
        if (from < to)
            patch.bytes.copy(block, from - blockStart, from - patch.offset, to - patch.offset);
    }
}
/**
 * Converts back, as it arrives, a file the archive stored with `recorded` transforms: `push` takes the file's bytes
 * in order and hands back whole 1 MiB blocks (the last one shorter) converted back, ready to be written; `finish`,
 * once every block is written, checks the record against the file's own headers (stored as they are) and writes
 * the page hashes back. A record that names anything the headers do not allow is damage: the extraction fails
 * and its folder is removed (archive/extract.ts).
 */
class CodeDecoder {
    recorded;
    size;
    path;
    block;
    filled = 0;
    start = 0;
    /** Blocks the caller has written and handed back (`release`): reused rather than left to the collector. */
    spare = [];
    pages;
    constructor(recorded, size, path) {
        this.recorded = recorded;
        this.size = size;
        this.path = path;
        if (!recorded.every((t) => withinFile(t, size)))
            throw this.damage();
        this.pages = recorded
            .filter((t) => t.kind === 'pages')
            .map((t) => ({ t, digests: Buffer.alloc(slotBytes(t)), stored: Buffer.alloc(slotBytes(t)) }));
        this.block = this.nextBlock();
    }
    /** The whole blocks `data` (the file's next bytes) completes, converted back. */
    push(data) {
        const ready = [];
        for (let offset = 0; offset < data.length;) {
            const take = Math.min(this.block.length - this.filled, data.length - offset);
            data.copy(this.block, this.filled, offset, offset + take);
            this.filled += take;
            offset += take;
            if (this.filled === this.block.length)
                ready.push(this.convert());
        }
        return ready;
    }
    convert() {
        const data = this.block;
        const position = this.start;
        for (const t of this.recorded)
            if (t.kind !== 'pages')
                transforms_convertBranches(data, position, t, -1);
        for (const p of this.pages) {
            xorPageHashes(data, position, p.t, p.digests);
            copyOverlap(data, position, p.stored, p.t.slots);
        }
        this.start += data.length;
        this.filled = 0;
        this.block = this.nextBlock();
        return { data, position };
    }
    /** A block `push` handed out, once it is written: the decoder fills it again. */
    release(block) {
        if (block.length === transforms_blockBytes && this.spare.length < 4)
            this.spare.push(block);
    }
    nextBlock() {
        const length = Math.min(transforms_blockBytes, this.size - this.start);
        return (length === transforms_blockBytes ? this.spare.pop() : undefined) ?? Buffer.allocUnsafe(length);
    }
    /** Once all `size` bytes are written to `fd` (open for reading and writing): the check, and the page hashes. */
    finish(fd) {
        if (this.start !== this.size)
            throw this.damage();
        const allowed = macho_machineCodeTransforms(readerOf(fd), this.size);
        if (!this.recorded.every((t) => allowed.some((a) => sameTransform(a, t))))
            throw this.damage();
        for (const p of this.pages) {
            for (let i = 0; i < p.stored.length; i++)
                p.stored[i] ^= p.digests[i];
            writeFully(fd, p.stored, p.t.slots);
        }
    }
    damage() {
        return new guard_CorruptArchiveError(`the archive is corrupted (its machine-code record for '${this.path}' does not match its headers)`);
    }
}
/** Whether every byte a transform names lies in the file: what a decoder allocates stays bounded by it. */
function withinFile(t, size) {
    if (t.kind !== 'pages')
        return t.start + t.length <= size && t.base <= t.start;
    return (t.pageBits >= 9 &&
        t.pageBits <= 16 &&
        t.hashSize <= 48 &&
        t.base + t.limit <= size &&
        t.slots + slotBytes(t) <= size);
}
/** Copies into `target` (the file's bytes at `targetAt`) what of `block` (at `blockStart`) overlaps it. */
function copyOverlap(block, blockStart, target, targetAt) {
    const from = Math.max(blockStart, targetAt);
    const to = Math.min(blockStart + block.length, targetAt + target.length);
    if (from < to)
        block.copy(target, from - targetAt, from - blockStart, to - blockStart);
}
/** Restores, in place, a whole file the archive stored with `recorded` transforms (`fd` open for reading and writing). */
function decodeFile(fd, size, recorded, path) {
    const decoder = new CodeDecoder(recorded, size, path);
    const block = Buffer.allocUnsafe(blockBytes);
    for (let start = 0; start < size; start += blockBytes) {
        for (const ready of decoder.push(Buffer.from(readBlock(fd, block, start, size))))
            writeFully(fd, ready.data, ready.position);
    }
    decoder.finish(fd);
}
function writeFully(fd, data, position) {
    for (let done = 0; done < data.length;) {
        const n = external_node_fs_namespaceObject.writeSync(fd, data, done, data.length - done, position + done);
        if (n === 0)
            throw new Error('short write');
        done += n;
    }
}

;// CONCATENATED MODULE: ./src/archive/pack.ts




const BLOCK = 512;
const padTo = (n) => Math.ceil(n / BLOCK) * BLOCK;
/** Sort key: the path inside the slice (without a versioned bundle's `Versions/<v>/`), then the slice. */
function orderKey(rel, type) {
    const parts = rel.split('/');
    if (type === 'dir')
        return `0\0${rel}`;
    const kind = type === 'file' ? '1' : '2'; // symlinks after the files, so they never split a group of files
    if (parts.length < 3)
        return `${kind}\0${parts.slice(1).join('/')}\0`; // files at the top of the framework
    const [, slice, ...rest] = parts;
    const inside = rest.join('/').replace(/(^|\/)Versions\/[^/]+\//, '$1');
    return `${kind}\0${inside}\0${slice}`;
}
async function pack_planArchive(directory, folder, file, machineCode = false) {
    const entries = [];
    const visit = async (rel) => {
        const stat = await fs.lstat(path.join(directory, rel));
        const base = { rel, mode: stat.mode & 0o777, mtime: Math.floor(stat.mtimeMs / 1000) };
        if (stat.isDirectory()) {
            entries.push({ ...base, type: 'dir', size: 0, linkpath: '', order: orderKey(rel, 'dir') });
            for (const name of (await fs.readdir(path.join(directory, rel))).sort())
                await visit(`${rel}/${name}`);
        }
        else if (stat.isSymbolicLink()) {
            entries.push({
                ...base,
                type: 'symlink',
                size: 0,
                linkpath: await fs.readlink(path.join(directory, rel)),
                order: orderKey(rel, 'symlink'),
            });
        }
        else if (stat.isFile()) {
            const code = machineCode ? planMachineCode(path.join(directory, rel), stat.size) : undefined;
            entries.push({
                ...base,
                type: 'file',
                size: stat.size,
                linkpath: '',
                order: orderKey(rel, 'file'),
                ...(code ? { code } : {}),
            });
        }
        // Sockets, devices and FIFOs have no place in a framework and would be refused on restore: left out.
    };
    await visit(folder);
    entries.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
    const version = await fs.lstat(path.join(directory, file));
    if (!version.isFile())
        throw new Error(`${file} is not a file`);
    entries.push({
        rel: file,
        type: 'file',
        mode: version.mode & 0o777,
        mtime: Math.floor(version.mtimeMs / 1000),
        size: version.size,
        linkpath: '',
        order: '',
    });
    const items = interleave(entries);
    let tarBytes = 3 * BLOCK; // the marker, and the two blocks that end an archive
    for (const item of items)
        tarBytes += headerBytes(item).length + padTo(item.part?.length ?? item.entry.size);
    return { directory, items, tarBytes };
}
/**
 * Pieces of this size, taken in turn from the same file of every slice (device, simulator, macOS), keep a
 * page within 2 pieces (2 MiB) of the device page it resembles, whatever the binaries' size: zstd finds it
 * with a 4 MiB window, and a consumer's decoder needs no more than that. (Measured on the realistic set:
 * 1 MiB pieces and a 4 MiB window compress 1% better than 2 MiB pieces and an 8 MiB window.)
 */
const partBytes = 1024 * 1024;
// A piece must hold whole blocks of the machine-code conversion, which works block by block.
if (partBytes % transforms_blockBytes !== 0)
    throw new Error('partBytes must be a multiple of the machine-code block');
function interleave(entries) {
    const items = [];
    const groupOf = (e) => (e.type === 'file' ? e.order.slice(0, e.order.lastIndexOf('\0')) : undefined);
    for (let i = 0; i < entries.length;) {
        const group = groupOf(entries[i]);
        let j = i + 1;
        while (group !== undefined && j < entries.length && groupOf(entries[j]) === group)
            j++;
        const members = entries.slice(i, j);
        if (members.length < 2 || Math.max(...members.map((m) => m.size)) <= partBytes) {
            for (const entry of members)
                items.push({ entry });
        }
        else {
            for (let offset = 0; members.some((m) => offset < m.size || offset === 0); offset += partBytes) {
                for (const entry of members) {
                    if (offset < entry.size || offset === 0)
                        items.push({ entry, part: { offset, length: Math.min(partBytes, entry.size - offset) } });
                }
            }
        }
        i = j;
    }
    return items;
}
function octal(value, width) {
    return value.toString(8).padStart(width - 1, '0') + '\0';
}
function ustarHeader(name, prefix, e, flag, size, linkpath) {
    const header = Buffer.alloc(BLOCK);
    header.write(name, 0, 100, 'utf8');
    header.write(octal(e.mode, 8), 100);
    header.write(octal(0, 8), 108);
    header.write(octal(0, 8), 116);
    header.write(octal(size, 12), 124);
    header.write(octal(Math.max(0, Math.min(e.mtime, 0o77777777777)), 12), 136);
    header.write('        ', 148);
    header.write(flag, 156);
    header.write(linkpath, 157, 100, 'utf8');
    header.write('ustar\0', 257);
    header.write('00', 263);
    header.write(prefix, 345, 155, 'utf8');
    let sum = 0;
    for (let i = 0; i < BLOCK; i++)
        sum += header[i];
    header.write(octal(sum, 7) + ' ', 148);
    return header;
}
/**
 * The first entry of every archive: a FIFO named `.scipio-s3-cache-pieces`, which extract.ts skips.
 * Releases of this action before pieces used node-tar, which silently skips entries of type `M`: they would
 * have restored a framework without its binaries. Their entry guard refuses any FIFO before looking further,
 * so to them these archives are a cache miss (the framework is built), never a broken framework.
 */
const piecesMarker = '.scipio-s3-cache-pieces';
function markerHeader() {
    return ustarHeader(piecesMarker, '', { rel: piecesMarker, type: 'file', mode: 0o644, mtime: 0, size: 0, linkpath: '', order: '' }, '6', 0, '');
}
/** Splits a path into ustar's prefix (≤155 bytes) and name (≤100 bytes), if it can be. */
function splitPath(p) {
    if (Buffer.byteLength(p) <= 100)
        return ['', p];
    for (let at = p.indexOf('/'); at !== -1; at = p.indexOf('/', at + 1)) {
        const prefix = p.slice(0, at);
        const name = p.slice(at + 1);
        if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name)
            return [prefix, name];
    }
    return undefined;
}
function paxRecord(key, value) {
    const body = ` ${key}=${value}\n`;
    let length = Buffer.byteLength(body) + 1;
    while (String(length).length + Buffer.byteLength(body) !== length)
        length = String(length).length + Buffer.byteLength(body);
    return `${length}${body}`;
}
/**
 * The header block(s) of one entry: a pax record first when ustar cannot hold its path, link target or size,
 * or for a piece of a file: type `M` (GNU's "continuation of a file", the closest standard meaning) with pax
 * records `SCIPIO.offset` and `SCIPIO.size` (the whole file's size). A converted Mach-O file's first piece (or its
 * whole entry) carries `SCIPIO.code`.
 */
function headerBytes({ entry: e, part }) {
    const rel = e.type === 'dir' ? `${e.rel}/` : e.rel;
    const flag = part ? 'M' : e.type === 'dir' ? '5' : e.type === 'symlink' ? '2' : '0';
    const size = part?.length ?? e.size;
    const split = splitPath(rel);
    const longLink = Buffer.byteLength(e.linkpath) > 100;
    const bigSize = size > 0o77777777777;
    const code = e.code && (!part || part.offset === 0) ? e.code.record : undefined;
    const header = ustarHeader(split?.[1] ?? rel.slice(0, 100), split?.[0] ?? '', e, flag, bigSize ? 0 : size, longLink ? '' : e.linkpath);
    if (split && !longLink && !bigSize && !part && !code)
        return header;
    let records = '';
    if (!split)
        records += paxRecord('path', rel);
    if (longLink)
        records += paxRecord('linkpath', e.linkpath);
    if (bigSize)
        records += paxRecord('size', String(size));
    if (part)
        records += paxRecord('SCIPIO.offset', String(part.offset)) + paxRecord('SCIPIO.size', String(e.size));
    if (code)
        records += paxRecord('SCIPIO.code', code);
    const data = Buffer.from(records);
    const paxName = `PaxHeader/${path.posix.basename(rel)}`.slice(0, 100);
    const pax = ustarHeader(paxName, '', e, 'x', data.length, '');
    return Buffer.concat([pax, data, Buffer.alloc(padTo(data.length) - data.length), header]);
}
const bufferBytes = (/* unused pure expression or super */ null && (1024 * 1024));
/**
 * Writes the tar into `sink` (the compressor) through two 1 MiB buffers used in turn: headers and small files
 * are packed together, file data is read straight into the buffer, and a buffer is refilled only once the
 * compressor has taken its bytes (its write callback). Reading into fresh buffers instead allocated the whole
 * framework again in ArrayBuffers, and V8 answered every 64 MB of them with a full garbage collection (about
 * a third of a cold save's main-thread time, docs/benchmarks.md). Ends `sink` when done.
 */
async function pack_writeTar(plan, sink) {
    const buffers = [Buffer.allocUnsafe(bufferBytes), Buffer.allocUnsafe(bufferBytes)];
    const taken = [undefined, undefined];
    let current = 0;
    let fill = 0;
    const flush = async () => {
        if (fill === 0)
            return;
        const chunk = buffers[current].subarray(0, fill);
        const sent = new Promise((resolve, reject) => sink.write(chunk, (error) => (error ? reject(error) : resolve())));
        sent.catch(() => undefined); // awaited below; this only keeps an early failure from being "unhandled"
        taken[current] = sent;
        current = 1 - current;
        fill = 0;
        await taken[current]; // the other buffer must be free before it is filled again
    };
    const put = async (bytes) => {
        for (let at = 0; at < bytes.length;) {
            const n = bytes.copy(buffers[current], fill, at);
            fill += n;
            at += n;
            if (fill === bufferBytes)
                await flush();
        }
    };
    await put(markerHeader());
    for (const item of plan.items) {
        const e = item.entry;
        await put(headerBytes(item));
        const start = item.part?.offset ?? 0;
        const length = item.part?.length ?? e.size;
        if (e.type !== 'file' || length === 0)
            continue;
        if (e.code) {
            await putConverted(path.join(plan.directory, e.rel), e.code, start, length, put);
            await put(Buffer.alloc(padTo(length) - length));
            continue;
        }
        const handle = await fs.open(path.join(plan.directory, e.rel), 'r');
        try {
            for (let done = 0; done < length;) {
                const { bytesRead } = await handle.read(buffers[current], fill, Math.min(bufferBytes - fill, length - done), start + done);
                if (bytesRead === 0)
                    throw new Error(`${e.rel} shrank while it was being archived`);
                fill += bytesRead;
                done += bytesRead;
                if (fill === bufferBytes)
                    await flush();
            }
        }
        finally {
            await handle.close();
        }
        await put(Buffer.alloc(padTo(length) - length));
    }
    await put(Buffer.alloc(2 * BLOCK));
    await flush();
    await Promise.all(taken.filter((sent) => sent !== undefined));
    await new Promise((resolve, reject) => sink.end((error) => (error ? reject(error) : resolve())));
}
/** Writes `length` bytes of a Mach-O file from `start` (a multiple of the block), converted block by block. */
async function putConverted(file, code, start, length, put) {
    const block = Buffer.allocUnsafe(blockBytes);
    const handle = await fs.open(file, 'r');
    try {
        for (let at = start; at < start + length; at += blockBytes) {
            const want = Math.min(blockBytes, start + length - at);
            let got = 0;
            while (got < want) {
                const { bytesRead } = await handle.read(block, got, want - got, at + got);
                if (bytesRead === 0)
                    throw new Error(`${file} shrank while it was being archived`);
                got += bytesRead;
            }
            const data = block.subarray(0, want);
            encodeBlock(data, at, code);
            await put(data);
        }
    }
    finally {
        await handle.close();
    }
}

;// CONCATENATED MODULE: ./src/archive/extract.ts







/**
 * A lean tar extractor: it parses the 512-byte headers itself (ustar, pax `x`/`g` records, GNU long names), asks
 * the EntryGuard about every entry before touching the disk, makes each folder once, and writes file data
 * straight from the decompressor's chunks. Replaces node-tar's per-entry streams and state machines, which
 * were most of the restore's CPU time (docs/benchmarks.md).
 *
 * Small writes and metadata calls are synchronous (a few microseconds each, no thread-pool round trip);
 * large data writes go to the thread pool so the main thread keeps hashing and parsing meanwhile.
 * Folder modes and times are set last, deepest first, so a read-only folder or a child's write cannot undo them.
 * A file stored converted (the `code.tar.zst` format, machine-code/) is converted back block by block as it is
 * written; once it is whole its record is checked against its headers and its page hashes put back, before its
 * mode and time are set.
 */
const extract_BLOCK = 512;
const zeroBlock = Buffer.alloc(extract_BLOCK);
const asyncWriteFrom = 64 * 1024;
const createFlags = external_node_fs_namespaceObject.constants.O_CREAT | external_node_fs_namespaceObject.constants.O_TRUNC | external_node_fs_namespaceObject.constants.O_NOFOLLOW;
/** A converted file's headers are read back to check its record: open for reading too. */
const accessOf = (code) => (code ? external_node_fs_namespaceObject.constants.O_RDWR : external_node_fs_namespaceObject.constants.O_WRONLY);
/** node-tar's names for the type flags, which the EntryGuard and its messages use. */
const typeNames = {
    '0': 'File',
    '': 'OldFile',
    '1': 'Link',
    '2': 'SymbolicLink',
    '3': 'CharacterDevice',
    '4': 'BlockDevice',
    '5': 'Directory',
    '6': 'FIFO',
    '7': 'ContiguousFile',
    x: 'ExtendedHeader',
    g: 'GlobalExtendedHeader',
    L: 'NextFileHasLongPath',
    K: 'NextFileHasLongLinkpath',
    M: 'ContinuationFile',
};
function cString(block, start, length) {
    const end = block.indexOf(0, start);
    return block.toString('utf8', start, end === -1 || end > start + length ? start + length : end);
}
/** Octal text, or base-256 when the first byte's high bit is set (GNU, for values octal cannot hold). */
function number(block, start, length) {
    if (block[start] & 0x80) {
        let value = block[start] & 0x7f;
        for (let i = 1; i < length; i++)
            value = value * 256 + block[start + i];
        return value;
    }
    const text = block
        .toString('latin1', start, start + length)
        .replace(/[\0 ].*$/s, '')
        .trim();
    if (text === '')
        return 0;
    if (!/^[0-7]+$/.test(text))
        throw new guard_CorruptArchiveError(`the archive is corrupted (bad number '${text}' in a tar header)`);
    return parseInt(text, 8);
}
function checksumOk(block) {
    const stored = number(block, 148, 8);
    let sum = 8 * 0x20;
    for (let i = 0; i < extract_BLOCK; i++)
        if (i < 148 || i >= 156)
            sum += block[i];
    return sum === stored;
}
/** `<length> <key>=<value>\n` records. */
function paxRecords(data) {
    const out = {};
    let at = 0;
    while (at < data.length) {
        const space = data.indexOf(0x20, at);
        const length = space === -1 ? NaN : Number(data.toString('latin1', at, space));
        if (!Number.isSafeInteger(length) || length <= 0 || at + length > data.length)
            throw new guard_CorruptArchiveError('the archive is corrupted (bad pax record)');
        const record = data.toString('utf8', space + 1, at + length - 1);
        const eq = record.indexOf('=');
        if (eq > 0)
            out[record.slice(0, eq)] = record.slice(eq + 1);
        at += length;
    }
    return out;
}
function applyPax(header, pax) {
    if (pax.path !== undefined)
        header.path = pax.path;
    if (pax.linkpath !== undefined)
        header.linkpath = pax.linkpath;
    if (pax.size !== undefined && /^\d+$/.test(pax.size))
        header.size = Number(pax.size);
    if (pax.mtime !== undefined && Number.isFinite(Number(pax.mtime)))
        header.mtime = Number(pax.mtime);
    if (pax['SCIPIO.offset'] !== undefined || pax['SCIPIO.size'] !== undefined) {
        const offset = Number(pax['SCIPIO.offset']);
        const total = Number(pax['SCIPIO.size']);
        if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(total) || offset < 0 || total < 0)
            throw new guard_CorruptArchiveError('the archive is corrupted (bad file piece)');
        header.part = { offset, total };
    }
    if (pax['SCIPIO.code'] !== undefined) {
        const code = parseRecord(pax['SCIPIO.code']);
        if (!code)
            throw new guard_CorruptArchiveError('the archive is corrupted (a bad machine-code record)');
        header.code = code;
    }
}
/** A writable stream of an uncompressed tar; `destination` must be an empty folder the caller owns. */
class TarExtractor extends external_node_stream_namespaceObject.Writable {
    destination;
    guard;
    machineCode;
    /** Partial header or metadata record being collected. */
    pending = [];
    pendingBytes = 0;
    header;
    /** Bytes of the current entry's body still to come, then its padding. */
    remaining = 0;
    padding = 0;
    meta;
    fd;
    /** The large write in the thread pool, if any: its descriptor stays open until it settles. */
    writing;
    position = 0;
    ended = false;
    nextPax = {};
    globalPax = {};
    madeFolders = new Set();
    /** Files written in pieces and not yet complete: bytes written so far, the whole size, and the file's decoder. */
    pieces = new Map();
    /** Converts the current file's bytes back as they arrive, when it is stored converted. */
    decoder;
    folders = [];
    constructor(destination, guard, 
    /** The format stores machine code converted: `SCIPIO.code` records are allowed (else they are damage). */
    machineCode = false) {
        super();
        this.destination = destination;
        this.guard = guard;
        this.machineCode = machineCode;
        this.madeFolders.add(external_node_path_namespaceObject.resolve(destination));
    }
    _write(chunk, _encoding, callback) {
        let step;
        try {
            step = this.consume(chunk, 0);
        }
        catch (error) {
            callback(error);
            return;
        }
        if (step)
            step.then(() => callback(), callback);
        else
            callback();
    }
    _final(callback) {
        if (!this.ended || this.pieces.size > 0) {
            callback(new guard_CorruptArchiveError(`the archive is corrupted (${this.ended ? 'pieces of a file are missing' : 'it ends before the end-of-archive blocks'})`));
            return;
        }
        try {
            // Deepest first: a folder's time is set after everything inside it is written.
            for (const folder of this.folders.reverse()) {
                external_node_fs_namespaceObject.chmodSync(folder.abs, folder.mode);
                // node-tar's portable archives record folders with mtime 0: leave those as the extraction left them.
                if (folder.mtime > 0)
                    external_node_fs_namespaceObject.utimesSync(folder.abs, folder.mtime, folder.mtime);
            }
            callback();
        }
        catch (error) {
            callback(error);
        }
    }
    /**
     * Closes the open file only once a pending write to it has settled: closed earlier, its number could go to the
     * next file this process opens (extraction threads share descriptors), and the write would land there.
     */
    _destroy(error, callback) {
        const fd = this.fd;
        this.fd = undefined;
        const close = () => (fd === undefined ? callback(error) : external_node_fs_namespaceObject.close(fd, () => callback(error)));
        if (this.writing)
            this.writing.then(close, close);
        else
            close();
    }
    /** Parses `chunk` from `offset`; returns a promise only when it had to wait for a large write. */
    consume(chunk, offset) {
        while (offset < chunk.length) {
            if (this.ended)
                return undefined; // what follows the end-of-archive blocks is ignored, as tar does
            if (this.remaining > 0) {
                const take = Math.min(this.remaining, chunk.length - offset);
                const piece = chunk.subarray(offset, offset + take);
                offset += take;
                this.remaining -= take;
                if (this.meta)
                    this.collect(piece);
                else if (this.fd !== undefined) {
                    if (this.decoder) {
                        const blocks = this.decoder.push(piece);
                        if (blocks.length === 0) {
                            if (this.remaining === 0)
                                this.endEntry();
                            continue;
                        }
                        const fd = this.fd;
                        const decoder = this.decoder;
                        this.writing = (async () => {
                            for (const block of blocks) {
                                await this.writeAll(fd, block.data, block.position);
                                decoder.release(block.data);
                            }
                        })();
                        return this.afterWrite(chunk, offset);
                    }
                    if (take >= asyncWriteFrom) {
                        const fd = this.fd;
                        const position = this.position;
                        this.position += take;
                        this.writing = this.writeAll(fd, piece, position);
                        return this.afterWrite(chunk, offset);
                    }
                    for (let done = 0; done < piece.length;) {
                        const written = external_node_fs_namespaceObject.writeSync(this.fd, piece, done, piece.length - done, this.position);
                        if (written === 0)
                            throw new Error('short write');
                        done += written;
                        this.position += written;
                    }
                }
                if (this.remaining === 0)
                    this.endEntry();
                continue;
            }
            if (this.padding > 0) {
                const skip = Math.min(this.padding, chunk.length - offset);
                offset += skip;
                this.padding -= skip;
                continue;
            }
            // A header: collect 512 bytes, possibly across chunks.
            const need = extract_BLOCK - this.pendingBytes;
            if (this.pendingBytes === 0 && chunk.length - offset >= extract_BLOCK) {
                this.onHeader(chunk.subarray(offset, offset + extract_BLOCK));
                offset += extract_BLOCK;
            }
            else {
                const take = Math.min(need, chunk.length - offset);
                this.collect(chunk.subarray(offset, offset + take));
                offset += take;
                if (this.pendingBytes === extract_BLOCK)
                    this.onHeader(this.takePending());
            }
        }
        return undefined;
    }
    /** Once the write under way settles: the entry's end, if this was its last byte, then the rest of `chunk`. */
    afterWrite(chunk, offset) {
        return this.writing.then(() => {
            if (this.destroyed)
                return undefined; // _destroy closes the file; nothing more is written
            if (this.remaining === 0)
                this.endEntry();
            return this.consume(chunk, offset);
        });
    }
    async writeAll(fd, piece, position) {
        let done = 0;
        while (done < piece.length) {
            const written = await new Promise((resolve, reject) => external_node_fs_namespaceObject.write(fd, piece, done, piece.length - done, position + done, (error, n) => error ? reject(error) : resolve(n)));
            if (written === 0)
                throw new Error('short write');
            done += written;
        }
    }
    collect(piece) {
        // Metadata records (pax, long names) are small; the EntryGuard's caps do not see them, so cap them here.
        if (this.pendingBytes + piece.length > 1024 * 1024)
            throw new guard_UnsafeArchiveError('refused: a tar metadata record larger than 1 MiB');
        this.pending.push(Buffer.from(piece));
        this.pendingBytes += piece.length;
    }
    takePending() {
        const all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
        this.pending = [];
        this.pendingBytes = 0;
        return all;
    }
    onHeader(block) {
        if (block.equals(zeroBlock)) {
            this.ended = true;
            return;
        }
        if (!checksumOk(block))
            throw new guard_CorruptArchiveError('the archive is corrupted (bad tar header checksum)');
        const magic = block.toString('latin1', 257, 263);
        const prefix = magic === 'ustar\0' ? cString(block, 345, 155) : '';
        const name = cString(block, 0, 100);
        const flag = block.toString('latin1', 156, 157).replace('\0', '');
        const header = {
            path: prefix ? `${prefix}/${name}` : name,
            type: typeNames[flag] ?? `Unsupported (${JSON.stringify(flag)})`,
            mode: number(block, 100, 8) & 0o777,
            size: number(block, 124, 12),
            mtime: number(block, 136, 12),
            linkpath: cString(block, 157, 100),
        };
        if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
            // A metadata record describes the next real entry; its own header only gives the record's length.
            this.meta = flag;
            this.remaining = header.size;
            this.padding = (extract_BLOCK - (header.size % extract_BLOCK)) % extract_BLOCK;
            if (header.size === 0)
                this.endEntry();
            return;
        }
        applyPax(header, this.globalPax);
        applyPax(header, this.nextPax);
        this.nextPax = {};
        if (header.type === 'FIFO' && header.path === piecesMarker && header.size === 0)
            return; // see pack.ts
        // Pieces of a file (pack.ts): type M with their place in pax records; anything else is damage.
        if ((header.type === 'ContinuationFile') !== (header.part !== undefined))
            throw new guard_CorruptArchiveError('the archive is corrupted (a file piece without its place)');
        if (header.code)
            this.checkRecord(header);
        // A piece is checked like the file it belongs to: same path rules, its bytes counted against the caps.
        const refusal = this.guard.check(header.path, header.type === 'ContinuationFile' ? 'File' : header.type, header.size, header.type === 'SymbolicLink' ? header.linkpath : undefined);
        if (refusal)
            throw new guard_UnsafeArchiveError(`refused: ${refusal}`);
        // Only files keep their body; any body another entry declares is skipped.
        this.header = header;
        this.remaining = header.size;
        this.padding = (extract_BLOCK - (header.size % extract_BLOCK)) % extract_BLOCK;
        this.startEntry(header);
        if (header.size === 0)
            this.endEntry();
    }
    /** A machine-code record belongs on a file (a whole one, or its first piece) of a format that has them. */
    checkRecord(header) {
        if (!this.machineCode)
            throw new guard_CorruptArchiveError('the archive is corrupted (a machine-code record in a format without them)');
        if (header.type !== 'File' && header.type !== 'ContinuationFile' && header.type !== 'OldFile')
            throw new guard_UnsafeArchiveError(`refused: a machine-code record on '${header.path}', a ${header.type} entry`);
        if (header.part && header.part.offset !== 0)
            throw new guard_CorruptArchiveError(`the archive is corrupted (a machine-code record on a later piece of '${header.path}')`);
    }
    folder(abs) {
        if (this.madeFolders.has(abs))
            return;
        external_node_fs_namespaceObject.mkdirSync(abs, { recursive: true });
        for (let dir = abs; !this.madeFolders.has(dir); dir = external_node_path_namespaceObject.dirname(dir))
            this.madeFolders.add(dir);
    }
    startEntry(header) {
        const abs = external_node_path_namespaceObject.join(this.destination, header.path.replace(/\/+$/, ''));
        if (header.type === 'Directory') {
            this.folder(abs);
            this.folders.push({ abs, mode: header.mode, mtime: header.mtime });
            return;
        }
        this.folder(external_node_path_namespaceObject.dirname(abs));
        if (header.type === 'SymbolicLink') {
            try {
                external_node_fs_namespaceObject.symlinkSync(header.linkpath, abs);
            }
            catch (error) {
                if (error.code !== 'EEXIST' || external_node_fs_namespaceObject.lstatSync(abs).isDirectory())
                    throw error;
                external_node_fs_namespaceObject.unlinkSync(abs);
                external_node_fs_namespaceObject.symlinkSync(header.linkpath, abs);
            }
            external_node_fs_namespaceObject.lutimesSync(abs, header.mtime, header.mtime);
            return;
        }
        if (header.part) {
            const { offset, total } = header.part;
            const known = this.pieces.get(abs);
            if (offset + header.size > total ||
                (offset === 0 ? known !== undefined : known?.next !== offset || known.total !== total)) {
                throw new guard_CorruptArchiveError(`the archive is corrupted (a piece of '${header.path}' out of place)`);
            }
            const decoder = offset === 0 ? this.decoderOf(header, total) : known?.decoder;
            this.pieces.set(abs, { next: offset + header.size, total, ...(decoder ? { decoder } : {}) });
            this.decoder = decoder;
            // The first piece creates the file; the others add to it, never through a symlink.
            const flags = accessOf(decoder) | (offset === 0 ? createFlags : external_node_fs_namespaceObject.constants.O_NOFOLLOW);
            this.fd = external_node_fs_namespaceObject.openSync(abs, flags, 0o600);
            this.position = offset;
            return;
        }
        this.decoder = this.decoderOf(header, header.size);
        // O_NOFOLLOW: never write through a symlink that is already there.
        this.fd = external_node_fs_namespaceObject.openSync(abs, accessOf(this.decoder) | createFlags, 0o600);
        this.position = 0;
    }
    decoderOf(header, size) {
        return header.code ? new CodeDecoder(header.code, size, header.path) : undefined;
    }
    endEntry() {
        if (this.meta) {
            const data = this.takePending();
            if (this.meta === 'x')
                this.nextPax = { ...this.nextPax, ...paxRecords(data) };
            else if (this.meta === 'g')
                this.globalPax = { ...this.globalPax, ...paxRecords(data) };
            else if (this.meta === 'L')
                this.nextPax = { ...this.nextPax, path: cString(data, 0, data.length) };
            else
                this.nextPax = { ...this.nextPax, linkpath: cString(data, 0, data.length) };
            this.meta = undefined;
            return;
        }
        const header = this.header;
        if (this.fd !== undefined) {
            const fd = this.fd;
            this.fd = undefined;
            const abs = header.part && external_node_path_namespaceObject.join(this.destination, header.path);
            const piece = abs ? this.pieces.get(abs) : undefined;
            const complete = !piece || piece.next === header.part.total;
            const decoder = this.decoder;
            this.decoder = undefined;
            try {
                if (complete) {
                    decoder?.finish(fd);
                    external_node_fs_namespaceObject.fchmodSync(fd, header.mode);
                    external_node_fs_namespaceObject.futimesSync(fd, header.mtime, header.mtime);
                }
            }
            finally {
                external_node_fs_namespaceObject.closeSync(fd);
            }
            if (abs && complete)
                this.pieces.delete(abs);
        }
        this.header = undefined;
    }
}

;// CONCATENATED MODULE: external "node:v8"
const external_node_v8_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:v8");
;// CONCATENATED MODULE: external "node:vm"
const external_node_vm_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:vm");
;// CONCATENATED MODULE: ./src/archive/garbage.ts


/**
 * Every MiB a cache transfer moves passes through freshly allocated Buffers (socket reads, zlib's output,
 * file reads). V8 frees their memory only when it collects, and it waits for tens of MB of them per thread
 * first: in a restore of 1.5 GB with two extraction threads that was 100-150 MB of dead buffers in the peak
 * RSS. A young-generation collection after every 16 MiB moved frees them for about a millisecond each
 * (docs/benchmarks.md). `gc` is V8's own extension, enabled at run time; where that is refused, nothing
 * changes but the memory.
 */
const every = 16 * 1024 * 1024;
let collect = null;
let since = 0;
function collector() {
    if (collect === null) {
        try {
            (0,external_node_v8_namespaceObject.setFlagsFromString)('--expose-gc');
            collect = (0,external_node_vm_namespaceObject.runInNewContext)('gc');
        }
        catch {
            collect = undefined;
        }
    }
    return collect;
}
/** Counts bytes this thread moved; collects young garbage after every 16 MiB. */
function moved(bytes) {
    since += bytes;
    if (since < every)
        return;
    since = 0;
    collector()?.({ type: 'minor' });
}

;// CONCATENATED MODULE: ./src/archive/archive.ts







const z = external_node_zlib_namespaceObject;
function zstdAvailable() {
    return typeof z.createZstdCompress === 'function' && typeof z.createZstdDecompress === 'function';
}
function preferredFormat() {
    return zstdAvailable() ? 'code.tar.zst' : 'tar.gz';
}
function canRead(format) {
    return format === 'tar.gz' || zstdAvailable();
}
/**
 * zlib streams hand out 16 KiB chunks by default: for a 1.5 GB set that is ~100k round trips to the thread
 * pool and as many tiny file writes. 1 MiB chunks cut both (warm restore measured 2x faster, see
 * docs/benchmarks.md) for 1 MiB of buffer per stream.
 */
const chunkSize = 1024 * 1024;
/**
 * zstd settings, chosen on the realistic data set (docs/benchmarks.md): level 3 with long-distance matching
 * over a 2^22 (4 MiB) window. pack.ts puts the slices' copies of a file side by side, large files in
 * 1 MiB pieces taken in turn, so a simulator page is never more than 2 MiB from the device page it resembles.
 * A decoder then needs at most 4 MiB, whatever the framework's size; it refuses frames asking for more (no
 * release of this action wrote any: before, level 3 meant a 2 MiB window). The frame records its content
 * size, so a small archive gets a smaller window still.
 */
const zstdLevel = 3;
const zstdWindowLog = 22;
/** A producer's run: level 6 costs about twice level 3's CPU per byte (docs/benchmarks.md, the macho preset). */
const storeCompression = { level: 6, windowLog: zstdWindowLog, longDistance: true };
/**
 * `scipio-s3-cache repack` (cli/repack.ts): zstd's strongest level, paid once per archive. A 2^24 (16 MiB) window:
 * each archive a consumer has in flight may hold that much (docs/storage.md); larger windows gained 0.2% on
 * the real Mach-O set.
 */
const strongestCompression = { level: 22, windowLog: 24, longDistance: false };
/** The largest window a `code.tar.zst` decoder accepts: what repack writes. */
const codeWindowLogMax = strongestCompression.windowLog;
function compressionLabel(c) {
    return `zstd-${c.level}-w${c.windowLog}${c.longDistance ? '-long' : ''}`;
}
/** The compression of each zstd format when a producer stores it. */
function defaultCompression(format) {
    return format === 'code.tar.zst'
        ? storeCompression
        : { level: zstdLevel, windowLog: zstdWindowLog, longDistance: true };
}
function compressor(format, pledgedSrcSize, compression) {
    if (format === 'tar.gz')
        return zlib.createGzip({ level: 6, chunkSize });
    const c = z.constants;
    // The frame checksum makes zstd itself notice damaged bytes, before our SHA-256 over the whole object does.
    const params = {};
    const set = (name, value) => {
        const id = c[name];
        if (id !== undefined)
            params[id] = value;
    };
    set('ZSTD_c_compressionLevel', compression.level);
    set('ZSTD_c_checksumFlag', 1);
    set('ZSTD_c_windowLog', compression.windowLog);
    if (compression.longDistance)
        set('ZSTD_c_enableLongDistanceMatching', 1);
    return z.createZstdCompress({ chunkSize, params, pledgedSrcSize });
}
function decompressor(format) {
    if (format === 'tar.gz')
        return external_node_zlib_namespaceObject.createGunzip({ chunkSize });
    const windowLogMax = z.constants.ZSTD_d_windowLogMax;
    return z.createZstdDecompress({
        chunkSize,
        ...(windowLogMax !== undefined
            ? { params: { [windowLogMax]: format === 'code.tar.zst' ? codeWindowLogMax : zstdWindowLog } }
            : {}),
    });
}
/**
 * Streams a compressed tar of `entries` (a framework folder and its VersionFile, relative to `directory`),
 * in the order pack.ts chooses so the slices' shared bytes compress together.
 */
function packArchive(directory, entries, format, compression = defaultCompression(format)) {
    const [folder, file] = entries;
    const out = new PassThrough();
    planArchive(directory, folder, file, format === 'code.tar.zst')
        .then(async (plan) => {
        const compress = compressor(format, plan.tarBytes, compression);
        const compressed = pipeline(compress, out);
        try {
            await writeTar(plan, compress);
        }
        catch (error) {
            compress.destroy(error);
        }
        await compressed;
    })
        .catch((error) => out.destroy(error));
    return out;
}
function isFormatError(error) {
    const code = String(error?.code ?? '');
    return code.startsWith('Z_') || code.startsWith('ZSTD_') || code.startsWith('TAR_');
}
/**
 * Unpacks a compressed archive stream into `destination` (an empty folder the caller owns), refusing
 * anything outside the framework folder and its VersionFile. Rejects with UnsafeArchiveError on refusal.
 */
async function extractArchive(source, destination, format, roots, limits = defaultExtractLimits, 
/** Stages on the compressed bytes before decompression (hashing, stall detection). */
inspect = []) {
    await explained((0,promises_namespaceObject.pipeline)([source, ...inspect, decompressor(format), tarExtractor(destination, format, roots, limits)]));
}
/**
 * The same as extractArchive, for a caller that writes the compressed bytes itself: `input` takes them
 * (a write's callback says the chunk's memory may be reused), `done` settles once extraction has stopped.
 */
function openExtraction(destination, format, roots, limits) {
    const input = decompressor(format);
    return { input, done: explained((0,promises_namespaceObject.pipeline)(input, tarExtractor(destination, format, roots, limits))) };
}
function tarExtractor(destination, format, roots, limits) {
    return new TarExtractor(destination, new EntryGuard(roots, limits), format === 'code.tar.zst');
}
/** Errors of decompression and parsing as the archive's damage; refusals and file system errors as they are. */
async function explained(extraction) {
    try {
        await extraction;
    }
    catch (error) {
        if (error instanceof guard_UnsafeArchiveError || error instanceof guard_CorruptArchiveError)
            throw error;
        if (isFormatError(error))
            throw new guard_CorruptArchiveError(`the archive is corrupted (${error.message})`);
        throw error;
    }
}
/** Counts and hashes the bytes flowing through, for checking a download against its index entry. */
class Measure extends external_node_stream_namespaceObject.Transform {
    hash;
    garbagePerByte;
    bytes = 0;
    constructor(hash, 
    /** Bytes of garbage this thread makes per byte measured, for garbage.ts. */
    garbagePerByte = 1) {
        super();
        this.hash = hash;
        this.garbagePerByte = garbagePerByte;
    }
    _transform(chunk, _encoding, callback) {
        this.bytes += chunk.length;
        moved(chunk.length * this.garbagePerByte);
        this.hash.update(chunk);
        callback(null, chunk);
    }
}

;// CONCATENATED MODULE: external "node:http"
const external_node_http_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:http");
;// CONCATENATED MODULE: external "node:https"
const external_node_https_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:https");
;// CONCATENATED MODULE: ./src/storage/plain-get.ts


/** Carries a GetFailure (across threads too: see extract-pool.ts). */
class plain_get_PlainGetError extends Error {
    failure;
    name = 'PlainGetError';
    constructor(failure) {
        super(failure.kind === 'status'
            ? `HTTP ${failure.status}${failure.code ? ` ${failure.code}` : ''}`
            : `${failure.code}: ${failure.message}`);
        this.failure = failure;
    }
}
/** No bytes moved for the stall time: the transfer is given up and tried again. */
class plain_get_StallError extends Error {
    name = 'StallError';
}
/** Kept-alive sockets per thread: as many as the restore lets small downloads be in flight (restore/in-flight.ts). */
const agents = {
    'http:': new external_node_http_namespaceObject.Agent({ keepAlive: true, maxSockets: 96 }),
    'https:': new external_node_https_namespaceObject.Agent({ keepAlive: true, maxSockets: 96 }),
};
/** An S3 error document's `<Code>`, `<Message>` and `<Region>`, from the first 64 KiB of an error answer. */
function errorFields(xml) {
    const field = (name) => new RegExp(`<${name}>([^<]{0,1000})</${name}>`).exec(xml)?.[1];
    const code = field('Code');
    const message = field('Message');
    const region = field('Region');
    return { ...(code ? { code } : {}), ...(message ? { message } : {}), ...(region ? { region } : {}) };
}
/**
 * Sends `get`; resolves with the answer once it is a 200, whose body the caller must consume or destroy.
 * No bytes for `stallMs` (waiting for the answer, or between two chunks of the body) fails it with StallError;
 * `signal` aborts it. Any other answer rejects with PlainGetError.
 */
function sendPlainGet(get, { stallMs, signal }) {
    return new Promise((resolve, reject) => {
        const url = new URL(get.url);
        const agent = url.protocol === 'https:' ? agents['https:'] : agents['http:'];
        const send = url.protocol === 'https:' ? external_node_https_namespaceObject.request : external_node_http_namespaceObject.request;
        let request;
        let answer;
        try {
            request = send(url, { method: 'GET', headers: get.headers, agent, ...(signal ? { signal } : {}) });
        }
        catch (error) {
            reject(error);
            return;
        }
        // The socket's idle time: waiting for the answer, then between two chunks of the body.
        request.setTimeout(stallMs, () => {
            const stalled = new plain_get_StallError(`no data for ${Math.round(stallMs / 1000)} s`);
            if (answer)
                answer.destroy(stalled);
            else
                request.destroy(stalled);
        });
        request.on('error', (error) => {
            if (error instanceof plain_get_StallError || error.name === 'AbortError')
                return reject(error);
            // Node's messages name the host at most; drop anything that could be a signed query all the same.
            reject(new plain_get_PlainGetError({ kind: 'network', code: error.code ?? 'EIO', message: error.message.replace(/\?\S*/g, '') }));
        });
        request.on('response', (response) => {
            answer = response;
            if (response.statusCode === 200)
                return resolve(response);
            const status = response.statusCode ?? 0;
            const parts = [];
            let size = 0;
            response.on('data', (chunk) => {
                if (size < 64 * 1024)
                    parts.push(chunk);
                size += chunk.length;
            });
            const fail = () => {
                const fields = errorFields(Buffer.concat(parts).toString('utf8'));
                const region = response.headers['x-amz-bucket-region'];
                reject(new plain_get_PlainGetError({ kind: 'status', status, ...fields, ...(typeof region === 'string' ? { region } : {}) }));
            };
            response.once('end', fail);
            response.once('error', fail);
            response.once('aborted', fail);
        });
        request.end();
    });
}

;// CONCATENATED MODULE: ./src/archive/extract-pool.ts












/** A download and its extraction, on the thread that calls it. */
async function fetchAndExtract(get, spec, options) {
    const { stallMs, expectedBytes, signal } = options;
    const answer = await sendPlainGet(get, { stallMs, ...(signal ? { signal } : {}) });
    const announced = answer.headers['content-length'];
    if (announced !== undefined && Number(announced) !== expectedBytes) {
        answer.destroy();
        throw new guard_CorruptArchiveError(`size ${announced} differs from the index's ${expectedBytes}`);
    }
    const hash = (0,external_node_crypto_namespaceObject.createHash)('sha256');
    // Each compressed byte leaves its socket buffer and about two bytes of decompressed chunks behind: counting
    // three collects them as they come (with one: 65 MB more peak RSS on the default set, docs/benchmarks.md).
    const measure = new Measure(hash, 3);
    await extractArchive(answer, spec.destination, spec.format, spec.roots, spec.limits, [measure]);
    return { sha256: hash.digest('hex'), bytes: measure.bytes };
}
const extractOnThisThread = {
    async extract(source, stages, spec) {
        const hash = (0,external_node_crypto_namespaceObject.createHash)('sha256');
        const measure = new Measure(hash);
        await extractArchive(source, spec.destination, spec.format, spec.roots, spec.limits, [...stages, measure]);
        return { sha256: hash.digest('hex'), bytes: measure.bytes };
    },
    fetch: fetchAndExtract,
};
function toMessage(error) {
    const e = error;
    return {
        name: String(e?.name ?? 'Error'),
        message: String(e?.message ?? error),
        ...(typeof e?.code === 'string' ? { code: e.code } : {}),
        ...(error instanceof plain_get_PlainGetError ? { failure: error.failure } : {}),
    };
}
/** The errors the restore tells apart, as the classes it checks for. */
function fromMessage(error) {
    if (error.name === 'UnsafeArchiveError')
        return new UnsafeArchiveError(error.message);
    if (error.name === 'CorruptArchiveError')
        return new CorruptArchiveError(error.message);
    if (error.name === 'StallError')
        return new StallError(error.message);
    if (error.failure)
        return new PlainGetError(error.failure);
    return Object.assign(new Error(error.message), error.code ? { code: error.code } : {});
}
/** The worker's side: one extraction per `start`, fed by `data` messages whose buffers go back once consumed. */
function serveExtractions(port) {
    const jobs = new Map();
    const downloads = new Map();
    const post = (message) => port.postMessage(message);
    let memory;
    port.on('message', (message) => {
        if (message.op === 'memory') {
            memory = message.memory;
            return;
        }
        const { id } = message;
        if (message.op === 'fetch') {
            const abort = new AbortController();
            downloads.set(id, abort);
            const { get, spec, stallMs, expectedBytes } = message;
            fetchAndExtract(get, spec, { stallMs, expectedBytes, signal: abort.signal })
                .then((result) => post({ op: 'done', id, result }), (error) => post({ op: 'failed', id, error: toMessage(error) }))
                .finally(() => downloads.delete(id));
            return;
        }
        if (message.op === 'abort' && downloads.has(id)) {
            downloads.get(id).abort();
            return;
        }
        if (message.op === 'start') {
            const { spec } = message;
            const { input, done } = openExtraction(spec.destination, spec.format, spec.roots, spec.limits);
            const job = { input, hash: (0,external_node_crypto_namespaceObject.createHash)('sha256'), bytes: 0 };
            jobs.set(id, job);
            done
                .then(() => post({ op: 'done', id, result: { sha256: job.hash.digest('hex'), bytes: job.bytes } }), (error) => post({ op: 'failed', id, error: toMessage(error) }))
                .finally(() => jobs.delete(id));
            return;
        }
        const job = jobs.get(id);
        if (!job)
            return;
        if (message.op === 'data') {
            const { slot, length } = message;
            const chunk = Buffer.from(memory, slot * batchBytes, length);
            job.hash.update(chunk);
            job.bytes += length;
            moved(length * 2); // and about as much again decompressed
            job.input.write(chunk, () => post({ op: 'took', id, slot }));
        }
        else if (message.op === 'end')
            job.input.end();
        else
            job.input.destroy(new Error('the download stopped'));
    });
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
const batchBytes = 256 * 1024;
const buffersPerJob = 2;
/** The slots of the shared block; an archive that finds none free waits for one (back-pressure on its socket). */
class SlotPool {
    memory;
    free;
    waiting = [];
    constructor(slots) {
        this.memory = new SharedArrayBuffer(slots * batchBytes);
        this.free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
    }
    take() {
        return this.free.pop();
    }
    /** Calls `then` once a slot may be free (it must `take()` again). */
    wait(then) {
        this.waiting.push(then);
    }
    give(slot) {
        this.free.push(slot);
        // A waiter that no longer needs a slot (its job settled, or it waits for its own) leaves it to the next.
        while (this.free.length > 0 && this.waiting.length > 0)
            this.waiting.shift()();
    }
    view(slot) {
        return Buffer.from(this.memory, slot * batchBytes, batchBytes);
    }
}
/** An archive at a thread: fed from this thread through `sender` (`start`), or downloaded there (`fetch`). */
class Job {
    id;
    post;
    pool;
    fed;
    sender;
    result;
    current;
    filled = 0;
    /** Slots at the worker. */
    out = new Set();
    waiting;
    settled = false;
    settle;
    constructor(id, post, pool, fed) {
        this.id = id;
        this.post = post;
        this.pool = pool;
        this.fed = fed;
        this.result = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
        this.result.catch(() => undefined); // observed by extract() or fetch(); never an unhandled rejection meanwhile
        this.sender = new Writable({
            write: (chunk, _encoding, callback) => this.accept(chunk, 0, callback),
            final: (callback) => {
                if (this.filled > 0)
                    this.send();
                this.post({ op: 'end', id });
                callback();
            },
        });
    }
    accept(chunk, offset, callback) {
        while (offset < chunk.length) {
            if (this.settled)
                return callback();
            if (!this.current) {
                if (this.out.size >= buffersPerJob) {
                    this.waiting = () => this.accept(chunk, offset, callback);
                    return;
                }
                const slot = this.pool.take();
                if (slot === undefined) {
                    this.pool.wait(() => this.accept(chunk, offset, callback));
                    return;
                }
                this.current = { slot, bytes: this.pool.view(slot) };
                this.filled = 0;
            }
            const copied = chunk.copy(this.current.bytes, this.filled, offset);
            this.filled += copied;
            offset += copied;
            if (this.filled === batchBytes)
                this.send();
        }
        callback();
    }
    send() {
        const { slot } = this.current;
        this.post({ op: 'data', id: this.id, slot, length: this.filled });
        this.out.add(slot);
        this.current = undefined;
        this.filled = 0;
    }
    took(slot) {
        if (!this.out.delete(slot))
            return;
        this.pool.give(slot);
        const waiting = this.waiting;
        this.waiting = undefined;
        waiting?.();
    }
    done(result) {
        this.release();
        this.settle.resolve(result);
    }
    failed(error) {
        this.release();
        this.settle.reject(error);
        // The extraction stopped: stop feeding it (the download is then torn down by the pipeline).
        if (this.fed)
            this.sender.destroy(error);
    }
    /**
     * Gives back every slot this archive still holds. The thread only reads a slot, and never again for a job it
     * reported settled, so a slot reused meanwhile can at worst feed a failed job's dead decompressor.
     */
    release() {
        if (this.settled)
            return;
        this.settled = true;
        if (this.current)
            this.pool.give(this.current.slot);
        this.current = undefined;
        for (const slot of this.out)
            this.pool.give(slot);
        this.out.clear();
        const waiting = this.waiting;
        this.waiting = undefined;
        waiting?.();
    }
}
class Thread {
    pool;
    jobs = new Map();
    worker;
    constructor(file, pool, onGone) {
        this.pool = pool;
        this.worker = new Worker(file);
        this.worker.unref();
        this.post({ op: 'memory', memory: pool.memory });
        this.worker.on('message', (message) => {
            const job = this.jobs.get(message.id);
            if (!job)
                return;
            if (message.op === 'took')
                return job.took(message.slot);
            this.jobs.delete(message.id);
            if (this.jobs.size === 0)
                this.worker.unref();
            if (message.op === 'done')
                job.done(message.result);
            else
                job.failed(fromMessage(message.error));
        });
        const fail = (error) => {
            onGone(this);
            for (const job of this.jobs.values())
                job.failed(new Error(`the extraction thread stopped: ${error.message}`));
            this.jobs.clear();
        };
        this.worker.on('error', fail);
        this.worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
    }
    post(message) {
        this.worker.postMessage(message);
    }
    /** Gives the thread an archive: `first` is its `start` (bytes to follow) or its `fetch`. */
    open(first) {
        const job = new Job(first.id, (message) => this.post(message), this.pool, first.op === 'start');
        this.jobs.set(first.id, job);
        // A thread with work keeps the process alive; an idle one does not.
        this.worker.ref();
        this.post(first);
        return job;
    }
    async terminate() {
        await this.worker.terminate();
    }
}
class ThreadPool {
    file;
    size;
    threads = [];
    pool;
    nextId = 1;
    constructor(file, size, concurrency) {
        this.file = file;
        this.size = size;
        this.pool = new SlotPool(buffersPerJob * concurrency);
    }
    async extract(source, stages, spec) {
        const thread = this.leastBusy();
        const job = thread.open({ op: 'start', id: this.nextId++, spec });
        let streamError;
        try {
            await pipeline([source, ...stages, job.sender]);
        }
        catch (error) {
            streamError = error; // pipeline rejects with the failing stream's error
            thread.post({ op: 'abort', id: job.id });
        }
        // Wait for the extraction to stop writing in every case: the caller removes the folder next.
        try {
            const result = await job.result;
            if (streamError !== undefined)
                throw streamError;
            return result;
        }
        catch (error) {
            throw streamError ?? error;
        }
    }
    async fetch(get, spec, options) {
        const thread = this.leastBusy();
        const id = this.nextId++;
        const { stallMs, expectedBytes, signal } = options;
        const job = thread.open({ op: 'fetch', id, get, spec, stallMs, expectedBytes });
        const abort = () => thread.post({ op: 'abort', id });
        signal?.addEventListener('abort', abort, { once: true });
        try {
            return await job.result;
        }
        finally {
            signal?.removeEventListener('abort', abort);
        }
    }
    /** Archives whose extraction has not yet stopped. */
    get active() {
        return this.threads.reduce((sum, thread) => sum + thread.jobs.size, 0);
    }
    async close() {
        await Promise.all(this.threads.splice(0).map((thread) => thread.terminate()));
    }
    leastBusy() {
        if (this.threads.length < this.size) {
            const thread = new Thread(this.file, this.pool, (gone) => {
                const at = this.threads.indexOf(gone);
                if (at !== -1)
                    this.threads.splice(at, 1);
            });
            this.threads.push(thread);
            return thread;
        }
        return this.threads.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a));
    }
}
/** dist/extract-worker/index.js, beside or above the running bundle (dist/index.js, dist/restore/index.js, ...). */
function workerFile() {
    const here = path.dirname(fileURLToPath(import.meta.url));
    return [path.join(here, 'extract-worker', 'index.js'), path.join(here, '..', 'extract-worker', 'index.js')].find((file) => existsSync(file));
}
let shared;
/** One thread per core, but no more than `concurrency` (the large archives in flight at once). */
function extractionThreads(concurrency, cores = availableParallelism()) {
    return Math.max(1, Math.min(concurrency, cores));
}
function extractor(concurrency) {
    if (shared)
        return shared;
    const file = workerFile();
    shared = file ? new ThreadPool(file, extractionThreads(concurrency), concurrency) : extractOnThisThread;
    return shared;
}

;// CONCATENATED MODULE: ./src/archive/extract-worker.ts


// Entry of dist/extract-worker/: a thread that hashes, decompresses and unpacks archives the main thread
// downloads (extract-pool.ts says why and how).
if (external_node_worker_threads_namespaceObject.parentPort)
    serveExtractions(external_node_worker_threads_namespaceObject.parentPort);

