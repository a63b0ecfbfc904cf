import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from '../helpers/fixtures.ts';

const medtune = join(REPO_ROOT, 'bin/medtune.js');

describe('medtune doctor', () => {
  it('--json reports libtorch, variant, cuda and devices', () => {
    const report = JSON.parse(execFileSync(process.execPath, [medtune, 'doctor', '--json'], { encoding: 'utf8' }));
    assert.equal(report.ok, true);
    assert.match(report.libtorch.version, /^\d+\.\d+\.\d+/);
    assert.ok(['LIBTORCH', 'python', 'wheel', 'system'].includes(report.libtorch.source));
    assert.ok(['cpu', 'cuda'].includes(report.build.variant));
    assert.ok(['build', 'prebuild', 'env'].includes(report.build.addonKind));
    if (report.build.addonKind !== 'env') assert.equal(report.build.prebuild, report.build.addonKind === 'prebuild', 'a prebuild says so itself (buildInfo().prebuild)');
    assert.equal(typeof report.build.reason, 'string');
    assert.equal(typeof report.cuda.available, 'boolean');
    assert.equal(report.cuda.compiled, report.build.variant === 'cuda');
    if (!report.cuda.compiled) assert.match(report.cuda.reason, /not compiled in/);
    assert.equal(report.cuda.memory.length, report.cuda.deviceCount);
    assert.equal(report.devices[0], 'cpu');
    assert.equal(report.devices.length, 1 + report.cuda.deviceCount);
    assert.ok(report.threads.intraOp >= 1);
  });

  it('human output names the addon and the variant; unknown commands exit 2', () => {
    const text = execFileSync(process.execPath, [medtune, 'doctor'], { encoding: 'utf8' });
    assert.match(text, /libtorch\s+\d+\.\d+\.\d+ from /);
    assert.match(text, /variant\s+(cpu|cuda)/);
    assert.match(text, /\n\s+(prebuilt binary|built from source)/);
    assert.throws(() => execFileSync(process.execPath, [medtune, 'frobnicate'], { stdio: 'pipe' }), (e: { status: number }) => e.status === 2);
  });

  it('a broken addon path is explained, not a crash', () => {
    try {
      execFileSync(process.execPath, [medtune, 'doctor'], { env: { ...process.env, MEDTUNE_ADDON: '/nonexistent/medtune.node' }, stdio: 'pipe' });
      assert.fail('doctor should exit 1');
    } catch (e) {
      const err = e as { status: number; stdout: Buffer };
      assert.equal(err.status, 1);
      assert.match(err.stdout.toString(), /native addon could not be loaded[\s\S]*Fix: run/);
    }
  });
});
