#!/usr/bin/env node
// `npm install` hook: find libtorch, then use a prebuilt addon that matches it or build one.
import { buildAddon, resolveLibtorch } from './build-addon.mjs';

if (process.env.MEDTUNE_SKIP_INSTALL === '1') {
  console.log('medtune: MEDTUNE_SKIP_INSTALL=1, not locating libtorch or building the addon');
  process.exit(0);
}
try {
  const libtorch = resolveLibtorch();
  buildAddon({ libtorch });
} catch (err) {
  console.error(`\n${err.message}\n`);
  process.exit(1);
}
