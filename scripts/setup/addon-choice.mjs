// The install-time decision: use a prebuilt binary that fits the libtorch found, or build from
// source with cmake-js. Kept apart from install.mjs so tests can ask it without installing.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PREBUILDS_DIR, selectPrebuild, variantTag } from '../../lib/torch/prebuilds.mjs';
import { sourceStamp } from './addon-stamp.mjs';

export const MANIFEST = 'manifest.json';

/**
 * prebuilds/manifest.json, written by `npm run prebuild`: one entry per file with the libtorch it
 * links and the hash of the sources it was built from.
 * @returns {{ prebuilds: { file: string, sourceStamp: string, torchVersion: string, variant: string }[] } | null}
 */
export function readManifest(root) {
  const file = join(root, PREBUILDS_DIR, MANIFEST);
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null;
}

/**
 * @param {string} root package root
 * @param {{ version: string, cuda: string | null }} libtorch
 * @param {Record<string, string | undefined>} [env]
 * @returns {{ kind: 'prebuild', file: string, reason: string } | { kind: 'build', reason: string }}
 */
export function chooseAddon(root, libtorch, env = process.env) {
  if (env.MEDTUNE_BUILD_FROM_SOURCE === '1') return { kind: 'build', reason: 'MEDTUNE_BUILD_FROM_SOURCE=1 asks for a source build' };
  const { prebuild, reason } = selectPrebuild(root, libtorch);
  if (!prebuild) return { kind: 'build', reason };
  // In a development checkout the sources can be newer than `npm run prebuild`'s output.
  const entry = readManifest(root)?.prebuilds.find((p) => join(root, PREBUILDS_DIR, p.file) === prebuild.path);
  if (entry && entry.sourceStamp !== sourceStamp(root)) {
    return { kind: 'build', reason: `${relative(root, prebuild.path)} was built from other sources than csrc/ now holds (edited since \`npm run prebuild\`)` };
  }
  return { kind: 'prebuild', file: prebuild.path, reason };
}

/**
 * Loads a prebuild in a child process (so a crash cannot take the installer down) the way
 * lib/torch/native.ts will, and returns what it says it was built for, or throws with why not.
 * @returns {{ torchVersion: string, variant: 'cpu' | 'cuda', cudaVersion: string | null, prebuild: boolean }}
 */
export function tryPrebuild(root, file, libtorch) {
  const loader = pathToFileURL(join(root, 'lib/torch/prebuilds.mjs')).href;
  const code = `import { loadAddonFile } from ${JSON.stringify(loader)};
    const info = loadAddonFile(${JSON.stringify(file)}, { preloadFrom: ${JSON.stringify(libtorch.libDir)} }).buildInfo();
    console.log(JSON.stringify(info));`;
  let out;
  try {
    out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });
  } catch (err) {
    const e = /** @type {{ stderr?: string, message: string }} */ (err);
    const lines = String(e.stderr || e.message).trim().split('\n');
    throw new Error(lines.find((l) => /^(Error|could not load)|cannot open shared object|undefined symbol/.test(l.trim())) ?? lines.pop());
  }
  const info = JSON.parse(out.trim().split('\n').pop());
  if (info.torchVersion !== libtorch.version) throw new Error(`it reports libtorch ${info.torchVersion}, not ${libtorch.version}`);
  if ((info.variant === 'cuda') !== Boolean(libtorch.cuda)) throw new Error(`it is a ${info.variant} build, libtorch is ${variantTag(libtorch)}`);
  return info;
}
