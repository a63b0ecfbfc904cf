#!/usr/bin/env node
// prebuildify's stand-in for node-gyp (its `nodeGyp` option): prebuildify runs
// `<this> rebuild --target=… --release …` in a staging folder and then takes the .node it
// finds in <staging>/build/Release. medtune builds with cmake-js, so this compiles the
// relocatable addon for the libtorch that scripts/prebuild.mjs passes in MEDTUNE_PREBUILD_JOB
// (in its own cmake build tree, so the development build in build/ is left alone) and puts
// the result where prebuildify looks. The Node-API addon does not depend on --target.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { compileAddon } from '../build-addon.mjs';

const job = JSON.parse(process.env.MEDTUNE_PREBUILD_JOB ?? 'null');
if (!job || process.argv[2] !== 'rebuild') {
  console.error('prebuild-compile.mjs is run by scripts/prebuild.mjs through prebuildify (MEDTUNE_PREBUILD_JOB is not set)');
  process.exit(1);
}
try {
  const binary = compileAddon({ libtorch: job.libtorch, outDir: job.buildDir, prebuild: true });
  mkdirSync(join(job.stageDir, 'build', 'Release'), { recursive: true });
  copyFileSync(binary, join(job.stageDir, 'build', 'Release', 'medtune.node'));
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
