// The image side of a training set, checked before training starts: where the images are (the
// --images folder, else the data file's images/ folder, else its own folder) and that every
// example's image is there. A missing image fails the run at once, naming the record and the
// example, rather than at the step whose batch holds it; under --skip-bad such examples (and,
// with `decode`, images that do not decode) are left out and counted instead.
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { DataError, type SkippedRecord } from '../data/errors.ts';
import { decodeImage } from '../data/image/decode.ts';
import type { SourceRef } from '../data/types.ts';

/** Appended to a bad-example error when --skip-bad was not given. */
export const SKIP_BAD_HINT = ' (--skip-bad checks every image first and leaves such examples out)';

export function imageRootFor(file: string, images: string | null | undefined): string {
  if (images) return images;
  const beside = join(dirname(file), 'images');
  return existsSync(beside) ? beside : dirname(file);
}

/** What the checks need to know of an example. */
export interface ImageRef {
  id: string;
  image?: string | undefined;
  source: SourceRef;
}

export interface ImageCheckOptions {
  skipBad: boolean;
  /** Also decode every image once (under skipBad: a corrupt file is found before training). */
  decode: boolean;
}

/** The record's location and the example's id, for errors about one example. */
export function exampleError(e: ImageRef, reason: string): DataError {
  return new DataError({ file: e.source.file, line: e.source.line, field: 'image' }, `example '${e.id}': ${reason}`);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

async function firstDecodeFailure(paths: readonly string[], concurrency: number): Promise<Map<string, string>> {
  const failures = new Map<string, string>();
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, paths.length) }, async () => {
    while (next < paths.length) {
      const path = paths[next++]!;
      try {
        await decodeImage(path);
      } catch (err) {
        failures.set(path, err instanceof DataError ? err.reason : (err as Error).message);
      }
    }
  }));
  return failures;
}

/**
 * The examples whose images exist (and decode, with `decode`). Without skipBad the first bad one
 * is an Error; with it, bad examples are returned as skipped records.
 */
export async function checkImages<T extends ImageRef>(examples: readonly T[], root: string, opts: ImageCheckOptions): Promise<{ kept: T[]; skipped: SkippedRecord[] }> {
  const pathOf = (e: T) => (e.image === undefined ? null : isAbsolute(e.image) ? e.image : join(root, e.image));
  const distinct = [...new Set(examples.map(pathOf).filter((p): p is string => p !== null))];
  const bad = new Map<string, string>();
  for (const p of distinct) if (!isFile(p)) bad.set(p, `image file not found: ${p}`);
  if (bad.size === distinct.length && distinct.length > 0) {
    // Nothing found at all: the image folder is wrong, not the examples.
    throw new DataError({ file: examples[0]!.source.file }, `none of the ${distinct.length} images exists under ${root} (e.g. ${distinct[0]}); pass the image folder with --images DIR`);
  }
  if (opts.decode) {
    const failures = await firstDecodeFailure(distinct.filter((p) => !bad.has(p)), 4);
    for (const [p, reason] of failures) bad.set(p, reason);
  }
  const kept: T[] = [];
  const skipped: SkippedRecord[] = [];
  for (const e of examples) {
    const p = pathOf(e);
    const reason = p === null ? undefined : bad.get(p);
    if (reason === undefined) {
      kept.push(e);
      continue;
    }
    const err = exampleError(e, reason);
    if (!opts.skipBad) throw new DataError(err.location, `${err.reason} (--skip-bad leaves such examples out)`);
    skipped.push({ location: err.location, reason: err.reason, message: err.message });
  }
  return { kept, skipped };
}

/** One line about what was left out: "skipped 3 bad examples (first: ...)". */
export function skippedSummary(skipped: readonly SkippedRecord[], what = 'examples'): string | null {
  if (skipped.length === 0) return null;
  return `--skip-bad: skipped ${skipped.length} bad ${skipped.length === 1 ? what.replace(/s$/, '') : what} (first: ${skipped[0]!.message})`;
}
