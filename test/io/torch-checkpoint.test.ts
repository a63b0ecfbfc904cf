// Loading torch.save checkpoints written by PyTorch: every layout, dtype, view and container
// format compared bit for bit with what PyTorch saved; malicious and damaged files refused with
// clear errors.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CheckpointError, inspectTorchCheckpoint, loadTorchCheckpoint, type TorchCheckpoint } from '../../lib/io/index.ts';
import { liveTensors } from '../../lib/torch/index.ts';
import { pthExpected, pthFixture, storageOffset, tensorHex, type PthExpected } from './pth-fixtures.ts';

let expected: PthExpected;
let scratch: string;
before(() => {
  expected = pthExpected();
  scratch = mkdtempSync(join(tmpdir(), 'medtune-pth-'));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

function disposeAll(ckpt: TorchCheckpoint): void {
  for (const t of ckpt.tensors.values()) t.dispose();
}

/** Asserts that loading `file` rejects with a CheckpointError of `code` whose message matches. */
async function rejects(file: string, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(loadTorchCheckpoint(file), (e: Error) => {
    assert.ok(e instanceof CheckpointError, `expected a CheckpointError, got ${e.name}: ${e.message}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.startsWith(`${file}: `), `message should start with the file: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

const WHERE: Record<string, { path: string; how: string; prefix?: string; kind?: string }> = {
  'bare.pth': { path: '', how: 'root' },
  'training.pth': { path: 'model', how: 'preferred-key' },
  'ddp.pth': { path: 'state_dict', how: 'preferred-key', prefix: 'module.' },
  'dtypes.pth': { path: '', how: 'root' },
  'views.pth': { path: '', how: 'root' },
  'legacy.pth': { path: '', how: 'root' },
  'legacy_training.pth': { path: 'model', how: 'preferred-key' },
  'protocol1.pth': { path: 'state_dict', how: 'preferred-key' },
  'protocol4.pth': { path: 'state_dict', how: 'preferred-key' },
  'protocol5.pth': { path: 'state_dict', how: 'preferred-key' },
  'dino.pth': { path: 'teacher', how: 'preferred-key' },
  'ema.pth': { path: 'model', how: 'preferred-key' },
  'custom_key.pth': { path: 'weights_of_run', how: 'most-tensors' },
  'whole_model.pth': { path: '', how: 'root', kind: 'module-object' },
  'mae_tiny.pth': { path: 'model', how: 'preferred-key' },
  'bigendian.pth': { path: '', how: 'root' },
  'deflated.pth': { path: '', how: 'root' },
  'zip64.pth': { path: '', how: 'root' },
  'legacy_cuda.pth': { path: '', how: 'root' },
};

describe('loadTorchCheckpoint: files written by torch.save', () => {
  it('every fixture is covered by this test', () => {
    assert.deepEqual(Object.keys(expected.files).sort(), Object.keys(WHERE).sort());
  });

  for (const file of Object.keys(WHERE)) {
    it(`${file}: names, dtypes, shapes, strides, offsets and bytes equal what PyTorch saved`, async () => {
      const live = liveTensors();
      const ckpt = await loadTorchCheckpoint(pthFixture(file));
      const want = expected.files[file]!;
      const where = WHERE[file]!;
      assert.equal(ckpt.report.stateDict.path, where.path);
      assert.equal(ckpt.report.stateDict.how, where.how);
      assert.equal(ckpt.report.stateDict.kind, where.kind ?? 'dict');
      assert.equal(ckpt.report.strippedPrefix, where.prefix ?? '');
      assert.deepEqual([...ckpt.tensors.keys()], Object.keys(want), 'tensor names in checkpoint order');
      for (const [name, t] of ckpt.tensors) {
        const w = want[name]!;
        assert.equal(t.dtype, w.dtype, `${name} dtype`);
        assert.deepEqual(t.shape, w.shape, `${name} shape`);
        assert.deepEqual(t.strides, w.stride, `${name} stride`);
        assert.equal(storageOffset(t), w.offset, `${name} storage offset`);
        assert.equal(tensorHex(t), w.hex, `${name} bytes`);
      }
      const groups = new Map<number, string[]>();
      for (const [name, w] of Object.entries(want)) groups.set(w.storage, [...(groups.get(w.storage) ?? []), name]);
      assert.deepEqual(ckpt.report.sharedStorages.map((s) => s.tensors), [...groups.values()].filter((g) => g.length > 1));
      disposeAll(ckpt);
      assert.equal(liveTensors(), live, 'no tensor leaked');
    });
  }

  it('views of one storage share one native tensor: writing the base changes every view', async () => {
    for (const file of ['views.pth', 'legacy.pth', 'protocol4.pth']) {
      const ckpt = await loadTorchCheckpoint(pthFixture(file));
      const t = (n: string) => ckpt.tensors.get(n)!;
      t('base').fill_(-1);
      t('bf').fill_(3);
      t('embed').fill_(2);
      for (const n of ['row', 'col', 'transposed', 'strided', 'expanded']) assert.ok(t(n).eq(-1).all().item(), `${file}: ${n} follows base`);
      for (const n of ['bf_t', 'bf_block']) assert.ok(t(n).eq(3).all().item(), `${file}: ${n} follows bf`);
      assert.ok(t('lm_head').eq(2).all().item(), `${file}: tied lm_head follows embed`);
      assert.ok(!t('alone').eq(-1).any().item(), `${file}: a separate storage is untouched`);
      assert.equal(ckpt.report.tensors.find((e) => e.name === 'strided')?.view?.offset, 12);
      disposeAll(ckpt);
    }
  });

  it('the report lists what is not weights: optimizer, epoch, args, numpy values, placeholders', async () => {
    const r = await inspectTorchCheckpoint(pthFixture('training.pth'));
    const other = Object.fromEntries(r.other.map((o) => [o.path, o]));
    assert.deepEqual(Object.keys(other), ['optimizer', 'epoch', 'args', 'best_auc', 'class_weights']);
    assert.equal(other['epoch']!.value, 7);
    // AdamW keeps step, exp_avg and exp_avg_sq for each of the 8 parameters.
    assert.match(other['optimizer']!.description, /holding 24 tensors \(not loaded\)/);
    const args = other['args']!.value as { $object: string; state: Record<string, unknown> };
    assert.equal(args.$object, 'argparse.Namespace');
    assert.equal(args.state['lr'], 1e-3);
    assert.equal(args.state['model'], 'vit_base_patch16');
    assert.equal(args.state['epochs'], 100);
    const placeholders = Object.fromEntries(r.placeholders.map((p) => [p.name, p.paths]));
    assert.deepEqual(placeholders['argparse.Namespace'], ['args']);
    assert.deepEqual(placeholders['pathlib.PosixPath'], ['args.<state>.data_path']);
    assert.deepEqual(placeholders['numpy._core.multiarray.scalar'], ['best_auc']);
    assert.deepEqual(placeholders['numpy._core.multiarray._reconstruct'], ['class_weights']);
    assert.equal(r.skipped.length, 0);
    // proj 4x3+3, norm 3+3, bn weight/bias/running_mean/running_var 4x3 + num_batches_tracked 1, head 3x2+2
    assert.equal(r.numel, 15 + 6 + 13 + 8);
    assert.deepEqual(r.dtypes, { float32: 10, int64: 1 });
  });

  it('a pickled nn.Module is flattened like state_dict(), without constructing its classes', async () => {
    const r = await inspectTorchCheckpoint(pthFixture('whole_model.pth'));
    assert.ok(!r.tensors.some((t) => t.name === 'scratch'), 'non-persistent buffers are not part of a state dict');
    assert.deepEqual(r.placeholders.map((p) => p.name).sort(), [
      '__main__.Tiny', 'torch.nn.modules.batchnorm.BatchNorm1d', 'torch.nn.modules.linear.Linear', 'torch.nn.modules.normalization.LayerNorm',
    ]);
  });

  it('stateDictKey picks another candidate; a wrong key names what is there', async () => {
    const student = await loadTorchCheckpoint(pthFixture('dino.pth'), { stateDictKey: 'student' });
    const bare = expected.files['bare.pth']!;
    for (const [name, t] of student.tensors) assert.equal(tensorHex(t), bare[name]!.hex, name);
    assert.equal(student.report.stateDict.how, 'explicit');
    assert.deepEqual(student.report.stateDict.candidates.map((c) => `${c.path}:${c.tensors}`), ['student:11', 'teacher:11', 'dino_loss:1']);
    disposeAll(student);
    const loss = await loadTorchCheckpoint(pthFixture('dino.pth'), { stateDictKey: 'dino_loss' });
    assert.deepEqual([...loss.tensors.keys()], ['center']);
    disposeAll(loss);
    await assert.rejects(loadTorchCheckpoint(pthFixture('dino.pth'), { stateDictKey: 'nope' }),
      (e: CheckpointError) => e.code === 'MEDTUNE_CHECKPOINT_NO_WEIGHTS' && /no entry 'nope'.*top-level keys: student, teacher, epoch, dino_loss/.test(e.message));
    await assert.rejects(loadTorchCheckpoint(pthFixture('dino.pth'), { stateDictKey: 'epoch' }), /entry 'epoch' is int, not a state dict/);
  });

  it('stripPrefixes: false keeps the DDP names', async () => {
    const r = await inspectTorchCheckpoint(pthFixture('ddp.pth'), { stripPrefixes: false });
    assert.equal(r.strippedPrefix, '');
    assert.ok(r.tensors.every((t) => t.name.startsWith('module.')));
  });

  it('big-endian storages are byte-swapped (the bytes check is in the per-file test)', async () => {
    const r = await inspectTorchCheckpoint(pthFixture('bigendian.pth'));
    assert.equal(r.byteOrder, 'big');
    const l = await inspectTorchCheckpoint(pthFixture('legacy.pth'));
    assert.equal(l.format, 'legacy');
    assert.equal(l.byteOrder, 'little');
  });

  it('recognises the timm ViT layout of an MAE checkpoint and reports the decoder', async () => {
    const r = await inspectTorchCheckpoint(pthFixture('mae_tiny.pth'));
    assert.deepEqual(r.layout, {
      name: 'timm-vit',
      facts: { embedDim: 32, inChans: 3, patchSize: 4, depth: 2, qkvBias: true, clsToken: true, mlpHidden: 128, imageSize: 16, globalPool: 'token', maeDecoder: true },
      extraKeys: 7,
    });
  });
});

describe('loadTorchCheckpoint: malicious checkpoints', () => {
  const cases: [string, RegExp][] = [
    ['evil_os_system.pth', /names posix\.system \(opcode GLOBAL at byte \d+\)/],
    ['evil_exec.pth', /names builtins\.exec/],
    ['evil_subprocess.pth', /names subprocess\.call/],
    ['evil_legacy.pth', /names posix\.system/],
    ['evil_proto4.pth', /names posix\.system \(opcode STACK_GLOBAL/],
  ];
  it('the payloads are live: PyTorch\'s unrestricted loader runs them', () => {
    for (const kind of ['os_system', 'exec', 'subprocess']) assert.equal(expected.markers[`live_${kind}`], true, kind);
  });
  for (const [file, pattern] of cases) {
    it(`${file} is refused and its payload never runs`, async () => {
      const marker = expected.markers[file] as string;
      rmSync(marker, { force: true });
      await rejects(pthFixture(file), 'MEDTUNE_CHECKPOINT_UNSAFE', pattern);
      await assert.rejects(inspectTorchCheckpoint(pthFixture(file)), /Nothing was executed/);
      assert.equal(existsSync(marker), false, `marker ${marker} must not exist`);
    });
  }
});

describe('loadTorchCheckpoint: damaged files', () => {
  it('pickle and archive damage made by rewriting a real checkpoint', async () => {
    await rejects(pthFixture('truncated_pickle.pth'), 'MEDTUNE_CHECKPOINT_CORRUPT', /bare\/data\.pkl: pickle truncated: .*data ends at byte \d+/);
    await rejects(pthFixture('unknown_opcode.pth'), 'MEDTUNE_CHECKPOINT_CORRUPT', /bare\/data\.pkl: unknown pickle opcode 0xff at byte 2/);
    await rejects(pthFixture('missing_storage.pth'), 'MEDTUNE_CHECKPOINT_CORRUPT', /storage 1 \(referenced at byte \d+ of data\.pkl\) has no record bare\/data\/1 in the archive/);
    await rejects(pthFixture('bad_crc.pth'), 'MEDTUNE_CHECKPOINT_CORRUPT', /record bare\/data\/0 fails its CRC-32 check/);
    const unchecked = await loadTorchCheckpoint(pthFixture('bad_crc.pth'), { verifyChecksums: false });
    assert.notEqual(tensorHex(unchecked.tensors.get('proj.weight')!), expected.files['bare.pth']!['proj.weight']!.hex, 'the flipped bit is there');
    disposeAll(unchecked);
  });

  it('truncated zip and legacy files at several cut points', async () => {
    for (const source of ['bare.pth', 'legacy.pth']) {
      const bytes = readFileSync(pthFixture(source));
      for (const fraction of [0.02, 0.3, 0.7, 0.999]) {
        const cut = join(scratch, `cut-${fraction}-${source}`);
        writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * fraction)));
        const pattern = source === 'bare.pth' ? /truncated/ : /truncated|cut short/;
        await rejects(cut, 'MEDTUNE_CHECKPOINT_CORRUPT', pattern);
      }
    }
  });

  it('empty, foreign and missing files', async () => {
    const empty = join(scratch, 'empty.pth');
    writeFileSync(empty, '');
    await rejects(empty, 'MEDTUNE_CHECKPOINT_CORRUPT', /the file is empty/);
    const text = join(scratch, 'notes.pth');
    writeFileSync(text, 'these are not weights\n');
    await rejects(text, 'MEDTUNE_CHECKPOINT_CORRUPT', /not a torch\.save checkpoint/);
    const st = join(scratch, 'model.safetensors');
    const header = Buffer.from('{"__metadata__":{"format":"pt"}}');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeFileSync(st, Buffer.concat([len, header]));
    await rejects(st, 'MEDTUNE_CHECKPOINT_UNSUPPORTED', /safetensors file/);
    await rejects(join(scratch, 'absent.pth'), 'MEDTUNE_CHECKPOINT_CORRUPT', /cannot open: ENOENT/);
    // A legacy stream whose first pickle is not torch's magic number.
    const plain = join(scratch, 'plain.pkl');
    copyFileSync(pthFixture('data-p2.pkl'), plain);
    await rejects(plain, 'MEDTUNE_CHECKPOINT_CORRUPT', /a pickle of dict \(\d+ entries\) where torch writes its magic number/);
    assert.ok(statSync(plain).size > 0);
  });
});
