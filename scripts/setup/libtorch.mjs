// Finds a libtorch to build and run medtune against, in the documented order:
//   1. LIBTORCH            a libtorch directory (include/, lib/, share/cmake/Torch)
//   2. a Python torch      LIBTORCH_PYTHON, else python3 on PATH
//   3. a torch wheel       MEDTUNE_TORCH_WHEEL, else pip's find-links folders (unpacked into
//                          .libtorch/ of the checkout; no Python needed)
//   4. Debian libtorch-dev /usr/lib/<triplet>/cmake/Torch (accepted only if new enough)
// Every candidate that was tried is recorded with the reason it was taken or passed over.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, mkdirSync, rmSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve, basename } from 'node:path';
import { extractZip } from '../../lib/io/zip.mjs';

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

function pipFindLinks() {
  const dirs = new Set();
  try {
    const out = execFileSync('python3', ['-m', 'pip', 'config', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30000 });
    for (const m of out.matchAll(/find-links='([^']+)'/g)) for (const d of m[1].split(/\s+/)) dirs.add(d.replace(/^file:\/\//, ''));
  } catch { /* no pip: fall back to the well-known folder */ }
  dirs.add('/opt/wheels');
  return [...dirs].filter((d) => existsSync(d));
}

function wheelCandidates() {
  if (process.env.MEDTUNE_TORCH_WHEEL) return [resolve(process.env.MEDTUNE_TORCH_WHEEL)];
  const found = [];
  for (const d of pipFindLinks()) {
    for (const f of readdirSync(d)) if (/^torch-\d+\.\d+\.\d+[^-]*-.*linux.*x86_64\.whl$/.test(f)) found.push(join(d, f));
  }
  // Newest version first.
  const ver = (f) => basename(f).split('-')[1].split('+')[0].split('.').map(Number);
  return found.sort((a, b) => { const x = ver(a), y = ver(b); return y[0] - x[0] || y[1] - x[1] || y[2] - x[2]; });
}

function fromWheel(root, tried) {
  const wheels = wheelCandidates();
  if (wheels.length === 0) { tried.push({ source: 'wheel', result: 'no torch wheel found (set MEDTUNE_TORCH_WHEEL)' }); return null; }
  const wheel = wheels[0];
  const tag = basename(wheel).replace(/\.whl$/, '');
  const dest = join(root, '.libtorch', tag);
  const dir = join(dest, 'torch');
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

/** Returns the chosen libtorch, or throws an Error that lists every place that was tried. */
export function locateLibtorch(root) {
  const tried = [];
  const chosen = fromEnv(tried) ?? fromPython(tried) ?? fromWheel(root, tried) ?? fromSystem(tried);
  if (!chosen) {
    const lines = tried.map((t) => `  - ${t.source}: ${t.result}`).join('\n');
    throw new Error(`medtune: no usable libtorch (>= ${MIN_TORCH.join('.')}) found. Tried:\n${lines}\n` +
      'Set LIBTORCH to an unpacked libtorch, or install torch into python3, or set MEDTUNE_TORCH_WHEEL to a torch wheel.');
  }
  return { ...chosen, tried };
}
