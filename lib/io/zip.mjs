// Minimal ZIP reader (stored and deflated entries, ZIP64 sizes). Used by the install script to
// unpack libtorch from a torch wheel without Python or `unzip`, and by checkpoint readers.
import { closeSync, mkdirSync, openSync, readSync, writeSync, fstatSync, renameSync } from 'node:fs';
import { dirname, join, normalize, isAbsolute } from 'node:path';
import { inflateRawSync } from 'node:zlib';

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;

function readAt(fd, position, length) {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new Error(`unexpected end of archive at byte ${position + done}`);
    done += n;
  }
  return buf;
}

function findEndOfCentralDirectory(fd, size) {
  if (size < 22) throw new Error(`not a zip archive (only ${size} bytes)`);
  const tail = Math.min(size, 65557);
  const buf = readAt(fd, size - tail, tail);
  for (let i = tail - 22; i >= 0; i--) {
    if (buf.readUInt32LE(i) === EOCD_SIG) return { buf, offset: i };
  }
  throw new Error('not a zip archive, or a truncated one (no end-of-central-directory record)');
}

/**
 * Lists the archive's entries: name, compression method, sizes, CRC-32 and local header offset.
 * Offsets and sizes are checked against the file, so a truncated or corrupt archive is an Error
 * that says what is wrong.
 * @param {string} file
 * @returns {ZipEntry[]}
 */
export function listZip(file) {
  const fd = openSync(file, 'r');
  try {
    return listZipFd(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * @typedef {{ name: string, method: number, compressedSize: number, uncompressedSize: number, crc32: number, localOffset: number, mode: number }} ZipEntry
 */

/**
 * listZip on an open file descriptor.
 * @param {number} fd
 * @returns {ZipEntry[]}
 */
export function listZipFd(fd) {
  const size = fstatSync(fd).size;
  const { buf, offset } = findEndOfCentralDirectory(fd, size);
  let count = buf.readUInt16LE(offset + 10);
  let cdSize = buf.readUInt32LE(offset + 12);
  let cdOffset = buf.readUInt32LE(offset + 16);
  if (offset >= 20 && buf.readUInt32LE(offset - 20) === ZIP64_LOCATOR_SIG) {
    const eocd64 = Number(buf.readBigUInt64LE(offset - 20 + 8));
    if (eocd64 + 56 > size) throw new Error(`corrupt zip: ZIP64 end record at byte ${eocd64} lies past the end of the file (${size} bytes)`);
    const rec = readAt(fd, eocd64, 56);
    if (rec.readUInt32LE(0) !== ZIP64_EOCD_SIG) throw new Error(`corrupt zip: no ZIP64 end record at byte ${eocd64}`);
    count = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > size) {
    throw new Error(`truncated or corrupt zip: the central directory (byte ${cdOffset}, ${cdSize} bytes) extends past the end of the file (${size} bytes)`);
  }
  const cd = readAt(fd, cdOffset, cdSize);
  const entries = [];
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL_SIG) throw new Error(`corrupt zip: central directory entry ${i} of ${count} is missing or damaged`);
    const method = cd.readUInt16LE(p + 10);
    const crc32 = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let uncompressedSize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const externalAttr = cd.readUInt32LE(p + 38);
    let localOffset = cd.readUInt32LE(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw new Error(`corrupt zip: central directory entry ${i} runs past the directory`);
    const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
    // ZIP64 extra field: the 0xFFFFFFFF sizes/offset are stored there, in this order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = cd.readUInt16LE(e);
      const len = cd.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        const end = Math.min(q + len, extraEnd);
        const next = () => {
          if (q + 8 > end) throw new Error(`corrupt zip: ZIP64 field of entry ${name} is too short`);
          q += 8;
          return Number(cd.readBigUInt64LE(q - 8));
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localOffset === 0xffffffff) localOffset = next();
      }
      e += 4 + len;
    }
    if (localOffset + 30 > size) throw new Error(`truncated or corrupt zip: entry ${name} starts at byte ${localOffset}, past the end of the file (${size} bytes)`);
    entries.push({ name, method, compressedSize, uncompressedSize, crc32, localOffset, mode: (externalAttr >>> 16) & 0o777 });
    p = extraEnd + commentLen;
  }
  return entries;
}

/**
 * Where an entry's (compressed) bytes start: after its local header, whose extra field may differ
 * from the central directory's (PyTorch pads it to align tensor data).
 * @param {number} fd
 * @param {ZipEntry} entry
 * @returns {number}
 */
export function entryDataOffset(fd, entry) {
  const header = readAt(fd, entry.localOffset, 30);
  if (header.readUInt32LE(0) !== LOCAL_SIG) throw new Error(`corrupt zip: no local header for ${entry.name} at byte ${entry.localOffset}`);
  return entry.localOffset + 30 + header.readUInt16LE(26) + header.readUInt16LE(28);
}

/**
 * Extracts the entries whose names pass `filter` below `destDir`. Each file is written to a
 * temporary name and renamed, so an interrupted extraction never leaves a truncated library.
 */
/**
 * @param {string} file
 * @param {string} destDir
 * @param {(name: string) => boolean} [filter]
 * @returns {number} the number of files written
 */
export function extractZip(file, destDir, filter = () => true) {
  const entries = listZip(file).filter((e) => !e.name.endsWith('/') && filter(e.name));
  const fd = openSync(file, 'r');
  try {
    for (const entry of entries) {
      const rel = normalize(entry.name);
      if (isAbsolute(rel) || rel.startsWith('..')) throw new Error(`refusing unsafe path in archive: ${entry.name}`);
      const dataStart = entryDataOffset(fd, entry);
      const raw = readAt(fd, dataStart, entry.compressedSize);
      let data;
      if (entry.method === 0) data = raw;
      else if (entry.method === 8) data = inflateRawSync(raw);
      else throw new Error(`unsupported compression method ${entry.method} for ${entry.name}`);
      if (data.length !== entry.uncompressedSize) throw new Error(`size mismatch extracting ${entry.name}`);
      const out = join(destDir, rel);
      mkdirSync(dirname(out), { recursive: true });
      const tmp = `${out}.partial`;
      const wfd = openSync(tmp, 'w', entry.mode || 0o644);
      try { writeSync(wfd, data); } finally { closeSync(wfd); }
      renameSync(tmp, out);
    }
    return entries.length;
  } finally {
    closeSync(fd);
  }
}
