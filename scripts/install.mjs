#!/usr/bin/env node
// `npm install` hook: find libtorch, then use a prebuilt addon that matches it or build one,
// and say which of the two happened (lib/torch/native.ts and `medtune doctor` read the
// decision from build/addon.json).
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon, recordAddonChoice, resolveLibtorch } from './build-addon.mjs';
import { chooseAddon, tryPrebuild } from './setup/addon-choice.mjs';
import { variantTag } from '../lib/torch/prebuilds.mjs';

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
      // When libtorch itself cannot be loaded, a source build links but cannot load either.
      if (/could not load .*libtorch\.so/.test(err.message)) {
        console.log(`medtune: note: that failure is in libtorch itself (${libtorch.libDir}); the addon will not load until its libraries are installed${libtorch.cuda ? ' (a CUDA libtorch needs its nvidia-* wheels or a CUDA toolkit)' : ''}`);
      }
    }
  } else {
    console.log(`medtune: ${choice.reason}; the addon is built from source (cmake-js)`);
  }
  if (!done) buildAddon({ libtorch });
} catch (err) {
  console.error(`\n${err.message}\n`);
  process.exit(1);
}
