#!/usr/bin/env node
// `npm install` hook: find libtorch, then use a prebuilt addon that matches it or build one,
// and say which of the two happened (lib/torch/native.ts and `medtune doctor` read the
// decision from build/addon.json).
import { relative } from 'node:path';
import { buildAddon, recordAddonChoice, resolveLibtorch } from './build-addon.mjs';
import { chooseAddon, tryPrebuild } from './setup/addon-choice.mjs';
import { variantTag } from '../lib/torch/prebuilds.mjs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

if (process.env.MEDTUNE_SKIP_INSTALL === '1') {
  console.log('medtune: MEDTUNE_SKIP_INSTALL=1, not locating libtorch or building the addon');
  process.exit(0);
}
try {
  const libtorch = resolveLibtorch();
  const choice = chooseAddon(root, libtorch);
  let done = false;
  if (choice.kind === 'prebuild') {
    const shown = relative(root, choice.file);
    try {
      tryPrebuild(root, choice.file, libtorch);
      recordAddonChoice({ kind: 'prebuild', file: choice.file, torchVersion: libtorch.version, variant: variantTag(libtorch), reason: choice.reason });
      console.log(`medtune: using the prebuilt binary ${shown} (${choice.reason}); nothing to compile`);
      done = true;
    } catch (err) {
      console.log(`medtune: the prebuilt binary ${shown} does not load here (${err.message}); building from source instead`);
    }
  } else {
    console.log(`medtune: ${choice.reason}; the addon is built from source (cmake-js)`);
  }
  if (!done) buildAddon({ libtorch });
} catch (err) {
  console.error(`\n${err.message}\n`);
  process.exit(1);
}
