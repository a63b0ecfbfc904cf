// safetensors I/O: byte-compatible with the Python `safetensors` package both ways, dtype
// conversion while loading, atomic writes, and a clear Error (naming file and tensor) for every
// kind of corrupt file.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '../../lib/models/index.ts';
import { liveTensors, tensor, tidy } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { runPythonJson } from '../helpers/python.ts';

const tmp = mkdtempSync(join(tmpdir(), 'medtune-st-'));

interface PyTensor { dtype: string; shape: number[]; values: number[] }

/** A safetensors file from a header (object or raw text) and data bytes; `length` overrides the header length field. */
function writeRaw(name: string, header: object | string, data: Uint8Array, length?: bigint): string {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const head = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(length ?? BigInt(head.length));
  const path = join(tmp, name);
  writeFileSync(path, Buffer.concat([len, head, Buffer.from(data)]));
  return path;
}

async function expectBad(path: string, pattern: RegExp): Promise<void> {
  assert.throws(() => readSafetensorsHeader(path), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'MEDTUNE_BAD_CHECKPOINT');
    assert.ok(err.message.includes(path), `names the file: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  });
  await assert.rejects(loadSafetensors(path), (err: Error) => pattern.test(err.message) && err.message.includes(path));
}

const f32 = (n: number) => new Uint8Array(new Float32Array(n).fill(1).buffer);

describe('safetensors', () => {
  it('byte-compatible with Python safetensors both ways: every dtype, shape, value, the metadata and the layout', async () => {
    const ours = join(tmp, 'medtune.safetensors');
    await tidy(async () => {
      await saveSafetensors(ours, {
        'a.weight': tensor([[1.5, -2.25], [3, 4]]),
        'b.bias': tensor([0.1, 0.2, 0.3], { dtype: 'bfloat16' }),
        ids: tensor([1, 2, 3, 2 ** 40]),
        half: tensor([0.5, -1], { dtype: 'float16' }),
        mask: tensor([true, false]),
      }, { format: 'pt', author: 'medtune' });
    });
    const theirs = join(tmp, 'python.safetensors');
    const py = runPythonJson<{ written: Record<string, PyTensor>; read: { metadata: Record<string, string>; tensors: Record<string, PyTensor> } }>(
      'safetensors_io.py', [theirs, ours]);

    // Python reads what medtune wrote.
    assert.deepEqual(py.read.metadata, { format: 'pt', author: 'medtune' });
    assert.deepEqual(py.read.tensors['a.weight'], { dtype: 'float32', shape: [2, 2], values: [1.5, -2.25, 3, 4] });
    assert.equal(py.read.tensors['b.bias']!.dtype, 'bfloat16');
    assertClose(py.read.tensors['b.bias']!.values, [0.1, 0.2, 0.3], { atol: 2e-3 });
    assert.deepEqual(py.read.tensors['ids']!.values, [1, 2, 3, 2 ** 40]);
    assert.deepEqual(py.read.tensors['half'], { dtype: 'float16', shape: [2], values: [0.5, -1] });
    assert.deepEqual(py.read.tensors['mask'], { dtype: 'bool', shape: [2], values: [1, 0] });
    // The reference writer's layout: tensors ordered by alignment then name, header padded to 8 bytes.
    assert.deepEqual(readSafetensorsHeader(ours).tensors.map((t) => t.name), ['ids', 'a.weight', 'b.bias', 'half', 'mask']);
    assert.equal((8 + Number(readFileSync(ours).readBigUInt64LE(0))) % 8, 0);

    // medtune reads what Python wrote.
    const header = readSafetensorsHeader(theirs);
    assert.deepEqual(header.metadata, { format: 'pt', note: 'written by safetensors' });
    assert.equal(header.tensors.find((t) => t.name === 'bf16')?.fileDtype, 'BF16');
    await tidy(async () => {
      const { tensors, metadata } = await loadSafetensors(theirs);
      assert.equal(metadata['note'], 'written by safetensors');
      assert.deepEqual(Object.keys(tensors).sort(), Object.keys(py.written).sort());
      for (const [name, e] of Object.entries(py.written)) {
        const t = tensors[name]!;
        assert.equal(t.dtype, e.dtype, `${name} dtype`);
        assert.deepEqual(t.shape, e.shape, `${name} shape`);
        assert.deepEqual(t.toNumbers(), e.values, `${name} values`);
      }
    });
  });

  it('converts while loading and loads a subset; an unknown name is an error', async () => {
    const path = join(tmp, 'python.safetensors');
    await tidy(async () => {
      const { tensors } = await loadSafetensors(path, { dtype: 'float32', names: ['bf16', 'f16'] });
      assert.deepEqual(Object.keys(tensors), ['bf16', 'f16']);
      assert.equal(tensors['bf16']!.dtype, 'float32');
    });
    await assert.rejects(loadSafetensors(path, { names: ['nope'] }), /no tensor named 'nope'/);
  });

  it('overwrites atomically and leaves no temporary files', async () => {
    const path = join(tmp, 'atomic.safetensors');
    const before = liveTensors();
    await tidy(async () => {
      await saveSafetensors(path, { x: tensor([1, 2, 3], { dtype: 'float32' }) });
      await saveSafetensors(path, { y: tensor([4], { dtype: 'float32' }) });
      const { tensors } = await loadSafetensors(path);
      assert.deepEqual(Object.keys(tensors), ['y']);
    });
    assert.equal(liveTensors(), before);
    assert.deepEqual(readdirSync(tmp).filter((n) => n.includes('.tmp-')), []);
    await assert.rejects(saveSafetensors(join(tmp, 'no/such/dir/x.safetensors'), { x: tensor([1]) }), /cannot create/);
  });

  describe('corrupt files: each a clear Error naming the file and, where there is one, the tensor', () => {
    it('too short for the header length', async () => {
      const path = join(tmp, 'short.safetensors');
      writeFileSync(path, Buffer.from([1, 2, 3]));
      await expectBad(path, /too short for the 8-byte header length/);
    });

    it('header length past the end of the file', async () => {
      await expectBad(writeRaw('len.safetensors', { x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1), 1000n), /header length 1000 runs past the end of the file/);
    });

    it('header that is not JSON', async () => {
      await expectBad(writeRaw('json.safetensors', '{"x": {"dtype": "F32", "shape": [1], ', f32(1)), /header is not valid JSON \(at byte \d+/);
    });

    it('a truncated file (data cut short)', async () => {
      const path = writeRaw('trunc.safetensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, f32(6));
      truncateSync(path, readFileSync(path).length - 10);
      await expectBad(path, /tensor 'b': data_offsets \[8, 24\] lie outside the data area of 14 bytes \(the file is truncated or corrupt\)/);
    });

    it('offsets out of range', async () => {
      await expectBad(writeRaw('range.safetensors', { w: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(2)), /tensor 'w': data_offsets \[4, 12\] lie outside the data area of 8 bytes/);
    });

    it('offsets that end before they begin', async () => {
      await expectBad(writeRaw('rev.safetensors', { w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, f32(2)), /tensor 'w': data_offsets \[8, 4\] end before they begin/);
    });

    it('an unknown dtype', async () => {
      await expectBad(writeRaw('dtype.safetensors', { w: { dtype: 'F7', shape: [2], data_offsets: [0, 8] } }, f32(2)), /tensor 'w': unknown dtype 'F7' \(known: F64, F32/);
    });

    it('a shape that does not match the byte size', async () => {
      await expectBad(writeRaw('shape.safetensors', { w: { dtype: 'F32', shape: [3, 2], data_offsets: [0, 20] } }, f32(5)), /tensor 'w': shape \[3, 2\] of F32 needs 24 bytes but data_offsets span 20/);
    });

    it('overlapping tensors', async () => {
      await expectBad(writeRaw('overlap.safetensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(3)), /tensors 'a' and 'b' overlap/);
    });

    it('a hole in the data area', async () => {
      await expectBad(writeRaw('hole.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, f32(3)), /bytes 4\.\.8 of the data area belong to no tensor \(before 'b'\)/);
    });

    it('trailing bytes after the last tensor', async () => {
      await expectBad(writeRaw('trail.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)), /the data area has 8 bytes but the tensors cover 4 \(trailing bytes\)/);
    });

    it('a tensor named twice', async () => {
      await expectBad(writeRaw('dup.safetensors', '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(2)), /duplicate key "a"/);
    });

    it('an entry without data_offsets, and a negative dimension', async () => {
      await expectBad(writeRaw('noofs.safetensors', { w: { dtype: 'F32', shape: [1] } }, f32(1)), /tensor 'w': "data_offsets" must be \[begin, end\]/);
      await expectBad(writeRaw('neg.safetensors', { w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)), /tensor 'w': shape entries must be non-negative integers/);
    });

    it('a missing file', async () => {
      const path = join(tmp, 'absent.safetensors');
      assert.ok(!existsSync(path));
      await expectBad(path, /cannot open: No such file or directory/);
    });
  });
});
