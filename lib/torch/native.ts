// Loads the native addon once, loudly: which file, which libtorch, and, when loading fails,
// why (missing libtorch libraries, a stale build for another libtorch) and what to run.
//
// Which file: MEDTUNE_ADDON; else what `npm install` decided (build/addon.json: a source build
// or a prebuilt binary); else, when install scripts never ran (no build/ folder), the prebuild
// that matches a libtorch discovered now, in the same order the installer uses.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { locateLibtorch } from '../../scripts/setup/libtorch.mjs';
import type { NativeAddon } from './native-types.ts';
import { loadAddonFile, parsePrebuildName, selectPrebuild, variantTag } from './prebuilds.mjs';

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

/** What the installer decided to load (build/addon.json). */
export interface AddonChoice {
  kind: 'build' | 'prebuild';
  file: string; // relative to the package root
  torchVersion: string;
  variant: string; // 'cpu' | 'cu130' ...
  reason: string;
}

export interface AddonLocation {
  file: string;
  kind: 'env' | 'build' | 'prebuild';
  /** Why this file: the installer's reason, or how it was picked at load. */
  reason: string;
  /** The libtorch it runs against (install-time choice, or discovered at load). */
  libtorch: LibtorchChoice | null;
  /** A prebuild has no RPATH: libtorch is loaded from this folder before it. */
  preloadFrom: string | null;
}

function readJson<T>(file: string): T | null {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : null;
}

export function readLibtorchChoice(): LibtorchChoice | null {
  return readJson<LibtorchChoice>(join(PACKAGE_ROOT, 'build', 'libtorch.json'));
}

export function readAddonChoice(): AddonChoice | null {
  return readJson<AddonChoice>(join(PACKAGE_ROOT, 'build', 'addon.json'));
}

/** libtorch as the installer would find it, without unpacking or writing anything. */
function discoverLibtorch(): LibtorchChoice {
  return locateLibtorch(PACKAGE_ROOT, { unpack: false }) as LibtorchChoice;
}

const isPrebuildFile = (file: string) => parsePrebuildName(file.split('/').pop() ?? '') !== null;

/** The addon file to load and why. Throws an Error saying what is missing when there is none. */
export function locateAddon(): AddonLocation {
  const fromEnv = process.env['MEDTUNE_ADDON'];
  const installed = readLibtorchChoice();
  if (fromEnv) {
    // A prebuild named by MEDTUNE_ADDON runs against LIBTORCH when that is set, else the
    // install-time libtorch.
    const libtorch = isPrebuildFile(fromEnv) ? (process.env['LIBTORCH'] || !installed ? discoverLibtorch() : installed) : installed;
    return { file: fromEnv, kind: 'env', reason: 'MEDTUNE_ADDON is set', libtorch, preloadFrom: isPrebuildFile(fromEnv) ? libtorch!.libDir : null };
  }
  const decided = readAddonChoice();
  if (decided) {
    const file = isAbsolute(decided.file) ? decided.file : join(PACKAGE_ROOT, decided.file);
    return { file, kind: decided.kind, reason: decided.reason, libtorch: installed, preloadFrom: decided.kind === 'prebuild' ? (installed?.libDir ?? null) : null };
  }
  const built = join(PACKAGE_ROOT, 'build', 'Release', 'medtune.node');
  if (existsSync(built)) return { file: built, kind: 'build', reason: 'built from source (build/Release)', libtorch: installed, preloadFrom: null };
  const libtorch = installed ?? discoverLibtorch();
  const { prebuild, reason } = selectPrebuild(PACKAGE_ROOT, libtorch);
  if (!prebuild) throw new Error(`${reason}. Build one from source: \`npm rebuild medtune\` (needs cmake and a C++ compiler).`);
  return { file: prebuild.path, kind: 'prebuild', reason: `${reason}, chosen at load (install scripts did not run)`, libtorch, preloadFrom: libtorch.libDir };
}

let loaded: { addon: NativeAddon; location: AddonLocation } | null = null;
let loadError: Error | null = null;

function explainLoadFailure(location: AddonLocation | null, cause: unknown): Error {
  const choice = location?.libtorch ?? readLibtorchChoice();
  const message = cause instanceof Error ? cause.message : String(cause);
  const lines = ['medtune: the native addon could not be loaded.'];
  if (!location) {
    lines.push(message);
  } else {
    lines.push(`File: ${location.file} (${location.kind === 'prebuild' ? 'prebuilt binary' : location.kind === 'env' ? 'MEDTUNE_ADDON' : 'built from source'})`);
    lines.push(`Cause: ${message}`);
    if (/libtorch|libc10|libcu|libnv|cannot open shared object/.test(message)) {
      lines.push(`A library it needs is missing${choice ? ` (libtorch expected in ${choice.libDir})` : ''}.`);
      if (/libcu|libnv/.test(message)) lines.push('This libtorch is a CUDA build: its CUDA libraries (pip nvidia-* wheels or a CUDA toolkit) must be installed too.');
    }
    if (/undefined symbol/.test(message)) lines.push('The addon was built for a different libtorch than the one found now.');
    if (/version `(GLIBC|GLIBCXX|CXXABI)_[\d.]+' not found/.test(message))
      lines.push('This binary needs a newer C or C++ runtime (glibc, libstdc++) than this system has; build it from source here.');
  }
  if (choice) lines.push(`libtorch: ${choice.version} (${variantTag(choice)}) from ${choice.source} (${choice.dir})`);
  lines.push('Fix: run `node scripts/build-addon.mjs --force` in the medtune package (or `npm rebuild medtune`).');
  return new Error(lines.join('\n'), { cause });
}

/** Loads the addon (once). Throws an explanatory Error when it cannot. */
export function native(): NativeAddon {
  if (loaded) return loaded.addon;
  if (loadError) throw loadError;
  let location: AddonLocation | null = null;
  try {
    location = locateAddon();
    if (!existsSync(location.file)) throw new Error(`${location.file} does not exist`);
    const addon = loadAddonFile(location.file, { preloadFrom: location.preloadFrom }) as NativeAddon;
    const built = addon.buildInfo();
    const expected = location.libtorch?.version;
    if (expected && location.kind !== 'env' && expected !== built.torchVersion) {
      throw new Error(`the addon was built against libtorch ${built.torchVersion} but the libtorch in use is ${expected}`);
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
