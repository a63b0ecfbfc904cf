// Finds a libtorch to build and run medtune against, in the documented order:
//   1. LIBTORCH            a libtorch directory (include/, lib/, share/cmake/Torch)
//   2. a Python torch      LIBTORCH_PYTHON, else python3 on PATH
//   3. a torch wheel       MEDTUNE_TORCH_WHEEL, else pip's find-links folders (unpacked into
//                          .libtorch/ of the checkout; no Python needed)
//   4. Debian libtorch-dev /usr/lib/<triplet>/cmake/Torch (accepted only if new enough)
// Every candidate that was tried is recorded with the reason it was taken or passed over.
// A CUDA libtorch also needs a CUDA toolkit (nvcc, cudart) to build against: locateCudaToolkit.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, mkdirSync, rmSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve, basename } from 'node:path';
import { extractZip } from '../../lib/io/zip.mjs';
import { pipSources } from './pip-index.mjs';

export const MIN_TORCH = [2, 1];

/** Reads version and CUDA facts from a libtorch directory's own files. */
export function describeLibtorch(dir) {
  const versionHeaders = [
    join(dir, 'include/torch/headeronly/version.h'),
    join(dir, 'include/torch/csrc/api/include/torch/version.h'),
  ];
  let version = null;
  for (const h of versionHeaders) {
    if (!existsSync(h)) continue;
    const text = readFileSync(h, 'utf8');
    const part = (n) => text.match(new RegExp(`#define TORCH_VERSION_${n}\\s+(\\d+)`))?.[1];
    if (part('MAJOR')) { version = `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`; break; }
  }
  const libDir = join(dir, 'lib');
  const libs = existsSync(libDir) ? readdirSync(libDir) : [];
  const hasCuda = libs.some((f) => /^libtorch_cuda(\.|_)/.test(f) || f === 'libtorch_cuda.so');
  let cudaVersion = null;
  // A wheel keeps torch/version.py beside include/; an official libtorch zip has build-version.
  const versionPy = join(dir, 'version.py');
  if (existsSync(versionPy)) {
    const m = readFileSync(versionPy, 'utf8').match(/^cuda[^=]*=\s*'([^']+)'/m);
    if (m) cudaVersion = m[1];
  }
  const buildVersion = join(dir, 'build-version');
  if (!cudaVersion && existsSync(buildVersion)) {
    const m = readFileSync(buildVersion, 'utf8').match(/\+cu(\d+)(\d)\b/);
    if (m) cudaVersion = `${m[1]}.${m[2]}`;
  }
  const cmakeDir = [join(dir, 'share/cmake/Torch'), join(dir, 'lib/cmake/Torch')].find((p) => existsSync(join(p, 'TorchConfig.cmake')));
  return { dir, libDir, cmakeDir: cmakeDir ?? null, version, cuda: hasCuda ? (cudaVersion ?? 'unknown') : null };
}

function versionOk(v) {
  if (!v) return false;
  const [a, b] = v.split('.').map(Number);
  return a > MIN_TORCH[0] || (a === MIN_TORCH[0] && b >= MIN_TORCH[1]);
}

function usable(info) {
  if (!info.cmakeDir) return 'no share/cmake/Torch/TorchConfig.cmake';
  if (!existsSync(join(info.dir, 'include/torch'))) return 'no include/torch';
  if (!info.version) return 'version header not found';
  if (!versionOk(info.version)) return `libtorch ${info.version} is older than ${MIN_TORCH.join('.')} (medtune uses scaled_dot_product_attention and C++17 APIs of 2.x)`;
  return null;
}

function fromEnv(tried) {
  const dir = process.env.LIBTORCH;
  if (!dir) { tried.push({ source: 'LIBTORCH', result: 'not set' }); return null; }
  const info = describeLibtorch(resolve(dir));
  const why = usable(info);
  if (why) throw new Error(`LIBTORCH=${dir} is not usable: ${why}`);
  tried.push({ source: 'LIBTORCH', result: 'chosen' });
  return { ...info, source: 'LIBTORCH', reason: `LIBTORCH is set to ${dir}` };
}

function fromPython(tried) {
  const python = process.env.LIBTORCH_PYTHON || 'python3';
  const code = 'import json, os, torch; print(json.dumps({"dir": os.path.dirname(torch.__file__), "version": torch.__version__, "cuda": torch.version.cuda}))';
  let out;
  try {
    out = execFileSync(python, ['-c', code], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
  } catch (err) {
    const msg = String(err.stderr || err.message).trim().split('\n').pop();
    tried.push({ source: `python (${python})`, result: `no torch: ${msg}` });
    return null;
  }
  const py = JSON.parse(out.trim().split('\n').pop());
  const info = describeLibtorch(py.dir);
  const why = usable(info);
  if (why) { tried.push({ source: `python (${python})`, result: `torch ${py.version} not usable: ${why}` }); return null; }
  tried.push({ source: `python (${python})`, result: 'chosen' });
  return { ...info, cuda: py.cuda ?? info.cuda, source: 'python', python, reason: `${python} has torch ${py.version}` };
}

function wheelCandidates() {
  if (process.env.MEDTUNE_TORCH_WHEEL) return [resolve(process.env.MEDTUNE_TORCH_WHEEL)];
  const found = [];
  for (const d of pipSources().findLinks) {
    for (const f of readdirSync(d)) if (/^torch-\d+\.\d+\.\d+[^-]*-.*linux.*x86_64\.whl$/.test(f)) found.push(join(d, f));
  }
  // Newest version first.
  const ver = (f) => basename(f).split('-')[1].split('+')[0].split('.').map(Number);
  return found.sort((a, b) => { const x = ver(a), y = ver(b); return y[0] - x[0] || y[1] - x[1] || y[2] - x[2]; });
}

/** The folder of the checkout where a torch wheel's libtorch is (or would be) unpacked. */
export function wheelDestination(root, wheel) {
  return join(root, '.libtorch', basename(wheel).replace(/\.whl$/, ''));
}

/**
 * Unpacks torch/include, torch/lib, torch/share and torch/version.py of a torch wheel into
 * .libtorch/<wheel name>/ (once; a `.complete` marker says it finished) and returns the
 * libtorch directory (…/torch). The layout mirrors site-packages, so a CUDA wheel's
 * $ORIGIN/../../nvidia/... RPATH finds nvidia-* wheels unpacked beside it.
 */
export function unpackTorchWheel(root, wheel) {
  const dest = wheelDestination(root, wheel);
  if (!existsSync(join(dest, '.complete'))) {
    console.log(`medtune: unpacking libtorch from ${wheel} into ${dest} (one time)`);
    const tmp = `${dest}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    const n = extractZip(wheel, tmp, (name) => /^torch\/(include|lib|share)\//.test(name) || name === 'torch/version.py');
    writeFileSync(join(tmp, '.complete'), `${n} files from ${wheel}\n`);
    rmSync(dest, { recursive: true, force: true });
    renameSync(tmp, dest);
  }
  return join(dest, 'torch');
}

function fromWheel(root, tried, unpack) {
  const wheels = wheelCandidates();
  if (wheels.length === 0) { tried.push({ source: 'wheel', result: 'no torch wheel found (set MEDTUNE_TORCH_WHEEL)' }); return null; }
  const wheel = wheels[0];
  let dir;
  if (unpack) dir = unpackTorchWheel(root, wheel);
  else {
    dir = join(wheelDestination(root, wheel), 'torch');
    if (!existsSync(join(dir, '..', '.complete'))) {
      tried.push({ source: `wheel ${wheel}`, result: 'not unpacked yet (`npm install` / `npm rebuild medtune` unpacks it)' });
      return null;
    }
  }
  const info = describeLibtorch(dir);
  const why = usable(info);
  if (why) { tried.push({ source: `wheel ${wheel}`, result: `not usable: ${why}` }); return null; }
  tried.push({ source: `wheel ${wheel}`, result: 'chosen' });
  return { ...info, source: 'wheel', wheel, reason: `unpacked from ${basename(wheel)} (no LIBTORCH, no Python torch)` };
}

function fromSystem(tried) {
  for (const cmakeDir of ['/usr/lib/x86_64-linux-gnu/cmake/Torch', '/usr/lib/aarch64-linux-gnu/cmake/Torch', '/usr/share/cmake/Torch']) {
    if (!existsSync(join(cmakeDir, 'TorchConfig.cmake'))) continue;
    const info = { ...describeLibtorch('/usr'), cmakeDir, libDir: join(cmakeDir, '../..') };
    if (!versionOk(info.version)) { tried.push({ source: 'system libtorch-dev', result: `version ${info.version} too old` }); return null; }
    tried.push({ source: 'system libtorch-dev', result: 'chosen' });
    return { ...info, source: 'system', reason: `Debian libtorch-dev at ${cmakeDir}` };
  }
  tried.push({ source: 'system libtorch-dev', result: 'not installed' });
  return null;
}

/**
 * Returns the chosen libtorch, or throws an Error that lists every place that was tried.
 * `unpack: false` (used when the addon is loaded without an install-time choice) never writes:
 * a torch wheel counts only if an earlier install already unpacked it.
 */
export function locateLibtorch(root, { unpack = true } = {}) {
  const tried = [];
  const chosen = fromEnv(tried) ?? fromPython(tried) ?? fromWheel(root, tried, unpack) ?? fromSystem(tried);
  if (!chosen) {
    const lines = tried.map((t) => `  - ${t.source}: ${t.result}`).join('\n');
    throw new Error(`medtune: no usable libtorch (>= ${MIN_TORCH.join('.')}) found. Tried:\n${lines}\n` +
      'Set LIBTORCH to an unpacked libtorch, or install torch into python3, or set MEDTUNE_TORCH_WHEEL to a torch wheel.');
  }
  return { ...chosen, tried };
}

function nvccRelease(nvcc) {
  try {
    const out = execFileSync(nvcc, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30000 });
    return out.match(/release (\d+\.\d+)/)?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * Finds the CUDA toolkit (nvcc, cudart, headers) to build against a CUDA libtorch, in order:
 * CUDA_HOME, CUDA_PATH, the folder of `nvcc` on PATH, /usr/local/cuda-<libtorch's CUDA>,
 * /usr/local/cuda. A toolkit whose major version differs from libtorch's is passed over:
 * the addon would link a libcudart soname that libtorch does not load.
 * @param {string} cudaVersion libtorch's CUDA version, e.g. '13.0'
 * @returns {{ root: string, nvcc: string, version: string, reason: string, tried: { source: string, result: string }[] }}
 */
export function locateCudaToolkit(cudaVersion) {
  const tried = [];
  const candidates = [];
  if (process.env.CUDA_HOME) candidates.push({ source: 'CUDA_HOME', root: process.env.CUDA_HOME });
  if (process.env.CUDA_PATH) candidates.push({ source: 'CUDA_PATH', root: process.env.CUDA_PATH });
  for (const d of (process.env.PATH ?? '').split(':')) {
    if (d && existsSync(join(d, 'nvcc'))) { candidates.push({ source: 'nvcc on PATH', root: resolve(d, '..') }); break; }
  }
  if (cudaVersion) candidates.push({ source: 'default location', root: `/usr/local/cuda-${cudaVersion}` });
  candidates.push({ source: 'default location', root: '/usr/local/cuda' });
  const wantMajor = cudaVersion?.split('.')[0];
  for (const c of candidates) {
    const nvcc = join(c.root, 'bin', 'nvcc');
    const label = `${c.source} (${c.root})`;
    if (!existsSync(nvcc)) { tried.push({ source: label, result: 'no bin/nvcc' }); continue; }
    if (!existsSync(join(c.root, 'include', 'cuda_runtime_api.h'))) { tried.push({ source: label, result: 'no include/cuda_runtime_api.h' }); continue; }
    const version = nvccRelease(nvcc);
    if (!version) { tried.push({ source: label, result: 'nvcc --version failed' }); continue; }
    if (wantMajor && version.split('.')[0] !== wantMajor) {
      tried.push({ source: label, result: `CUDA ${version}, but libtorch was built with CUDA ${cudaVersion}` });
      continue;
    }
    tried.push({ source: label, result: 'chosen' });
    return { root: resolve(c.root), nvcc, version, reason: `${label} has nvcc ${version}`, tried };
  }
  const lines = tried.map((t) => `  - ${t.source}: ${t.result}`).join('\n');
  throw new Error(`medtune: libtorch was built with CUDA ${cudaVersion}; building the addon against it needs a CUDA ${wantMajor}.x toolkit (nvcc), none found. Tried:\n${lines}\n` +
    'Set CUDA_HOME to the toolkit, or use a CPU libtorch (LIBTORCH) or a prebuilt binary.');
}
