#!/usr/bin/env node
// End-to-end check of the prebuilt CPU binary, as a user gets it: `npm pack` this checkout,
// install the tarball into a fresh folder outside the repository, and use it, with
//   - libtorch somewhere else than at build time (a hard-linked copy of this checkout's
//     libtorch in the temporary folder, given as LIBTORCH), and
//   - no build tools: cmake, make, ninja, cc, c++, gcc, g++ on PATH are traps that record any
//     call and fail, so a source build would be caught, not merely avoided.
// Twice: with install scripts (scripts/install.mjs picks the prebuild) and with
// --ignore-scripts (lib/torch/native.ts discovers libtorch and picks the prebuild at load).
// Run `npm run prebuild` first. Not part of `npm test`: it packs and installs (about a minute).
//
// Usage: node scripts/check-prebuild-install.mjs [--keep]   (--keep leaves the temp folder)
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { locateLibtorch } from './setup/libtorch.mjs';
import { selectPrebuild } from '../lib/torch/prebuilds.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const keep = process.argv.includes('--keep');
const TRAPPED = ['cmake', 'make', 'ninja', 'cc', 'c++', 'gcc', 'g++', 'clang', 'clang++', 'nvcc'];

function fail(message) {
  console.error(`check-prebuild-install: FAILED: ${message}`);
  process.exit(1);
}

const libtorchJson = join(root, 'build', 'libtorch.json');
const libtorch = existsSync(libtorchJson) ? JSON.parse(readFileSync(libtorchJson, 'utf8')) : locateLibtorch(root, { unpack: false });
const { prebuild, reason } = selectPrebuild(root, libtorch);
if (!prebuild) fail(`${reason}. Run \`npm run prebuild\` first.`);
console.log(`prebuild under test: ${prebuild.file} (${(statSync(prebuild.path).size / 2 ** 20).toFixed(2)} MiB), libtorch ${libtorch.version} from ${libtorch.dir}`);

const work = mkdtempSync(join(tmpdir(), 'medtune-install-check-'));
try {
  // 1. The package, as npm would publish it.
  let t = Date.now();
  const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }))[0];
  const tarball = join(work, packed.filename);
  const shipped = packed.files.map((f) => f.path).filter((p) => p.startsWith('prebuilds/'));
  console.log(`npm pack: ${packed.filename}, ${(packed.size / 2 ** 20).toFixed(1)} MiB packed, ${packed.entryCount} files, ${((Date.now() - t) / 1000).toFixed(1)} s`);
  for (const p of shipped) console.log(`  ${p}  ${((packed.files.find((f) => f.path === p).size) / 2 ** 20).toFixed(2)} MiB`);
  if (!shipped.includes(`prebuilds/${relativePrebuild(prebuild.path)}`)) fail(`the tarball does not contain ${prebuild.file}`);

  // 2. libtorch somewhere else: hard links keep it cheap and make /proc/self/maps show the new path.
  const elsewhere = join(work, 'elsewhere', 'torch');
  mkdirSync(dirname(elsewhere), { recursive: true });
  execFileSync('cp', ['-al', libtorch.dir, elsewhere]);

  // 3. Build tools that must not be used.
  const traps = join(work, 'traps');
  const trapLog = join(work, 'trap-calls.log');
  mkdirSync(traps);
  for (const tool of TRAPPED) {
    writeFileSync(join(traps, tool), `#!/bin/sh\necho "${tool} $*" >> "${trapLog}"\necho "trap: ${tool} must not run during this check" >&2\nexit 1\n`);
    chmodSync(join(traps, tool), 0o755);
  }
  const env = {
    ...process.env,
    PATH: `${traps}:${process.env.PATH}`,
    LIBTORCH: elsewhere,
    LD_LIBRARY_PATH: '',
    MEDTUNE_ADDON: '',
    MEDTUNE_BUILD_FROM_SOURCE: '',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
  };

  const results = [];
  for (const mode of ['with install scripts', 'with --ignore-scripts']) {
    const app = join(work, mode.includes('ignore') ? 'app-ignore-scripts' : 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'medtune-install-check', private: true, type: 'module' }, null, 2));
    t = Date.now();
    const args = ['install', tarball, '--prefer-offline', '--foreground-scripts', ...(mode.includes('ignore') ? ['--ignore-scripts'] : [])];
    const install = spawnSync('npm', args, { cwd: app, env, encoding: 'utf8' });
    const installSeconds = (Date.now() - t) / 1000;
    const log = `${install.stdout}\n${install.stderr}`;
    if (install.status !== 0) fail(`npm ${args.join(' ')} failed:\n${log}`);
    const pkg = join(app, 'node_modules', 'medtune');
    const said = log.split('\n').filter((l) => l.startsWith('medtune:'));
    if (!mode.includes('ignore') && !said.some((l) => /using the prebuilt binary/.test(l))) fail(`the installer did not use the prebuild:\n${said.join('\n')}`);
    if (existsSync(join(pkg, 'build', 'Release')) || existsSync(join(pkg, 'build', 'CMakeFiles'))) fail('a build folder with compiler output exists');

    // 4. Use it: doctor, a computation, and which libtorch is mapped.
    t = Date.now();
    const doctor = JSON.parse(execFileSync(process.execPath, [join(pkg, 'bin', 'medtune.js'), 'doctor', '--json'], { cwd: app, env, encoding: 'utf8' }));
    const doctorSeconds = (Date.now() - t) / 1000;
    if (!doctor.ok) fail(`doctor: ${doctor.error}`);
    if (doctor.build.addonKind !== 'prebuild' || doctor.build.prebuild !== true) fail(`doctor reports ${doctor.build.addonKind} (prebuild: ${doctor.build.prebuild})`);
    if (doctor.libtorch.dir !== elsewhere) fail(`doctor's libtorch is ${doctor.libtorch.dir}, not ${elsewhere}`);
    const code = `import { tensor } from 'medtune/lib/torch/index.ts';
      import { readFileSync } from 'node:fs';
      const a = tensor([[1, 2], [3, 4]]);
      const value = a.matmul(a).sum().item();
      const maps = [...new Set(readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => /libtorch_cpu\\.so/.test(l)).map((l) => l.split(/\\s+/).pop()))];
      console.log(JSON.stringify({ value, maps }));`;
    const use = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: app, env, encoding: 'utf8' });
    if (use.status !== 0) fail(`using the installed package failed:\n${use.stderr}`);
    const used = JSON.parse(use.stdout.trim().split('\n').pop());
    if (used.value !== 54) fail(`sum([[1,2],[3,4]]^2) gave ${used.value}, expected 54`);
    if (used.maps.length !== 1 || !used.maps[0].startsWith(elsewhere)) fail(`libtorch_cpu.so mapped from ${used.maps.join(', ')}`);
    results.push({ mode, installSeconds, doctorSeconds, said, addon: doctor.build.addon, reason: doctor.build.reason, mapped: used.maps[0] });
  }
  if (existsSync(trapLog)) fail(`build tools were called:\n${readFileSync(trapLog, 'utf8')}`);

  console.log('\ncheck-prebuild-install: OK');
  for (const r of results) {
    console.log(`\n${r.mode}: npm install ${r.installSeconds.toFixed(1)} s (dependencies included), first \`medtune doctor\` ${r.doctorSeconds.toFixed(1)} s`);
    for (const l of r.said) console.log(`  ${l}`);
    console.log(`  addon: ${r.addon}\n  why: ${r.reason}\n  libtorch_cpu.so mapped from ${r.mapped}`);
  }
  console.log(`\nNo build tool was called (${TRAPPED.join(', ')} were traps on PATH).`);
} finally {
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}

function relativePrebuild(path) {
  const parts = path.split('/');
  return parts.slice(parts.indexOf('prebuilds') + 1).join('/');
}
