#!/usr/bin/env node
// Feeds binding.gyp the same sources and libtorch settings that CMakeLists.txt uses, so tools
// that only know node-gyp build the identical addon. Usage: gyp-vars.mjs sources|includes|libraries|defines
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { locateCudaToolkit } from './libtorch.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const choiceFile = join(root, 'build', 'libtorch.json');
if (!existsSync(choiceFile)) {
  console.error('binding.gyp: build/libtorch.json is missing; run `node scripts/build-addon.mjs` once (it locates libtorch)');
  process.exit(1);
}
const libtorch = JSON.parse(readFileSync(choiceFile, 'utf8'));
const cuda = Boolean(libtorch.cuda);
// As CMakeLists.txt: the toolkit's cudart and headers, and pip's nvidia-*/include beside torch.
const toolkit = cuda ? locateCudaToolkit(libtorch.cuda) : null;
const nvidiaIncludes = () => {
  const base = join(libtorch.dir, '..', 'nvidia');
  return existsSync(base) ? readdirSync(base).map((d) => join(base, d, 'include')).filter((d) => existsSync(d)) : [];
};

function sources(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name === 'cuda' && !cuda) continue;
      sources(p, out);
    } else if (name.endsWith('.cpp')) out.push(relative(root, p));
  }
  return out;
}

const what = process.argv[2];
const out = {
  sources: () => sources(join(root, 'csrc')),
  includes: () => [join(root, 'csrc'), require('node-addon-api').include_dir, join(libtorch.dir, 'include'), join(libtorch.dir, 'include/torch/csrc/api/include'),
    ...(toolkit ? [join(toolkit.root, 'include'), ...nvidiaIncludes()] : [])],
  libraries: () => [`-L${libtorch.libDir}`, `-Wl,-rpath,${libtorch.libDir}`,
    ...(toolkit ? ['-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda', `-L${join(toolkit.root, existsSync(join(toolkit.root, 'lib64')) ? 'lib64' : 'lib')}`, '-lcudart'] : []),
    '-ltorch', '-ltorch_cpu', '-lc10'],
  defines: () => ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED', '_GLIBCXX_USE_CXX11_ABI=1',
    `MEDTUNE_TORCH_ROOT=\\"${libtorch.dir}\\"`, ...(cuda ? ['MEDTUNE_WITH_CUDA=1'] : [])],
}[what];
if (!out) {
  console.error(`gyp-vars: unknown query '${what}'`);
  process.exit(1);
}
console.log(out().join('\n'));
