// The two containers torch.save writes, read without trusting them:
//  - zip (PyTorch >= 1.6): <name>/data.pkl, <name>/data/<key> (one record per storage, stored,
//    usually at 64-byte aligned offsets), <name>/byteorder, <name>/version ...
//  - legacy stream (_use_new_zipfile_serialization=False): pickles of the magic number, the
//    protocol version and sys info, then the object pickle, then the sorted storage keys, then
//    each storage as an int64 element count followed by its raw bytes.
// Opening an archive runs the pickle (restricted, see torch-pickle.ts) and locates every storage
// it references; the bytes of a storage are read only when asked for, once.
import { constants } from 'node:buffer';
import { open, type FileHandle } from 'node:fs/promises';
import { crc32, inflateRawSync } from 'node:zlib';
import { CheckpointError } from './errors.ts';
import { PickleError, PickleTruncatedError, type PickleSite } from './pickle.ts';
import { PyDict, PyTuple, shortDescription, type PyValue } from './pickle-values.ts';
import { parseStoragePid, StorageRef, unpickleTorch, UnsafePickleError, type PlaceholderGlobal } from './torch-pickle.ts';
import { entryDataOffset, listZipFd, type ZipEntry } from './zip.mjs';

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;

interface StorageLocation {
  /** Byte offset of the (possibly compressed) data in the file. */
  offset: number;
  /** Bytes in the file. */
  fileLength: number;
  deflated: boolean;
  /** CRC-32 of the uncompressed bytes, when the container records one. */
  crc32: number | null;
  record: string;
}

export interface TorchArchive {
  file: string;
  format: 'zip' | 'legacy';
  /** Byte order of the stored tensor data; big-endian data is swapped on reading. */
  byteOrder: 'little' | 'big';
  /** The highest pickle protocol the object pickle used. */
  pickleProtocol: number;
  /** The unpickled object (tensors are TensorRefs, unknown globals are placeholders). */
  root: PyValue;
  /** Non-allowlisted globals the pickle named. */
  placeholders: PlaceholderGlobal[];
  /** Every storage the pickle references, by key. */
  storages: Map<string, StorageRef>;
  /** Container details for the report (zip archive name and version records). */
  details: Record<string, string>;
  /**
   * The bytes of one storage in little-endian order. `itemSize` is the element size used for
   * byte swapping (the dtype of the tensors that view it).
   */
  readStorage(ref: StorageRef, itemSize: number): Promise<Buffer>;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Check each storage's CRC-32 against the zip directory (default true). */
  verifyChecksums?: boolean;
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    // One read() call moves at most 2 GiB.
    const { bytesRead } = await fh.read(buf, done, Math.min(length - done, 1 << 30), position + done);
    if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
  return buf;
}

function swapBytes(buf: Buffer, itemSize: number): void {
  if (itemSize === 2) buf.swap16();
  else if (itemSize === 4) buf.swap32();
  else if (itemSize === 8) buf.swap64();
  else if (itemSize !== 1) throw new Error(`cannot byte-swap ${itemSize}-byte elements`);
}

/** Opens a torch.save file (zip or legacy format). Errors are CheckpointErrors naming the file. */
export async function openTorchArchive(file: string, opts: OpenOptions = {}): Promise<TorchArchive> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_CORRUPT', `cannot open: ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = (await fh.stat()).size;
    const head = await readAt(fh, 0, Math.min(size, 512));
    if (head.length >= 4 && head.readUInt32LE(0) === 0x04034b50) return await openZip(fh, file, size, opts);
    if (head.length >= 262 && head.toString('latin1', 257, 262) === 'ustar')
      throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_UNSUPPORTED', 'a tar-format checkpoint (PyTorch before 0.4) is not supported; re-save it with a current torch.save');
    if (head.length >= 2 && head[0] === 0x80) return await openLegacy(fh, file, size);
    if (head.length >= 9 && head.readBigUInt64LE(0) < BigInt(size) && head[8] === 0x7b)
      throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_UNSUPPORTED', 'this is a safetensors file, not a torch.save checkpoint');
    throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_CORRUPT',
      size === 0 ? 'the file is empty' : 'not a torch.save checkpoint (neither a zip archive nor a legacy pickle stream)');
  } catch (err) {
    await fh.close();
    throw asCheckpointError(file, err);
  }
}

function asCheckpointError(file: string, err: unknown): CheckpointError {
  if (err instanceof CheckpointError) return err;
  if (err instanceof UnsafePickleError) return new CheckpointError(file, 'MEDTUNE_CHECKPOINT_UNSAFE', err.message, { cause: err });
  const message = (err as Error).message ?? String(err);
  return new CheckpointError(file, 'MEDTUNE_CHECKPOINT_CORRUPT', message, { cause: err });
}

function archive(fh: FileHandle, file: string, fields: Omit<TorchArchive, 'readStorage' | 'close' | 'file'>,
  locations: Map<string, StorageLocation>, verify: boolean): TorchArchive {
  let closed = false;
  return {
    file,
    ...fields,
    async readStorage(ref, itemSize) {
      const loc = locations.get(ref.key);
      if (!loc) throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_CORRUPT', `storage ${ref.key} has no data record`);
      if (ref.nbytes > constants.MAX_LENGTH)
        throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_UNSUPPORTED', `storage ${ref.key} holds ${ref.nbytes} bytes, more than one Node.js buffer can (${constants.MAX_LENGTH})`);
      try {
        const raw = await readAt(fh, loc.offset, loc.fileLength);
        const data = loc.deflated ? inflateRawSync(raw) : raw;
        if (data.length !== ref.nbytes)
          throw new Error(`record ${loc.record} holds ${data.length} bytes but the pickle declares ${ref.numel} ${ref.type.element.torchName} elements (${ref.nbytes} bytes)`);
        if (verify && loc.crc32 !== null && crc32(data) !== loc.crc32)
          throw new Error(`record ${loc.record} fails its CRC-32 check: the tensor data is damaged`);
        if (fields.byteOrder === 'big') swapBytes(data, itemSize);
        return data;
      } catch (err) {
        throw asCheckpointError(file, err);
      }
    },
    async close() {
      if (!closed) {
        closed = true;
        await fh.close();
      }
    },
  };
}

// ---- zip -------------------------------------------------------------------------------------

async function openZip(fh: FileHandle, file: string, size: number, opts: OpenOptions): Promise<TorchArchive> {
  let entries: ZipEntry[];
  try {
    entries = listZipFd(fh.fd);
  } catch (err) {
    throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_CORRUPT', (err as Error).message, { cause: err });
  }
  const byName = new Map(entries.map((e) => [e.name, e]));
  // torch names every record <archive name>/...; the name is the file's stem or "archive".
  const pkl = entries.find((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (!pkl) {
    const hint = entries.some((e) => e.name.endsWith('.npy')) ? ' (it looks like a NumPy .npz archive)' : '';
    throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_CORRUPT', `zip archive without a <name>/data.pkl record: not a torch.save checkpoint${hint}`);
  }
  const prefix = pkl.name.slice(0, -'data.pkl'.length);
  if (byName.has(`${prefix}constants.pkl`) || entries.some((e) => e.name.startsWith(`${prefix}code/`)))
    throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_UNSUPPORTED', 'this is a TorchScript archive (torch.jit.save); save its state_dict() with torch.save instead');

  const locate = async (entry: ZipEntry): Promise<StorageLocation> => {
    if (entry.method !== 0 && entry.method !== 8) throw new Error(`record ${entry.name} uses unsupported compression method ${entry.method}`);
    const offset = entryDataOffset(fh.fd, entry);
    if (offset + entry.compressedSize > size)
      throw new Error(`record ${entry.name} (byte ${offset}, ${entry.compressedSize} bytes) is cut short: the file ends at byte ${size}`);
    return { offset, fileLength: entry.compressedSize, deflated: entry.method === 8, crc32: entry.crc32, record: entry.name };
  };
  const readRecord = async (entry: ZipEntry): Promise<Buffer> => {
    const loc = await locate(entry);
    const raw = await readAt(fh, loc.offset, loc.fileLength);
    const data = loc.deflated ? inflateRawSync(raw) : raw;
    if (data.length !== entry.uncompressedSize) throw new Error(`record ${entry.name} has ${data.length} bytes, the directory says ${entry.uncompressedSize}`);
    if (crc32(data) !== entry.crc32) throw new Error(`record ${entry.name} fails its CRC-32 check`);
    return data;
  };
  const smallRecord = async (name: string): Promise<string | null> => {
    const entry = byName.get(`${prefix}${name}`);
    return entry && entry.uncompressedSize < 4096 ? (await readRecord(entry)).toString('utf8').trim() : null;
  };

  const byteorder = await smallRecord('byteorder');
  if (byteorder !== null && byteorder !== 'little' && byteorder !== 'big')
    throw new Error(`byteorder record says ${JSON.stringify(byteorder.slice(0, 20))}, expected "little" or "big"`);
  const details: Record<string, string> = { archiveName: prefix.slice(0, -1) };
  for (const name of ['version', '.format_version', '.storage_alignment']) {
    const value = await smallRecord(name);
    if (value !== null) details[name.replace(/^\./, '')] = value;
  }

  const pickleBytes = await readRecord(pkl);
  const storages = new Map<string, StorageRef>();
  const locations = new Map<string, StorageLocation>();
  const pending: { key: string; entry: ZipEntry }[] = [];
  const persistentLoad = (pid: PyValue, site: PickleSite): PyValue => {
    const { type, key, location, numel } = parseStoragePid(pid, site);
    const existing = storages.get(key);
    if (existing) {
      if (existing.type.element.torchName !== type.element.torchName)
        throw new PickleError(`storage ${key} is referenced as both ${existing.type.qualifiedName} and ${type.qualifiedName}`, site.offset, site.opcode);
      return existing;
    }
    const entry = byName.get(`${prefix}data/${key}`);
    if (!entry) throw new PickleError(`storage ${key} (referenced at byte ${site.offset} of data.pkl) has no record ${prefix}data/${key} in the archive`, site.offset, site.opcode);
    const ref = new StorageRef(key, type, location, numel);
    if (entry.uncompressedSize !== ref.nbytes)
      throw new PickleError(`record ${entry.name} holds ${entry.uncompressedSize} bytes but the pickle declares ${numel} ${type.element.torchName} elements (${ref.nbytes} bytes)`, site.offset, site.opcode);
    storages.set(key, ref);
    pending.push({ key, entry });
    return ref;
  };
  const result = runPickle(() => unpickleTorch(pickleBytes, persistentLoad), `${prefix}data.pkl`);
  if (result.end !== pickleBytes.length) throw new Error(`${prefix}data.pkl has ${pickleBytes.length - result.end} bytes after the pickle's STOP`);
  for (const { key, entry } of pending) locations.set(key, await locate(entry));

  return archive(fh, file, {
    format: 'zip',
    byteOrder: (byteorder ?? 'little') as 'little' | 'big',
    pickleProtocol: result.protocol,
    root: result.value,
    placeholders: result.placeholders,
    storages,
    details,
  }, locations, opts.verifyChecksums ?? true);
}

/** Runs an unpickling step; errors name the pickle they come from. */
function runPickle<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof UnsafePickleError) throw err;
    if (err instanceof PickleError) throw new PickleError(`${what}: ${err.message}`, err.offset, err.opcode);
    throw err;
  }
}

// ---- legacy ----------------------------------------------------------------------------------

async function openLegacy(fh: FileHandle, file: string, size: number): Promise<TorchArchive> {
  // The pickles come first and are small next to the storages after them; read a growing prefix
  // until each pickle parses completely.
  let buf = await readAt(fh, 0, Math.min(size, 1 << 20));
  const parse = async <T extends { end: number }>(fn: (data: Buffer) => T, what: string): Promise<T> => {
    for (;;) {
      try {
        return runPickle(() => fn(buf), what);
      } catch (err) {
        if (!(err instanceof PickleTruncatedError) || buf.length >= size) throw err;
        buf = await readAt(fh, 0, Math.min(size, buf.length * 4));
      }
    }
  };
  const noPid = (): PyValue => {
    throw new Error('unexpected persistent id in a header pickle');
  };

  const magic = await parse((d) => unpickleTorch(d, noPid, 0), 'magic number');
  if (magic.value !== LEGACY_MAGIC)
    throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_CORRUPT', `not a torch.save checkpoint: a pickle of ${shortDescription(magic.value)} where torch writes its magic number`);
  const version = await parse((d) => unpickleTorch(d, noPid, magic.end), 'protocol version');
  if (version.value !== LEGACY_PROTOCOL_VERSION) throw new Error(`legacy protocol version ${String(version.value)} is not ${LEGACY_PROTOCOL_VERSION}`);
  const sysInfo = await parse((d) => unpickleTorch(d, noPid, version.end), 'sys info');
  const littleEndian = sysInfo.value instanceof PyDict ? sysInfo.value.get('little_endian') : undefined;
  if (typeof littleEndian !== 'boolean') throw new Error('legacy sys info has no little_endian flag');

  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: PyValue, site: PickleSite): PyValue => {
    // Whole-module saves record each nn.Module class's source: ('module', cls, file, source).
    if (pid instanceof PyTuple && pid.items[0] === 'module') return pid.items[1] ?? null;
    const { type, key, location, numel, view } = parseStoragePid(pid, site);
    if (view !== null) throw new PickleError('legacy storage views (written by PyTorch before 1.0) are not supported', site.offset, site.opcode);
    const existing = storages.get(key);
    if (existing) return existing;
    const ref = new StorageRef(key, type, location, numel);
    storages.set(key, ref);
    return ref;
  };
  const main = await parse((d) => {
    storages.clear();
    return unpickleTorch(d, persistentLoad, sysInfo.end);
  }, 'object pickle');
  const keysPickle = await parse((d) => unpickleTorch(d, noPid, main.end), 'storage key list');
  const keys = Array.isArray(keysPickle.value) ? keysPickle.value : null;
  if (!keys || !keys.every((k) => typeof k === 'string')) throw new Error(`the storage key list is ${shortDescription(keysPickle.value)}, not a list of strings`);

  const locations = new Map<string, StorageLocation>();
  let pos = keysPickle.end;
  for (const key of keys as string[]) {
    const ref = storages.get(key);
    if (!ref) throw new Error(`storage ${key} is in the key list but no tensor references it`);
    if (pos + 8 > size) throw new Error(`truncated: storage ${key} should start at byte ${pos} but the file ends at byte ${size}`);
    const header = await readAt(fh, pos, 8);
    const count = Number(littleEndian ? header.readBigInt64LE(0) : header.readBigInt64BE(0));
    if (count !== ref.numel) throw new Error(`storage ${key} at byte ${pos} holds ${count} elements but the pickle declares ${ref.numel}`);
    const offset = pos + 8;
    if (offset + ref.nbytes > size) throw new Error(`truncated: storage ${key} (byte ${offset}, ${ref.nbytes} bytes) is cut short; the file ends at byte ${size}`);
    locations.set(key, { offset, fileLength: ref.nbytes, deflated: false, crc32: null, record: `storage ${key}` });
    pos = offset + ref.nbytes;
  }
  const missing = [...storages.keys()].filter((k) => !locations.has(k));
  if (missing.length) throw new Error(`storage ${missing[0]} is referenced by the pickle but missing from the file's storage list`);

  return archive(fh, file, {
    format: 'legacy',
    byteOrder: littleEndian ? 'little' : 'big',
    pickleProtocol: main.protocol,
    root: main.value,
    placeholders: main.placeholders,
    storages,
    details: {},
  }, locations, false);
}
