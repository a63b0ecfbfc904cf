#!/usr/bin/env node
// Feeds binding.gyp the same sources and libtorch settings that CMakeLists.txt uses, so tools
// that only know node-gyp build the identical addon. Usage: gyp-vars.mjs sources|includes|libraries|defines
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
const choiceFile = join(root, 'build', 'libtorch.json');
if (!existsSync(choiceFile)) {
  console.error('binding.gyp: build/libtorch.json is missing; run `node scripts/build-addon.mjs` once (it locates libtorch)');
  process.exit(1);
}
const libtorch = JSON.parse(readFileSync(choiceFile, 'utf8'));
const cuda = Boolean(libtorch.cuda);

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
  includes: () => [join(root, 'csrc'), require('node-addon-api').include_dir, join(libtorch.dir, 'include'), join(libtorch.dir, 'include/torch/csrc/api/include')],
  libraries: () => [`-L${libtorch.libDir}`, `-Wl,-rpath,${libtorch.libDir}`, ...(cuda ? ['-Wl,--no-as-needed', '-ltorch_cuda', '-lc10_cuda'] : []), '-ltorch', '-ltorch_cpu', '-lc10'],
  defines: () => ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED', '_GLIBCXX_USE_CXX11_ABI=1',
    `MEDTUNE_TORCH_ROOT=\\"${libtorch.dir}\\"`, ...(cuda ? ['MEDTUNE_WITH_CUDA=1'] : [])],
}[what];
if (!out) {
  console.error(`gyp-vars: unknown query '${what}'`);
  process.exit(1);
}
console.log(out().join('\n'));
