#!/usr/bin/env node
// Builds the native addon with cmake-js against the libtorch that scripts/setup/libtorch.mjs
// chooses. Skips the build when build/build-stamp.json says the sources and libtorch are
// unchanged. `--force` rebuilds anyway.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { locateLibtorch } from './setup/libtorch.mjs';
import { addonStamp } from './setup/addon-stamp.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

export function resolveLibtorch() {
  const libtorch = locateLibtorch(root);
  mkdirSync(join(root, 'build'), { recursive: true });
  writeFileSync(join(root, 'build/libtorch.json'), `${JSON.stringify({ ...libtorch, chosenAt: new Date().toISOString() }, null, 2)}\n`);
  const variant = libtorch.cuda ? `CUDA ${libtorch.cuda}` : 'CPU';
  console.log(`medtune: libtorch ${libtorch.version} (${variant}) from ${libtorch.source}: ${libtorch.reason}`);
  for (const t of libtorch.tried.filter((t) => t.result !== 'chosen')) console.log(`medtune:   passed over ${t.source}: ${t.result}`);
  return libtorch;
}

/** Whether build/Release/medtune.node was built from the current sources and this libtorch. */
export function addonUpToDate(libtorch) {
  const stampFile = join(root, 'build/build-stamp.json');
  const binary = join(root, 'build/Release/medtune.node');
  return existsSync(binary) && existsSync(stampFile) && JSON.parse(readFileSync(stampFile, 'utf8')).stamp === addonStamp(root, libtorch);
}

export function buildAddon({ force = false, libtorch = resolveLibtorch() } = {}) {
  const stampFile = join(root, 'build/build-stamp.json');
  const binary = join(root, 'build/Release/medtune.node');
  const stamp = addonStamp(root, libtorch);
  if (!force && addonUpToDate(libtorch)) {
    console.log('medtune: native addon is up to date (build/Release/medtune.node)');
    return binary;
  }
  const jobs = Number(process.env.MEDTUNE_BUILD_JOBS) || Math.max(1, cpus().length);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, 'compile', '--out', join(root, 'build'), '--parallel', String(jobs), `--CDTorch_DIR=${libtorch.cmakeDir}`, '--log-level', 'warn'];
  console.log(`medtune: building the native addon (${jobs} jobs); the first build takes a few minutes`);
  const started = Date.now();
  execFileSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  writeFileSync(stampFile, `${JSON.stringify({ stamp, builtAt: new Date().toISOString() }, null, 2)}\n`);
  console.log(`medtune: built ${binary} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return binary;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    if (process.argv.includes('--check')) {
      // Reports whether an install would rebuild, without building (used by the tests).
      const libtorch = JSON.parse(readFileSync(join(root, 'build/libtorch.json'), 'utf8'));
      console.log(addonUpToDate(libtorch) ? 'medtune: native addon is up to date' : 'medtune: native addon is stale');
      process.exit(0);
    }
    buildAddon({ force: process.argv.includes('--force') });
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
