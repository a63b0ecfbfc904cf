// saveSafetensors (native writer): files the reference safetensors library reads back bit for bit, laid out with
// every tensor aligned to its element size, written atomically.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { saveSafetensors } from '../../lib/io/index.ts';
import { arange, liveTensors, randn, tensor, tidy, zeros, type Tensor } from '../../lib/torch/index.ts';
import { runPythonJson } from '../helpers/python.ts';
import { tensorHex } from './pth-fixtures.ts';

interface Dump {
  metadata: Record<string, string> | null;
  header_bytes: number;
  tensors: Record<string, { dtype: string; shape: number[]; offsets: [number, number]; hex: string }>;
}

const scratch = mkdtempSync(join(tmpdir(), 'medtune-st-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('saveSafetensors', () => {
  it('every dtype, 0-d, empty and non-contiguous tensors read back exactly in the safetensors library', async () => {
    const live = liveTensors();
    await tidy(async () => {
      const base = arange(24, undefined, 1, { dtype: 'float32' }).reshape(4, 6).div(7);
      const tensors: Record<string, Tensor> = {
        'a.f32': randn([3, 5]),
        'b.f16': randn([4]).to('float16'),
        'c.bf16': randn([2, 3]).to('bfloat16'),
        'd.f64': randn([2]).to('float64'),
        'e.i64': tensor([1, -2, 2 ** 40]),
        'f.i32': tensor([7, -8], { dtype: 'int32' }),
        'g.i16': tensor([300, -300], { dtype: 'int16' }),
        'h.i8': tensor([-5, 5], { dtype: 'int8' }),
        'i.u8': tensor([0, 255], { dtype: 'uint8' }),
        'j.bool': tensor([true, false, true]),
        'k.scalar': tensor(3.25),
        'l.empty': zeros([0, 4]),
        'm.transposed': base.T,
        'n.strided': base.slice(1, 1, 6, 2),
      };
      const file = join(scratch, 'all.safetensors');
      await saveSafetensors(file, tensors, { format: 'pt', note: 'medtune test' });
      const dump = runPythonJson<Dump>('dump_safetensors.py', [file]);
      assert.deepEqual(dump.metadata, { format: 'pt', note: 'medtune test' });
      assert.equal(dump.header_bytes % 8, 0, 'header padded to 8 bytes');
      assert.deepEqual(Object.keys(dump.tensors).sort(), Object.keys(tensors).sort());
      for (const [name, t] of Object.entries(tensors)) {
        const d = dump.tensors[name]!;
        assert.equal(d.dtype, t.dtype, name);
        assert.deepEqual(d.shape, t.shape, name);
        assert.equal(d.hex, tensorHex(t), name);
        const itemSize = d.offsets[1] === d.offsets[0] ? 1 : (d.offsets[1] - d.offsets[0]) / Math.max(1, t.numel);
        assert.equal((8 + dump.header_bytes + d.offsets[0]) % itemSize, 0, `${name} aligned to its element size`);
      }
    });
    assert.equal(liveTensors(), live);
  });

  it('replaces a file atomically and leaves nothing behind when a write fails', async () => {
    const file = join(scratch, 'atomic.safetensors');
    writeFileSync(file, 'old content');
    const t = zeros([2]);
    await assert.rejects(saveSafetensors(join(scratch, 'no-such-dir', 'x.safetensors'), { a: t }), /no-such-dir.*No such file or directory/);
    await saveSafetensors(file, new Map([['w', t]]));
    // Metadata is cached on the Tensor, so this one passes validation and fails while writing.
    const disposed = zeros([1000]);
    assert.equal(disposed.dtype, 'float32');
    disposed.dispose();
    await assert.rejects(saveSafetensors(file, { a: t, gone: disposed }), /disposed/);
    const dump = runPythonJson<Dump>('dump_safetensors.py', [file]);
    assert.deepEqual(Object.keys(dump.tensors), ['w'], 'the previous file survives a failed write');
    assert.deepEqual(dump.tensors['w']!.shape, [2]);
    assert.deepEqual(readdirSync(scratch).filter((f) => f.includes('.tmp')), []);
    await assert.rejects(saveSafetensors(file, { __metadata__: t }), /'__metadata__' is reserved/);
    t.dispose();
    assert.ok(existsSync(file));
  });
});
