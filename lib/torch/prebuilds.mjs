// Prebuilt binaries of the addon (npm run prebuild): how they are named, which one fits the
// libtorch found on this machine, and how one is loaded. Plain JavaScript, because the install
// script (no TypeScript loader) and lib/torch/native.ts both use it.
//
// A prebuild is linked against one exact libtorch release and variant, so both are in its name:
//   prebuilds/linux-x64/medtune.torch2.13.0.cpu.napi.glibc.node
//   prebuilds/linux-x64/medtune.torch2.14.1.cu130.napi.glibc.node
// node-gyp-build's tag parser (which this module reuses for platform, Node-API and libc) splits
// on '.' and ignores tags it does not know ('torch2', '13', '0', 'cpu', 'cu130'); it cannot
// match a libtorch, so the torch and variant tags are matched here.
//
// A prebuild has no RPATH (it cannot know where the user's libtorch is): the loader first loads
// libtorch.so from the lib folder that libtorch discovery found, then the addon, whose NEEDED
// entries (libtorch.so, libtorch_cpu.so, libc10.so, libtorch_cuda.so ...) are then already in
// the process and are matched by soname.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, constants, platform } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
/** @type {any} */
const nodeGypBuild = require('node-gyp-build');

export const PREBUILDS_DIR = 'prebuilds';

/**
 * The variant tag of a libtorch: 'cpu', or 'cu' + CUDA major + minor ('cu130' for CUDA 13.0).
 * A CUDA libtorch whose CUDA version could not be read gets 'cuda-unknown', which no prebuild has.
 * @param {{ cuda: string | null }} libtorch
 */
export function variantTag(libtorch) {
  if (!libtorch.cuda) return 'cpu';
  const m = /^(\d+)\.(\d+)/.exec(libtorch.cuda);
  return m ? `cu${m[1]}${m[2]}` : 'cuda-unknown';
}

/**
 * The `name` handed to prebuildify; it appends '.glibc.node' (or '.musl.node').
 * @param {{ version: string, cuda: string | null }} libtorch
 */
export function prebuildName(libtorch) {
  return `medtune.torch${libtorch.version}.${variantTag(libtorch)}.napi`;
}

const NAME_PATTERN = /^medtune\.torch(\d+\.\d+\.\d+)\.(cpu|cu\d+)\.(.+\.)?node$/;

/**
 * The libtorch a prebuild file is for, or null when the name is not a medtune prebuild.
 * @param {string} file
 * @returns {{ torchVersion: string, variant: string } | null}
 */
export function parsePrebuildName(file) {
  const m = NAME_PATTERN.exec(file);
  return m ? { torchVersion: m[1], variant: m[2] } : null;
}

/**
 * @typedef {{ file: string, path: string, torchVersion: string, variant: string }} Prebuild
 */

/**
 * The prebuilds under `root` that this platform, architecture, libc and Node-API can load,
 * whatever libtorch they need (node-gyp-build's own tuple and tag rules decide that part).
 * @param {string} root package root
 * @returns {Prebuild[]}
 */
export function listPrebuilds(root) {
  const base = join(root, PREBUILDS_DIR);
  if (!existsSync(base)) return [];
  const tuples = readdirSync(base).map(nodeGypBuild.parseTuple)
    .filter(nodeGypBuild.matchTuple(platform(), arch()))
    .sort(nodeGypBuild.compareTuples);
  const out = [];
  for (const tuple of tuples) {
    const dir = join(base, tuple.name);
    for (const file of readdirSync(dir).sort()) {
      const tags = nodeGypBuild.parseTags(file);
      if (!tags || !nodeGypBuild.matchTags('node', process.versions.modules)(tags)) continue;
      const parsed = parsePrebuildName(file);
      if (parsed) out.push({ file, path: join(dir, file), ...parsed });
    }
  }
  return out;
}

/**
 * The prebuild for exactly this libtorch release and variant (a libtorch's C++ ABI changes
 * with every release, and a CUDA build links one libcudart major), or null with the reason.
 * @param {string} root
 * @param {{ version: string, cuda: string | null }} libtorch
 * @returns {{ prebuild: Prebuild | null, available: Prebuild[], reason: string }}
 */
export function selectPrebuild(root, libtorch) {
  const available = listPrebuilds(root);
  const variant = variantTag(libtorch);
  const prebuild = available.find((p) => p.torchVersion === libtorch.version && p.variant === variant) ?? null;
  const wanted = `libtorch ${libtorch.version} (${variant}) on ${platform()}-${arch()}`;
  if (prebuild) return { prebuild, available, reason: `prebuilt for ${wanted}` };
  const have = available.length ? `the package has prebuilds for ${available.map((p) => `${p.torchVersion} ${p.variant}`).join(', ')}` : 'the package has no prebuilds for this platform';
  return { prebuild: null, available, reason: `no prebuilt binary for ${wanted}; ${have}` };
}

// Not in os.constants.dlopen, same value in glibc and musl: keep the library after dlclose.
const RTLD_NODELETE = 0x1000;

/**
 * Loads libtorch.so (and through its own NEEDED entries and $ORIGIN RPATH, libtorch_cpu,
 * libc10, and for CUDA builds libtorch_cuda, libc10_cuda, libcudart) from `libDir` into the
 * process, so that a prebuild without RPATH can be loaded next.
 *
 * process.dlopen is Node's only way to dlopen; on a library that is not an addon it loads it,
 * finds no module, dlcloses it and throws "Module did not self-register". RTLD_NODELETE makes
 * that dlclose keep the library, and that one error is the expected outcome.
 * @param {string} libDir
 */
export function preloadLibtorch(libDir) {
  if (platform() !== 'linux') throw new Error(`prebuilt binaries are built for Linux only; this is ${platform()}`);
  const lib = join(libDir, 'libtorch.so');
  if (!existsSync(lib)) throw new Error(`no libtorch.so in ${libDir}`);
  try {
    process.dlopen({ exports: {} }, lib, constants.dlopen.RTLD_LAZY | RTLD_NODELETE);
  } catch (err) {
    const e = /** @type {Error & { code?: string }} */ (err);
    if (e.code === 'ERR_DLOPEN_FAILED' && /did not self-register/.test(e.message)) return;
    throw new Error(`could not load ${lib}: ${e.message}`, { cause: err });
  }
}

/**
 * Loads an addon file. With `preloadFrom` (a prebuild), libtorch is loaded from that lib folder
 * first.
 * @param {string} file
 * @param {{ preloadFrom?: string | null }} [options]
 * @returns {any} the addon's exports
 */
export function loadAddonFile(file, { preloadFrom = null } = {}) {
  if (preloadFrom) preloadLibtorch(preloadFrom);
  return require(file);
}
