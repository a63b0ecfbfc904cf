#!/usr/bin/env node
// Prepares a CUDA libtorch on a machine without a GPU, from the local package index, so that
// CUDA builds (and CUDA prebuilds) can be made here. Nothing is pip-installed: the wheels are
// unpacked into .libtorch/<torch wheel>/ in site-packages layout:
//   torch/{include,lib,share,version.py}   libtorch (scripts/setup/libtorch.mjs unpackTorchWheel)
//   nvidia/<pkg>/include                   headers of the nvidia-* wheels torch depends on
//   nvidia/<pkg>/lib/<soname>              only with --runtime: the shared libraries that
//                                          libtorch_cuda needs to load (about 2 GB), so the
//                                          CUDA addon can be loaded and checked without a GPU
// Linking the addon needs none of the nvidia-* wheels: it links libtorch, libtorch_cuda,
// libc10_cuda and the toolkit's libcudart only (see README "Prebuilt binaries").
//
// Usage: node scripts/setup/cuda-libtorch.mjs [--wheel torch-….whl] [--runtime] [--json]
//   The torch wheel is MEDTUNE_TORCH_CUDA_WHEEL, --wheel, or the newest torch wheel with
//   libtorch_cuda in pip's local find-links folders and file:// indexes.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { extractZip, listZip } from '../../lib/io/zip.mjs';
import { readElfDynamic } from './elf.mjs';
import { describeLibtorch, locateCudaToolkit, unpackTorchWheel, wheelDestination } from './libtorch.mjs';
import { findLocalWheels, normalizeProject } from './pip-index.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const wheelVersion = (file) => basename(file).split('-')[1];
const byNewest = (a, b) => wheelVersion(b).localeCompare(wheelVersion(a), 'en', { numeric: true });

/** Newest local torch wheel that contains libtorch_cuda (the PyPI Linux default is CUDA). */
export function findCudaTorchWheel() {
  if (process.env.MEDTUNE_TORCH_CUDA_WHEEL) return resolve(process.env.MEDTUNE_TORCH_CUDA_WHEEL);
  const wheels = findLocalWheels('torch').filter((f) => /linux.*x86_64\.whl$/.test(f)).sort(byNewest);
  return wheels.find((w) => listZip(w).some((e) => e.name === 'torch/lib/libtorch_cuda.so')) ?? null;
}

function readWheelMetadata(wheel) {
  const tmp = mkdtempSync(join(tmpdir(), 'medtune-meta-'));
  try {
    extractZip(wheel, tmp, (n) => /^[^/]+\.dist-info\/METADATA$/.test(n));
    const dist = readdirSync(tmp).find((d) => d.endsWith('.dist-info'));
    return dist ? readFileSync(join(tmp, dist, 'METADATA'), 'utf8') : '';
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Linux requirements of a wheel: { name, spec, extras, extra } (extra: the `extra == '…'` marker). */
function requirements(metadata) {
  const out = [];
  for (const m of metadata.matchAll(/^Requires-Dist:\s*([A-Za-z0-9_.-]+)(?:\[([^\]]+)\])?\s*([^;\n]*)(?:;\s*(.*))?$/gm)) {
    const marker = m[4] ?? '';
    if (/platform_system\s*==\s*"(Windows|Darwin)"/.test(marker)) continue;
    out.push({ name: normalizeProject(m[1]), extras: m[2]?.split(',').map((s) => s.trim()) ?? [], spec: m[3].trim(), extra: marker.match(/extra\s*==\s*['"]([^'"]+)['"]/)?.[1] ?? null });
  }
  return out;
}

/** A local wheel for `name` satisfying an `==X` / `==X.*` pin when there is one, else the newest. */
function pickWheel(name, spec) {
  const wheels = findLocalWheels(name).sort(byNewest);
  const pin = spec.match(/^==\s*([0-9][^,\s]*?)(\.\*)?$/);
  if (pin) {
    const exact = wheels.find((w) => (pin[2] ? wheelVersion(w).startsWith(`${pin[1]}.`) || wheelVersion(w) === pin[1] : wheelVersion(w) === pin[1]));
    if (exact) return exact;
  }
  return wheels[0] ?? null;
}

/**
 * The nvidia-* projects a CUDA torch wheel depends on: its own nvidia-* requirements plus those
 * that the cuda-toolkit[extras] meta-package maps its extras to.
 */
export function nvidiaRequirements(torchWheel) {
  const reqs = requirements(readWheelMetadata(torchWheel)).filter((r) => !r.extra);
  const wanted = new Map();
  const missing = [];
  for (const r of reqs) {
    if (r.name.startsWith('nvidia-')) wanted.set(r.name, r.spec);
    if (r.name === 'cuda-toolkit') {
      const meta = pickWheel('cuda-toolkit', r.spec);
      if (!meta) { missing.push(`cuda-toolkit${r.spec} (maps the extras ${r.extras.join(',')} to nvidia-* wheels)`); continue; }
      for (const t of requirements(readWheelMetadata(meta))) if (t.extra && r.extras.includes(t.extra) && t.name.startsWith('nvidia-')) wanted.set(t.name, t.spec);
    }
  }
  const found = [];
  for (const [name, spec] of [...wanted].sort()) {
    const wheel = pickWheel(name, spec);
    if (wheel) found.push({ name, spec, wheel });
    else missing.push(`${name}${spec}`);
  }
  return { found, missing };
}

/**
 * Unpacks the shared libraries libtorch's CUDA libraries need, following DT_NEEDED from
 * torch/lib through the nvidia-* wheels. Sonames no wheel provides are left to the system
 * (glibc, libstdc++), the CUDA toolkit (libcudart, when nvidia-cuda-runtime is not in the index)
 * or the driver (libcuda, loaded lazily).
 */
function unpackRuntimeLibraries(dest, torchDir, wheels, toolkit) {
  const provider = new Map();
  for (const { wheel } of wheels) {
    for (const e of listZip(wheel)) {
      const m = e.name.match(/^nvidia\/[^/]+\/lib\/([^/]+\.so[.\d]*)$/);
      if (m) provider.set(m[1], { wheel, entry: e.name });
    }
  }
  const seen = new Set();
  const unresolved = new Set();
  const queue = readdirSync(join(torchDir, 'lib')).filter((f) => /\.so$/.test(f) && f !== 'libtorch_python.so').map((f) => join(torchDir, 'lib', f));
  let extracted = 0;
  while (queue.length) {
    const file = queue.shift();
    for (const soname of readElfDynamic(file).needed) {
      if (seen.has(soname)) continue;
      seen.add(soname);
      const p = provider.get(soname);
      if (existsSync(join(torchDir, 'lib', soname))) continue;
      if (!p) { unresolved.add(soname); continue; }
      const out = join(dest, p.entry);
      if (!existsSync(out)) extracted += extractZip(p.wheel, dest, (n) => n === p.entry);
      queue.push(out);
    }
  }
  // Where pip would have put nvidia-cuda-runtime's libcudart; the toolkit's copy stands in
  // when that wheel is not in the index.
  const cudart = [...unresolved].find((s) => s.startsWith('libcudart.so'));
  if (cudart) {
    const fromToolkit = ['lib64', 'lib'].map((d) => join(toolkit.root, d, cudart)).find((f) => existsSync(f));
    const target = join(dest, 'nvidia', `cu${toolkit.version.split('.')[0]}`, 'lib', cudart);
    if (fromToolkit) {
      if (!existsSync(target)) {
        mkdirSync(dirname(target), { recursive: true });
        symlinkSync(fromToolkit, target);
      }
      unresolved.delete(cudart);
    }
  }
  return { extracted, unresolved: [...unresolved].filter((s) => !/^(libc|libm|libdl|librt|libpthread|libutil|libstdc\+\+|libgcc_s|ld-linux-x86-64|libgomp|libcuda)\.so/.test(s)) };
}

/**
 * Unpacks the CUDA torch wheel (and the nvidia-* headers, and with `runtime` the libraries)
 * and returns the libtorch description plus what was unpacked.
 */
export function prepareCudaLibtorch({ wheel = findCudaTorchWheel(), runtime = false } = {}) {
  if (!wheel) throw new Error('medtune: no CUDA torch wheel found in the local package index (set MEDTUNE_TORCH_CUDA_WHEEL to one)');
  const torchDir = unpackTorchWheel(root, wheel);
  const dest = wheelDestination(root, wheel);
  const info = describeLibtorch(torchDir);
  if (!info.cuda) throw new Error(`medtune: ${basename(wheel)} has no libtorch_cuda; it is not a CUDA build of torch`);
  const toolkit = locateCudaToolkit(info.cuda);
  const { found, missing } = nvidiaRequirements(wheel);
  const headersMarker = join(dest, '.nvidia-headers-complete');
  if (!existsSync(headersMarker)) {
    let n = 0;
    for (const { wheel: w } of found) n += extractZip(w, dest, (name) => /^nvidia\/[^/]+\/include\//.test(name));
    writeFileSync(headersMarker, `${n} header files from\n${found.map((f) => f.wheel).join('\n')}\n`);
  }
  let runtimeLibs = null;
  if (runtime) {
    runtimeLibs = unpackRuntimeLibraries(dest, torchDir, found, toolkit);
    writeFileSync(join(dest, '.nvidia-runtime-complete'), `${JSON.stringify(runtimeLibs)}\n`);
  }
  return { libtorch: info, wheel, toolkit: { root: toolkit.root, version: toolkit.version }, nvidia: found.map((f) => basename(f.wheel)), missing, runtimeLibs };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { wheel: { type: 'string' }, runtime: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } } });
  try {
    const r = prepareCudaLibtorch({ wheel: values.wheel ? resolve(values.wheel) : undefined, runtime: values.runtime });
    if (values.json) console.log(JSON.stringify(r, null, 2));
    else {
      console.log(`libtorch ${r.libtorch.version} (CUDA ${r.libtorch.cuda}) at ${r.libtorch.dir}`);
      console.log(`CUDA toolkit ${r.toolkit.version} at ${r.toolkit.root}`);
      console.log(`nvidia headers from: ${r.nvidia.join(', ')}`);
      if (r.missing.length) console.log(`not in the local index: ${r.missing.join(', ')}`);
      if (r.runtimeLibs) console.log(`runtime libraries: ${r.runtimeLibs.extracted} unpacked; not provided: ${r.runtimeLibs.unresolved.join(', ') || 'none'}`);
      console.log(`\nBuild against it: LIBTORCH=${r.libtorch.dir} npm run build:addon   (or npm run prebuild)`);
    }
  } catch (err) {
    console.error(err.message);
    process.exit(1);
  }
}
