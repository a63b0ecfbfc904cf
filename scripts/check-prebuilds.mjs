#!/usr/bin/env node
// Checks the prebuilt binaries listed in prebuilds/manifest.json without rebuilding them: the
// file is the one recorded (size, sha256), it carries no RPATH/RUNPATH, it NEEDs libtorch,
// libtorch_cpu, libc10 and, for CUDA variants, libtorch_cuda and libc10_cuda; and, where the
// libtorch it was built against is still on this machine, it loads against it (a child process
// per binary) and reports its build and CUDA status. Exit code 1 if any check fails.
//
// Usage: node scripts/check-prebuilds.mjs
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import { readManifest } from './setup/addon-choice.mjs';
import { newestVersions, readElfDynamic } from './setup/elf.mjs';
import { PREBUILDS_DIR } from '../lib/torch/prebuilds.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = readManifest(root);
if (!manifest?.prebuilds.length) {
  console.error('no prebuilds/manifest.json: run `npm run prebuild` first');
  process.exit(1);
}
let failed = false;
for (const p of manifest.prebuilds) {
  const file = join(root, PREBUILDS_DIR, p.file);
  const problems = [];
  console.log(`${PREBUILDS_DIR}/${p.file}`);
  if (!existsSync(file)) { console.log('  MISSING'); failed = true; continue; }
  const bytes = readFileSync(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  console.log(`  ${statSync(file).size} bytes (${(statSync(file).size / 2 ** 20).toFixed(2)} MiB), sha256 ${sha256.slice(0, 16)}…, libtorch ${p.torchVersion} ${p.variant}`);
  if (sha256 !== p.sha256) problems.push('sha256 differs from the manifest');
  const dyn = readElfDynamic(file);
  console.log(`  NEEDED  ${dyn.needed.join(' ')}`);
  console.log(`  RPATH   ${dyn.rpath ?? '(none)'}    RUNPATH ${dyn.runpath ?? '(none)'}`);
  const versions = newestVersions(dyn);
  console.log(`  needs   ${['libc.so.6', 'libstdc++.so.6'].filter((f) => versions[f]).map((f) => `${f} ${versions[f]}`).join(', ')}`);
  if (dyn.rpath || dyn.runpath) problems.push('it has an RPATH/RUNPATH');
  const wanted = ['libtorch.so', 'libtorch_cpu.so', 'libc10.so', ...(p.variant === 'cpu' ? [] : ['libtorch_cuda.so', 'libc10_cuda.so'])];
  for (const lib of wanted) if (!dyn.needed.includes(lib)) problems.push(`${lib} is not NEEDED`);
  if (p.variant === 'cpu' && dyn.needed.some((l) => /cuda/.test(l))) problems.push('a cpu prebuild NEEDs a CUDA library');
  const libDir = p.libtorch?.dir ? join(p.libtorch.dir, 'lib') : null;
  if (libDir && existsSync(join(libDir, 'libtorch.so'))) {
    const loader = pathToFileURL(join(root, 'lib/torch/prebuilds.mjs')).href;
    const code = `import { loadAddonFile } from ${JSON.stringify(loader)};
      const a = loadAddonFile(${JSON.stringify(file)}, { preloadFrom: ${JSON.stringify(libDir)} });
      console.log(JSON.stringify({ build: a.buildInfo(), cuda: a.cudaStatus() }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: '' } });
    if (r.status === 0) {
      const { build, cuda } = JSON.parse(r.stdout.trim().split('\n').pop());
      console.log(`  loads against ${libDir}: libtorch ${build.torchVersion}, ${build.variant}${build.cudaVersion ? ` (CUDA ${build.cudaVersion})` : ''}, prebuild ${build.prebuild}; CUDA: ${cuda.compiled ? `${cuda.deviceCount} device(s)${cuda.reason ? `, ${cuda.reason}` : ''}` : 'not compiled in'}`);
      if (build.torchVersion !== p.torchVersion || !build.prebuild || (build.variant === 'cuda') !== (p.variant !== 'cpu')) problems.push('it reports another build than its name says');
    } else {
      const why = r.stderr.split('\n').find((l) => /could not load|cannot open shared object|Error:/.test(l)) ?? r.stderr.trim().split('\n').pop();
      console.log(`  does not load here: ${why?.trim()}${p.variant !== 'cpu' ? ' (for CUDA: node scripts/setup/cuda-libtorch.mjs --runtime unpacks its libraries)' : ''}`);
    }
  } else {
    console.log('  (its libtorch is not on this machine; load check skipped)');
  }
  for (const pr of problems) console.log(`  FAIL: ${pr}`);
  failed ||= problems.length > 0;
}
process.exit(failed ? 1 : 0);
