// Prebuilt binaries: naming that node-gyp-build's parser accepts, choosing the one that fits a
// libtorch, the install-time decision, the ELF reader the link checks use, and loading a binary
// that has no RPATH against a libtorch that lives somewhere else than at build time.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, openSync, writeSync, closeSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import { listPrebuilds, parsePrebuildName, prebuildName, selectPrebuild, variantTag } from '../../lib/torch/prebuilds.mjs';
import { chooseAddon, tryPrebuild } from '../../scripts/setup/addon-choice.mjs';
import { sourceStamp } from '../../scripts/setup/addon-stamp.mjs';
import { newestVersions, readElfDynamic } from '../../scripts/setup/elf.mjs';
import { dropStaleConfiguration } from '../../scripts/build-addon.mjs';
import { REPO_ROOT } from '../helpers/fixtures.ts';

const nodeGypBuild = createRequire(import.meta.url)('node-gyp-build') as {
  parseTags(file: string): { napi?: boolean; libc?: string; abi?: string; uv?: string; armv?: string; runtime?: string } | undefined;
  matchTags(runtime: string, abi: string): (tags: unknown) => boolean;
};
const HERE = `${process.platform}-${process.arch}`;
const cpu213 = { version: '2.13.0', cuda: null };
const cu141 = { version: '2.14.1', cuda: '13.0' };

/** A package folder holding empty files under prebuilds/ (names are all that selection reads). */
function fakePackage(files: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'medtune-prebuilds-'));
  for (const f of files) {
    mkdirSync(join(root, 'prebuilds', f.split('/')[0]!), { recursive: true });
    writeFileSync(join(root, 'prebuilds', f), '');
  }
  mkdirSync(join(root, 'csrc'));
  writeFileSync(join(root, 'csrc', 'a.cpp'), 'int a;\n');
  writeFileSync(join(root, 'CMakeLists.txt'), 'project(x)\n');
  return root;
}

describe('prebuild names', () => {
  it('carry the libtorch version and variant, and node-gyp-build reads them as Node-API + glibc', () => {
    assert.equal(variantTag(cpu213), 'cpu');
    assert.equal(variantTag(cu141), 'cu130');
    assert.equal(variantTag({ cuda: '12.8' }), 'cu128');
    assert.equal(variantTag({ cuda: 'unknown' }), 'cuda-unknown');
    const file = `${prebuildName(cu141)}.glibc.node`;
    assert.equal(file, 'medtune.torch2.14.1.cu130.napi.glibc.node');
    assert.deepEqual(parsePrebuildName(file), { torchVersion: '2.14.1', variant: 'cu130' });
    assert.deepEqual(parsePrebuildName('medtune.torch2.13.0.cpu.napi.glibc.node'), { torchVersion: '2.13.0', variant: 'cpu' });
    assert.equal(parsePrebuildName('node.napi.glibc.node'), null);
    assert.equal(parsePrebuildName('medtune.torch2.13.cpu.node'), null);
    // The version's '.'-separated pieces must not be taken for abi/uv/armv/libc tags.
    const tags = nodeGypBuild.parseTags(file)!;
    assert.equal(tags.napi, true);
    assert.equal(tags.libc, 'glibc');
    assert.equal(tags.abi, undefined);
    assert.equal(tags.uv, undefined);
    assert.equal(nodeGypBuild.matchTags('node', process.versions.modules)(tags), process.platform !== 'linux' || !existsSync('/etc/alpine-release'));
  });
});

describe('prebuild selection', () => {
  const root = fakePackage([
    `${HERE}/medtune.torch2.13.0.cpu.napi.glibc.node`,
    `${HERE}/medtune.torch2.14.1.cu130.napi.glibc.node`,
    `${HERE}/medtune.torch2.14.1.cu128.napi.glibc.node`,
    `${HERE}/medtune.torch2.14.1.cpu.napi.musl.node`,
    `${HERE}/node.napi.glibc.node`,
    `${HERE}/README.txt`,
    'win32-arm64/medtune.torch2.13.0.cpu.napi.node',
  ]);

  it('lists only loadable medtune prebuilds for this platform and libc', () => {
    const found = listPrebuilds(root).map((p) => p.file);
    assert.deepEqual(found, [
      'medtune.torch2.13.0.cpu.napi.glibc.node',
      'medtune.torch2.14.1.cu128.napi.glibc.node',
      'medtune.torch2.14.1.cu130.napi.glibc.node',
    ]);
  });

  it('matches the exact libtorch release and variant, or says what there is', () => {
    assert.equal(selectPrebuild(root, cpu213).prebuild?.file, 'medtune.torch2.13.0.cpu.napi.glibc.node');
    assert.equal(selectPrebuild(root, cu141).prebuild?.file, 'medtune.torch2.14.1.cu130.napi.glibc.node');
    assert.equal(selectPrebuild(root, { version: '2.14.1', cuda: '12.8' }).prebuild?.file, 'medtune.torch2.14.1.cu128.napi.glibc.node');
    const cpu141 = selectPrebuild(root, { version: '2.14.1', cuda: null });
    assert.equal(cpu141.prebuild, null, 'the musl cpu build does not load on glibc');
    assert.match(cpu141.reason, /no prebuilt binary for libtorch 2\.14\.1 \(cpu\).*has prebuilds for 2\.13\.0 cpu, 2\.14\.1 cu128, 2\.14\.1 cu130/);
    assert.equal(selectPrebuild(root, { version: '2.13.1', cuda: null }).prebuild, null, 'a patch release is another C++ ABI');
    assert.equal(selectPrebuild(root, { version: '2.14.1', cuda: 'unknown' }).prebuild, null);
    assert.match(selectPrebuild(fakePackage([]), cpu213).reason, /has no prebuilds for this platform/);
  });

  it('install uses a matching prebuild unless told otherwise or the sources changed since', () => {
    const pick = chooseAddon(root, cpu213, {});
    assert.equal(pick.kind, 'prebuild');
    assert.match(pick.kind === 'prebuild' ? pick.file : '', /medtune\.torch2\.13\.0\.cpu\.napi\.glibc\.node$/);
    assert.deepEqual(chooseAddon(root, cpu213, { MEDTUNE_BUILD_FROM_SOURCE: '1' }).kind, 'build');
    const none = chooseAddon(root, { version: '2.12.0', cuda: null }, {});
    assert.equal(none.kind, 'build');
    assert.match(none.reason, /no prebuilt binary for libtorch 2\.12\.0/);

    const manifest = (stamp: string) => writeFileSync(join(root, 'prebuilds', 'manifest.json'), JSON.stringify({
      prebuilds: [{ file: `${HERE}/medtune.torch2.13.0.cpu.napi.glibc.node`, sourceStamp: stamp, torchVersion: '2.13.0', variant: 'cpu' }],
    }));
    manifest(sourceStamp(root));
    assert.equal(chooseAddon(root, cpu213, {}).kind, 'prebuild');
    manifest('0'.repeat(64));
    const stale = chooseAddon(root, cpu213, {});
    assert.equal(stale.kind, 'build');
    assert.match(stale.reason, /built from other sources than csrc\/ now holds/);
  });
});

// The addon this checkout uses: its source build, or the prebuild the installer chose.
const sourceBuild = join(REPO_ROOT, 'build/Release/medtune.node');
const addonInUse = existsSync(sourceBuild) ? sourceBuild : join(REPO_ROOT, (JSON.parse(readFileSync(join(REPO_ROOT, 'build/addon.json'), 'utf8')) as { file: string }).file);

describe('cmake build trees', () => {
  it('a tree configured for another libtorch is reconfigured, an unchanged one is kept', () => {
    const dir = mkdtempSync(join(tmpdir(), 'medtune-cmake-'));
    const cache = join(dir, 'CMakeCache.txt');
    const write = () => writeFileSync(cache, 'Torch_DIR:UNINITIALIZED=/a/share/cmake/Torch\nMEDTUNE_PREBUILD:BOOL=OFF\n');
    write();
    dropStaleConfiguration(dir, ['x', '--CDTorch_DIR=/a/share/cmake/Torch', '--CDMEDTUNE_PREBUILD=OFF', '--parallel']);
    assert.ok(existsSync(cache), 'same settings: configuration kept');
    dropStaleConfiguration(dir, ['--CDTorch_DIR=/b/share/cmake/Torch', '--CDMEDTUNE_PREBUILD=OFF']);
    assert.equal(existsSync(cache), false, 'another libtorch: configure again');
    write();
    dropStaleConfiguration(dir, ['--CDTorch_DIR=/a/share/cmake/Torch', '--CDMEDTUNE_PREBUILD=ON']);
    assert.equal(existsSync(cache), false, 'a prebuild setting change: configure again');
  });
});

describe('ELF dynamic section', () => {
  it('reads NEEDED and RUNPATH as readelf does', (t) => {
    const dyn = readElfDynamic(addonInUse);
    for (const lib of ['libtorch.so', 'libtorch_cpu.so', 'libc10.so']) assert.ok(dyn.needed.includes(lib), `${lib} in ${dyn.needed}`);
    const libtorch = JSON.parse(readFileSync(join(REPO_ROOT, 'build/libtorch.json'), 'utf8')) as { libDir: string };
    if (addonInUse === sourceBuild) assert.ok((dyn.runpath ?? dyn.rpath ?? '').split(':').includes(libtorch.libDir), 'a source build points at its libtorch');
    else assert.equal(dyn.runpath ?? dyn.rpath, null, 'a prebuild carries no path');
    const readelf = spawnSync('readelf', ['-d', addonInUse], { encoding: 'utf8' });
    if (readelf.status !== 0) return t.skip('readelf is not installed; cross-check skipped');
    const needed = [...readelf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    assert.deepEqual(dyn.needed, needed);
    assert.equal(dyn.runpath, readelf.stdout.match(/\(RUNPATH\)\s+Library runpath: \[([^\]]+)\]/)?.[1] ?? null);
    // Symbol versions, against readelf's version-needs listing.
    const vr = spawnSync('readelf', ['-V', '-W', addonInUse], { encoding: 'utf8' }).stdout;
    const glibc = [...vr.matchAll(/Name: (GLIBC_[\d.]+)/g)].map((m) => m[1]!);
    const newest = glibc.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).pop();
    assert.equal(newestVersions(dyn)['libc.so.6'], newest);
  });

  it('refuses files that are not ELF', () => {
    const f = join(mkdtempSync(join(tmpdir(), 'medtune-elf-')), 'x.node');
    writeFileSync(f, 'not a library at all, just text that is long enough for a header..........');
    assert.throws(() => readElfDynamic(f), /is not an ELF file/);
  });
});

describe('loading a binary without RPATH against a relocated libtorch', { skip: process.platform !== 'linux' ? 'prebuilt binaries are Linux-only' : false }, () => {
  const libtorch = JSON.parse(readFileSync(join(REPO_ROOT, 'build/libtorch.json'), 'utf8')) as { libDir: string; version: string };
  const work = mkdtempSync(join(tmpdir(), 'medtune-reloc-'));

  // A binary that cannot find libtorch by itself, as a prebuild: the prebuild in use, or the
  // source build with its RUNPATH overwritten in place (same length) by a missing folder.
  const addon = join(work, 'prebuilds', HERE, 'medtune.torch0.0.0.cpu.napi.glibc.node');
  mkdirSync(join(work, 'prebuilds', HERE), { recursive: true });
  copyFileSync(addonInUse, addon);
  const rp = readElfDynamic(addon).strings.runpath ?? readElfDynamic(addon).strings.rpath;
  if (rp) {
    const fd = openSync(addon, 'r+');
    writeSync(fd, Buffer.from('/nonexistent-medtune'.padEnd(rp.value.length, 'x')), 0, rp.value.length, rp.offset);
    closeSync(fd);
  }

  // libtorch's lib folder somewhere else: hard links (same bytes, other path), else copies.
  const elsewhere = join(work, 'elsewhere', 'torch', 'lib');
  mkdirSync(elsewhere, { recursive: true });
  for (const f of readdirSync(libtorch.libDir)) {
    if (!/\.so(\.\d+)*$/.test(f)) continue;
    try { linkSync(join(libtorch.libDir, f), join(elsewhere, f)); } catch { copyFileSync(join(libtorch.libDir, f), join(elsewhere, f)); }
  }

  const loader = pathToFileURL(join(REPO_ROOT, 'lib/torch/prebuilds.mjs')).href;
  const run = (code: string) => spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: '' } });

  it('cannot load by itself', () => {
    const r = run(`import { createRequire } from 'node:module'; createRequire(import.meta.url)(${JSON.stringify(addon)});`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /(libc10|libtorch_cpu|libtorch)\.so: cannot open shared object file/);
  });

  it('loads and computes after libtorch is loaded from the relocated folder, which is the one mapped', () => {
    const r = run(`import { loadAddonFile } from ${JSON.stringify(loader)};
      import { readFileSync } from 'node:fs';
      const a = loadAddonFile(${JSON.stringify(addon)}, { preloadFrom: ${JSON.stringify(elsewhere)} });
      const t = a.fromTypedArray(new Float32Array([1, 2, 3, 4]), [2, 2]);
      const s = a.sum(a.matmul(t, t));
      const maps = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => /libtorch_cpu\\.so/.test(l)).map((l) => l.split(/\\s+/).pop()))];
      console.log(JSON.stringify({ version: a.buildInfo().torchVersion, sum: a.item(s), maps }));`);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim()) as { version: string; sum: number; maps: string[] };
    assert.equal(out.version, libtorch.version);
    assert.equal(out.sum, 54, '[[1,2],[3,4]]^2 = [[7,10],[15,22]], sum 54');
    assert.deepEqual(out.maps, [join(elsewhere, 'libtorch_cpu.so')]);
  });

  it('the installer\'s trial load reports why a prebuild does not load (then it builds from source)', () => {
    const lt = { version: libtorch.version, cuda: null, libDir: elsewhere };
    assert.equal(tryPrebuild(REPO_ROOT, addon, lt).torchVersion, libtorch.version);
    assert.throws(() => tryPrebuild(REPO_ROOT, addon, { ...lt, libDir: join(work, 'empty') }), /no libtorch\.so in/);
    assert.throws(() => tryPrebuild(REPO_ROOT, addon, { ...lt, version: '9.9.9' }), /it reports libtorch .* not 9\.9\.9/);
  });

  it('a lib folder without libtorch is a clear error', () => {
    const r = run(`import { loadAddonFile } from ${JSON.stringify(loader)}; loadAddonFile(${JSON.stringify(addon)}, { preloadFrom: '/nonexistent/lib' });`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no libtorch\.so in \/nonexistent\/lib/);
  });

  it('a package with only prebuilds (no build/ folder) picks the one for the discovered libtorch', () => {
    // Load-time discovery: no build/libtorch.json, LIBTORCH points at the relocated libtorch.
    // Only lib/ is relocated, so describeLibtorch needs the headers: link the include dir too.
    const pkg = mkdtempSync(join(tmpdir(), 'medtune-pkg-'));
    const realTorch = join(libtorch.libDir, '..');
    const torch = join(work, 'elsewhere', 'torch');
    for (const d of ['include', 'share']) if (!existsSync(join(torch, d))) execFileSync('ln', ['-s', join(realTorch, d), join(torch, d)]);
    const file = `medtune.torch${libtorch.version}.cpu.napi.glibc.node`;
    mkdirSync(join(pkg, 'prebuilds', HERE), { recursive: true });
    copyFileSync(addon, join(pkg, 'prebuilds', HERE, file));
    // Real copies of the package's JavaScript (a symlinked lib/ would resolve back to this
    // checkout, whose build/ folder exists); dependencies can stay linked.
    for (const d of ['lib', 'scripts', 'package.json']) cpSync(join(REPO_ROOT, d), join(pkg, d), { recursive: true });
    execFileSync('ln', ['-s', join(REPO_ROOT, 'node_modules'), join(pkg, 'node_modules')]);
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
      import { native, addonLocation } from ${JSON.stringify(pathToFileURL(join(pkg, 'lib/torch/native.ts')).href)};
      native();
      const l = addonLocation();
      console.log(JSON.stringify({ kind: l.kind, file: l.file, libDir: l.libtorch.libDir, reason: l.reason }));`],
    { encoding: 'utf8', cwd: pkg, env: { ...process.env, LIBTORCH: torch, LD_LIBRARY_PATH: '', MEDTUNE_ADDON: '' } });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { kind: string; file: string; libDir: string; reason: string };
    assert.equal(out.kind, 'prebuild');
    assert.equal(out.libDir, join(torch, 'lib'));
    assert.match(out.reason, /chosen at load/);
  });
});
