#!/usr/bin/env node
// `npm run prebuild`: relocatable prebuilt binaries, made with prebuildify, one per libtorch
// variant, into prebuilds/<platform>-<arch>/medtune.torch<version>.<cpu|cuXYZ>.napi.<libc>.node:
//   - the libtorch the installer finds (LIBTORCH, Python torch, torch wheel, system): usually cpu;
//   - a CUDA torch wheel from the local package index, unpacked without pip by
//     scripts/setup/cuda-libtorch.mjs and compiled against with the CUDA toolkit's nvcc (no GPU
//     needed), unless --no-cuda.
// Each is checked after the build (no RPATH left; libtorch_cuda NEEDED in CUDA builds; loads
// against its libtorch where that libtorch can be loaded) and recorded in prebuilds/manifest.json
// with the hash of the sources it came from.
//
// Usage: npm run prebuild [-- --libtorch DIR ...] [--no-cuda] [--cuda-only] [--cuda-runtime]
//   --libtorch DIR   build for these libtorch folders only (repeatable)
//   --cuda-runtime   also unpack the CUDA libraries (~2 GB) so the CUDA prebuild can be loaded here
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { resolveLibtorch, writeJsonAtomic } from './build-addon.mjs';
import { MANIFEST, readManifest, tryPrebuild } from './setup/addon-choice.mjs';
import { sourceStamp } from './setup/addon-stamp.mjs';
import { findCudaTorchWheel, prepareCudaLibtorch } from './setup/cuda-libtorch.mjs';
import { newestVersions, readElfDynamic } from './setup/elf.mjs';
import { describeLibtorch } from './setup/libtorch.mjs';
import { PREBUILDS_DIR, prebuildName, variantTag } from '../lib/torch/prebuilds.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const prebuildify = promisify(require('prebuildify'));

const { values } = parseArgs({
  options: {
    libtorch: { type: 'string', multiple: true },
    'no-cuda': { type: 'boolean', default: false },
    'cuda-only': { type: 'boolean', default: false },
    'cuda-runtime': { type: 'boolean', default: false },
  },
});

function targets() {
  if (values.libtorch?.length) {
    return values.libtorch.map((d) => {
      const info = describeLibtorch(resolve(d));
      if (!info.version || !info.cmakeDir) throw new Error(`--libtorch ${d}: not a libtorch folder (no version header or TorchConfig.cmake)`);
      return { ...info, source: 'LIBTORCH', reason: `--libtorch ${d}` };
    });
  }
  const out = [];
  if (!values['cuda-only']) out.push(resolveLibtorch());
  if (!values['no-cuda'] && !out.some((t) => t.cuda)) {
    const wheel = findCudaTorchWheel();
    if (!wheel) console.log('medtune: no CUDA torch wheel in the local package index; no CUDA prebuild (set MEDTUNE_TORCH_CUDA_WHEEL)');
    else {
      const prepared = prepareCudaLibtorch({ wheel, runtime: values['cuda-runtime'] });
      console.log(`medtune: CUDA libtorch ${prepared.libtorch.version} (CUDA ${prepared.libtorch.cuda}) from ${wheel}`);
      out.push({ ...prepared.libtorch, source: 'wheel', wheel, reason: `CUDA torch wheel ${wheel}` });
    }
  }
  return out;
}

/** What makes a prebuild relocatable and complete, read from its dynamic section. */
function linkCheck(file, libtorch) {
  const dyn = readElfDynamic(file);
  const problems = [];
  if (dyn.rpath || dyn.runpath) problems.push(`it still has an RPATH/RUNPATH (${dyn.rpath ?? dyn.runpath})`);
  for (const lib of ['libtorch.so', 'libtorch_cpu.so', 'libc10.so', ...(libtorch.cuda ? ['libtorch_cuda.so', 'libc10_cuda.so'] : [])]) {
    if (!dyn.needed.includes(lib)) problems.push(`${lib} is not NEEDED`);
  }
  return { needed: dyn.needed, requires: newestVersions(dyn), problems };
}

async function buildOne(libtorch, stamp) {
  const tag = `torch${libtorch.version}-${variantTag(libtorch)}`;
  const buildDir = join(root, 'build', 'prebuild', tag);
  const stageDir = join(buildDir, 'stage');
  rmSync(stageDir, { recursive: true, force: true });
  mkdirSync(stageDir, { recursive: true });
  const name = prebuildName(libtorch);
  process.env.MEDTUNE_PREBUILD_JOB = JSON.stringify({ libtorch, buildDir, stageDir });
  const started = Date.now();
  await prebuildify({
    cwd: stageDir, out: root, name, napi: true, tagLibc: true, strip: true,
    targets: [`node@${process.versions.node}`],
    nodeGyp: join(root, 'scripts/setup/prebuild-compile.mjs'),
  });
  const seconds = (Date.now() - started) / 1000;
  const dir = join(root, PREBUILDS_DIR, `${process.platform}-${process.arch}`);
  // prebuildify appends the libc tag it detected (glibc, musl on Alpine).
  const made = existsSync(dir) ? readdirSync(dir).find((f) => f.startsWith(`${name}.`) && f.endsWith('.node')) : undefined;
  if (!made) throw new Error(`prebuildify finished but there is no ${name}.*.node in ${dir}`);
  const file = join(dir, made);
  const check = linkCheck(file, libtorch);
  if (check.problems.length) throw new Error(`${relative(root, file)} is not a usable prebuild: ${check.problems.join('; ')}`);
  let loads;
  try {
    const info = tryPrebuild(root, file, libtorch);
    loads = `yes (reports libtorch ${info.torchVersion}, ${info.variant}${info.cudaVersion ? ` ${info.cudaVersion}` : ''})`;
  } catch (err) {
    loads = `not on this machine: ${err.message}`;
  }
  const bytes = readFileSync(file);
  return {
    file: relative(join(root, PREBUILDS_DIR), file), torchVersion: libtorch.version, variant: variantTag(libtorch), cuda: libtorch.cuda,
    size: statSync(file).size, sha256: createHash('sha256').update(bytes).digest('hex'), sourceStamp: stamp,
    builtAt: new Date().toISOString(), buildSeconds: Math.round(seconds), libtorch: { source: libtorch.source, dir: libtorch.dir, wheel: libtorch.wheel ?? null },
    needed: check.needed, requires: check.requires, loads,
  };
}

try {
  const stamp = sourceStamp(root);
  const made = [];
  for (const libtorch of targets()) made.push(await buildOne(libtorch, stamp));
  const manifestFile = join(root, PREBUILDS_DIR, MANIFEST);
  const kept = (readManifest(root)?.prebuilds ?? []).filter((p) => !made.some((m) => m.file === p.file) && existsSync(join(root, PREBUILDS_DIR, p.file)));
  writeJsonAtomic(manifestFile, { prebuilds: [...kept, ...made].sort((a, b) => a.file.localeCompare(b.file)) });
  console.log('\nmedtune: prebuilt binaries');
  for (const m of made) {
    console.log(`  ${PREBUILDS_DIR}/${m.file}  ${(m.size / 2 ** 20).toFixed(2)} MiB  built in ${m.buildSeconds} s`);
    console.log(`    NEEDED ${m.needed.join(' ')}`);
    console.log(`    needs at least ${Object.entries(m.requires).filter(([f]) => /^lib(c|stdc\+\+)\.so/.test(f)).map(([, v]) => v).join(', ')}`);
    console.log(`    loads here: ${m.loads}`);
  }
} catch (err) {
  console.error(`\n${err.message}`);
  process.exit(1);
}
