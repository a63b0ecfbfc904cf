// Loads the native addon once, loudly: which file, which libtorch, and, when loading fails,
// why (missing libtorch libraries, a stale build for another libtorch) and what to run.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NativeAddon } from './native-types.ts';

export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What scripts/setup/libtorch.mjs chose at install time (build/libtorch.json). */
export interface LibtorchChoice {
  source: 'LIBTORCH' | 'python' | 'wheel' | 'system';
  dir: string;
  libDir: string;
  version: string;
  cuda: string | null;
  reason: string;
  tried: { source: string; result: string }[];
}

export interface AddonLocation {
  file: string;
  kind: 'env' | 'build' | 'prebuild';
}

export function readLibtorchChoice(): LibtorchChoice | null {
  const file = join(PACKAGE_ROOT, 'build', 'libtorch.json');
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as LibtorchChoice;
}

/** The addon file to load: MEDTUNE_ADDON, else the local build. */
export function locateAddon(): AddonLocation | null {
  const fromEnv = process.env['MEDTUNE_ADDON'];
  if (fromEnv) return { file: fromEnv, kind: 'env' };
  const built = join(PACKAGE_ROOT, 'build', 'Release', 'medtune.node');
  if (existsSync(built)) return { file: built, kind: 'build' };
  return null;
}

let loaded: { addon: NativeAddon; location: AddonLocation } | null = null;
let loadError: Error | null = null;

function explainLoadFailure(location: AddonLocation | null, cause: unknown): Error {
  const choice = readLibtorchChoice();
  const lines = ['medtune: the native addon could not be loaded.'];
  if (!location) {
    lines.push('No build/Release/medtune.node: the addon was never built (was `npm install` run with scripts disabled?).');
  } else {
    lines.push(`File: ${location.file}`);
    const message = cause instanceof Error ? cause.message : String(cause);
    lines.push(`Cause: ${message}`);
    if (/libtorch|libc10|cannot open shared object/.test(message))
      lines.push(`The libtorch it was linked against is missing${choice ? ` (expected in ${choice.libDir})` : ''}.`);
    if (/undefined symbol/.test(message)) lines.push('The addon was built for a different libtorch than the one found now.');
  }
  if (choice) lines.push(`libtorch chosen at install: ${choice.version} from ${choice.source} (${choice.dir})`);
  lines.push('Fix: run `node scripts/build-addon.mjs --force` in the medtune package (or `npm rebuild medtune`).');
  return new Error(lines.join('\n'), { cause });
}

/** Loads the addon (once). Throws an explanatory Error when it cannot. */
export function native(): NativeAddon {
  if (loaded) return loaded.addon;
  if (loadError) throw loadError;
  const location = locateAddon();
  try {
    if (!location) throw new Error('not built');
    const addon = createRequire(import.meta.url)(location.file) as NativeAddon;
    const choice = readLibtorchChoice();
    const built = addon.buildInfo();
    if (choice && location.kind === 'build' && choice.version !== built.torchVersion) {
      throw new Error(`the addon was built against libtorch ${built.torchVersion} but build/libtorch.json names ${choice.version}`);
    }
    loaded = { addon, location };
    return addon;
  } catch (err) {
    loadError = explainLoadFailure(location, err);
    throw loadError;
  }
}

/** The loaded addon typed as a part of its function table (each layer declares its own part). */
export function nativePart<T>(): T {
  return native() as unknown as T;
}

/** Where the addon was loaded from (after a successful `native()`). */
export function addonLocation(): AddonLocation | null {
  return loaded?.location ?? null;
}
