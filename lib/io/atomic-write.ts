// Atomic file writes: the content goes to a temporary file next to the target, is flushed to
// disk, and is renamed over the target only when complete. A failure leaves the old file (if
// any) untouched and no partial file behind.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** Writes all of `data` at the handle's current position (write() may write less). */
export async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await fh.write(data, done, Math.min(data.length - done, 1 << 30));
    done += bytesWritten;
  }
}

/** Runs `fill` on a temporary file, then moves it to `file`. */
export async function writeFileAtomic(file: string, fill: (fh: FileHandle) => Promise<void>): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fill(fh);
    await fh.sync();
    await fh.close();
    await rename(tmp, file);
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
}

/** writeFileAtomic for text. */
export async function writeTextAtomic(file: string, text: string): Promise<void> {
  await writeFileAtomic(file, (fh) => writeAll(fh, Buffer.from(text, 'utf8')));
}

let counter = 0;

/** The synchronous form, for small files (JSON configs, trainer state). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${counter++}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
