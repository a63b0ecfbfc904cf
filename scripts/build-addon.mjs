#!/usr/bin/env node
// Builds the native addon with cmake-js against the libtorch that scripts/setup/libtorch.mjs
// chooses. Skips the build when build/build-stamp.json says the sources and libtorch are
// unchanged. `--force` rebuilds anyway. Records the result in build/addon.json, which
// lib/torch/native.ts reads to know which binary to load (a source build or a prebuild).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { locateCudaToolkit, locateLibtorch } from './setup/libtorch.mjs';
import { addonStamp } from './setup/addon-stamp.mjs';
import { variantTag } from '../lib/torch/prebuilds.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

export function resolveLibtorch() {
  const libtorch = locateLibtorch(root);
  mkdirSync(join(root, 'build'), { recursive: true });
  writeJsonAtomic(join(root, 'build/libtorch.json'), { ...libtorch, chosenAt: new Date().toISOString() });
  const variant = libtorch.cuda ? `CUDA ${libtorch.cuda}` : 'CPU';
  console.log(`medtune: libtorch ${libtorch.version} (${variant}) from ${libtorch.source}: ${libtorch.reason}`);
  for (const t of libtorch.tried.filter((t) => t.result !== 'chosen')) console.log(`medtune:   passed over ${t.source}: ${t.result}`);
  return libtorch;
}

export function writeJsonAtomic(file, value) {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}

/**
 * Records which binary lib/torch/native.ts should load (build/addon.json). `file` is relative
 * to the package root so that the package folder can move.
 */
export function recordAddonChoice(choice) {
  mkdirSync(join(root, 'build'), { recursive: true });
  writeJsonAtomic(join(root, 'build/addon.json'), { ...choice, file: relative(root, choice.file), chosenAt: new Date().toISOString() });
}

/** The cmake-js command line for `libtorch`, building into `outDir`. */
export function cmakeJsArgs({ libtorch, outDir, prebuild = false, jobs }) {
  const args = [require.resolve('cmake-js/bin/cmake-js'), 'compile', '--out', outDir, '--parallel', String(jobs),
    `--CDTorch_DIR=${libtorch.cmakeDir}`, `--CDMEDTUNE_PREBUILD=${prebuild ? 'ON' : 'OFF'}`, '--log-level', 'warn'];
  if (libtorch.cuda) {
    const toolkit = locateCudaToolkit(libtorch.cuda);
    console.log(`medtune: CUDA toolkit ${toolkit.version}: ${toolkit.reason}`);
    // FindCUDA (Caffe2's config) reads CUDA_TOOLKIT_ROOT_DIR; FindCUDAToolkit and
    // enable_language(CUDA) read CUDAToolkit_ROOT and CMAKE_CUDA_COMPILER.
    args.push(`--CDCUDA_TOOLKIT_ROOT_DIR=${toolkit.root}`, `--CDCUDAToolkit_ROOT=${toolkit.root}`, `--CDCMAKE_CUDA_COMPILER=${toolkit.nvcc}`);
  }
  return args;
}

/**
 * `cmake-js compile` configures only a tree that has no CMakeCache.txt, so a tree configured for
 * another libtorch (or toolkit, or prebuild setting) would silently keep linking the old one.
 * Forget such a configuration; the next compile configures afresh with the current -D values.
 */
export function dropStaleConfiguration(outDir, args) {
  const cache = join(outDir, 'CMakeCache.txt');
  if (!existsSync(cache)) return;
  const text = readFileSync(cache, 'utf8');
  for (const arg of args.filter((a) => a.startsWith('--CD'))) {
    const [name, value] = arg.slice(4).split(/=(.*)/s);
    const cached = text.match(new RegExp(`^${name}:[A-Z]+=(.*)$`, 'm'))?.[1];
    const same = cached === value || (value === 'ON' && cached === 'ON') || (value === 'OFF' && (cached === 'OFF' || cached === undefined));
    if (!same) {
      console.log(`medtune: ${outDir} was configured with ${name}=${cached ?? '(unset)'}; reconfiguring for ${value}`);
      rmSync(cache);
      return;
    }
  }
}

/** Compiles the addon into `outDir` (a cmake build tree) and returns the path of the .node. */
export function compileAddon({ libtorch, outDir, prebuild = false }) {
  const jobs = Number(process.env.MEDTUNE_BUILD_JOBS) || Math.max(1, cpus().length);
  const args = cmakeJsArgs({ libtorch, outDir, prebuild, jobs });
  dropStaleConfiguration(outDir, args);
  const what = `${prebuild ? 'a relocatable prebuild' : 'the native addon'} for libtorch ${libtorch.version} (${variantTag(libtorch)})`;
  console.log(`medtune: building ${what} (${jobs} jobs); the first build takes a few minutes`);
  const started = Date.now();
  execFileSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  const binary = join(outDir, 'Release', 'medtune.node');
  console.log(`medtune: built ${binary} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return binary;
}

export function buildAddon({ force = false, libtorch = resolveLibtorch() } = {}) {
  const stampFile = join(root, 'build/build-stamp.json');
  const binary = join(root, 'build/Release/medtune.node');
  const stamp = addonStamp(root, libtorch);
  const record = () => recordAddonChoice({ kind: 'build', file: binary, torchVersion: libtorch.version, variant: variantTag(libtorch), reason: 'built from source against the libtorch in build/libtorch.json' });
  if (!force && existsSync(binary) && existsSync(stampFile) && JSON.parse(readFileSync(stampFile, 'utf8')).stamp === stamp) {
    console.log('medtune: native addon is up to date (build/Release/medtune.node)');
    record();
    return binary;
  }
  compileAddon({ libtorch, outDir: join(root, 'build') });
  writeJsonAtomic(stampFile, { stamp, builtAt: new Date().toISOString() });
  record();
  return binary;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    buildAddon({ force: process.argv.includes('--force') });
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
