// `medtune convert`: .pth checkpoints written by PyTorch become safetensors that the reference
// safetensors library reads back bit for bit; unsafe files are refused and leave nothing behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { convertTorchCheckpoint } from '../../lib/io/index.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';
import { runPythonJson } from '../helpers/python.ts';
import { pthExpected, pthFixture, type PthExpected } from '../io/pth-fixtures.ts';

interface Dump {
  metadata: Record<string, string> | null;
  tensors: Record<string, { dtype: string; shape: number[]; hex: string }>;
}

const medtune = join(REPO_ROOT, 'bin/medtune.js');
let expected: PthExpected;
let scratch: string;
before(() => {
  expected = pthExpected();
  scratch = mkdtempSync(join(tmpdir(), 'medtune-convert-'));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

function cli(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [medtune, 'convert', ...args], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

type Want = Record<string, { dtype: string; shape: number[]; hex: string }>;

/** The converted file holds exactly the tensors PyTorch saved (as contiguous copies). */
function assertSameTensors(file: string, want: Want, dumped?: Dump): Dump {
  const dump = dumped ?? runPythonJson<Dump>('dump_safetensors.py', [file]);
  assert.deepEqual(Object.keys(dump.tensors).sort(), Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const d = dump.tensors[name]!;
    assert.deepEqual([d.dtype, d.shape, d.hex], [w.dtype, w.shape, w.hex], name);
  }
  return dump;
}

describe('medtune convert', () => {
  it('a training checkpoint: weights from "model", the rest reported', () => {
    const out = join(scratch, 'training');
    const r = cli(pthFixture('training.pth'), '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^11 tensors \(42 parameters; 10 float32, 1 int64\) from 'model' of .*training\.pth \(zip format\)/);
    assert.match(r.stdout, /not converted: optimizer \(dict \(2 entries\), holding 24 tensors \(not loaded\)\)/);
    assert.match(r.stdout, /not constructed: argparse\.Namespace at args/);
    const dump = assertSameTensors(join(out, 'model.safetensors'), expected.files['training.pth']!);
    assert.deepEqual(dump.metadata, { format: 'pt', source: 'training.pth' });
    const report = JSON.parse(readFileSync(join(out, 'convert-report.json'), 'utf8'));
    assert.equal(report.stateDict.path, 'model');
    assert.equal(report.output, join(out, 'model.safetensors'));
    assert.deepEqual(report.other.map((o: { path: string }) => o.path), ['optimizer', 'epoch', 'args', 'best_auc', 'class_weights']);
  });

  it('views, shared storages, every dtype, the legacy format and DDP names convert exactly', async () => {
    const files = ['views.pth', 'dtypes.pth', 'legacy.pth', 'ddp.pth', 'bigendian.pth'];
    const outputs: string[] = [];
    for (const file of files) {
      const { report, safetensors } = await convertTorchCheckpoint(pthFixture(file), join(scratch, file));
      if (file === 'ddp.pth') assert.equal(report.strippedPrefix, 'module.');
      outputs.push(safetensors);
    }
    const dumps = runPythonJson<Dump[]>('dump_safetensors.py', outputs);
    files.forEach((file, i) => assertSameTensors(outputs[i]!, expected.files[file]!, dumps[i]));
  });

  it('--key chooses the state dict; --json prints the report', () => {
    const out = join(scratch, 'dino');
    const r = cli(pthFixture('dino.pth'), '--out', out, '--key', 'student', '--json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.stateDict.how, 'explicit');
    assertSameTensors(join(out, 'model.safetensors'), expected.files['bare.pth']!);
  });

  it('existing outputs are kept unless --force; bad flags exit 2', async () => {
    const out = join(scratch, 'existing');
    await convertTorchCheckpoint(pthFixture('bare.pth'), out);
    const before = statSync(join(out, 'model.safetensors')).mtimeMs;
    await assert.rejects(convertTorchCheckpoint(pthFixture('views.pth'), out), /model\.safetensors already exists \(pass overwrite \/ --force/);
    assert.equal(statSync(join(out, 'model.safetensors')).mtimeMs, before);
    await convertTorchCheckpoint(pthFixture('views.pth'), out, { overwrite: true });
    assertSameTensors(join(out, 'model.safetensors'), expected.files['views.pth']!);
    const usage = cli(pthFixture('bare.pth'));
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /missing --out DIR\nUsage: medtune convert IN\.pth --out DIR/);
  });

  it('a malicious checkpoint is refused: exit 1, no output, no payload', () => {
    const out = join(scratch, 'evil');
    const marker = expected.markers['evil_os_system.pth'] as string;
    rmSync(marker, { force: true });
    const r = cli(pthFixture('evil_os_system.pth'), '--out', out);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^medtune convert: .*evil_os_system\.pth: refusing to load: the pickle names posix\.system/);
    assert.deepEqual(existsSync(out) ? readdirSync(out) : [], []);
    assert.equal(existsSync(marker), false);
  });
});
