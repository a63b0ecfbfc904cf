import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tensor, zeros, full, arange, tidy, DTYPES } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { readFixture } from '../helpers/fixtures.ts';

const ref = readFixture<{ bf16_values: number[]; bf16_rounded: number[]; f16_rounded: number[] }>('core-reference.json');

describe('dtypes', () => {
  it('bfloat16 and float16 round trips match PyTorch rounding', () => tidy(() => {
    const bf = tensor(ref.bf16_values, { dtype: 'bfloat16' });
    assert.equal(bf.dtype, 'bfloat16');
    const back = bf.toTypedArray();
    assert.ok(back instanceof Float32Array, 'bf16 reads back as numbers in a Float32Array');
    assert.deepEqual(Array.from(back as Float32Array), ref.bf16_rounded);
    assert.deepEqual(tensor(ref.bf16_values, { dtype: 'float16' }).toNumbers(), ref.f16_rounded);
    assert.deepEqual(bf.to('float32').to('bfloat16').toNumbers(), ref.bf16_rounded, 'second rounding is exact');
  }));

  it('raw bfloat16 bits from a Uint16Array', () => tidy(() => {
    // 0x3F80 = 1.0, 0xC000 = -2.0, 0x4049 = 3.140625 in bfloat16
    const t = tensor(new Uint16Array([0x3f80, 0xc000, 0x4049]));
    assert.equal(t.dtype, 'bfloat16');
    assert.deepEqual(t.toNumbers(), [1, -2, 3.140625]);
    // 0x3C00 = 1.0, 0x4200 = 3.0 in float16
    assert.deepEqual(tensor(new Uint16Array([0x3c00, 0x4200]), { dtype: 'float16' }).toNumbers(), [1, 3]);
  }));

  it('every dtype converts and reads back into its typed array', () => tidy(() => {
    const expectedArray: Record<string, string> = {
      float32: 'Float32Array', float16: 'Float32Array', bfloat16: 'Float32Array', float64: 'Float64Array', int64: 'BigInt64Array',
      int32: 'Int32Array', int16: 'Int16Array', int8: 'Int8Array', uint8: 'Uint8Array', bool: 'Uint8Array',
    };
    for (const dtype of DTYPES) {
      const t = tensor([0, 1, 2], { dtype });
      assert.equal(t.dtype, dtype);
      const arr = t.toTypedArray();
      assert.equal(arr.constructor.name, expectedArray[dtype], dtype);
      assert.deepEqual(Array.from(arr as ArrayLike<number | bigint>, Number), dtype === 'bool' ? [0, 1, 1] : [0, 1, 2], dtype);
    }
  }));

  it('inference from JavaScript data and defaults', () => tidy(() => {
    assert.equal(tensor([1, 2]).dtype, 'int64');
    assert.equal(tensor([1, 2.5]).dtype, 'float32');
    assert.equal(tensor([true, false]).dtype, 'bool');
    assert.equal(tensor(new Float64Array([1])).dtype, 'float64');
    assert.equal(zeros([2]).dtype, 'float32');
    assert.equal(full([2], 3).dtype, 'int64');
    assert.equal(full([2], 3.5).dtype, 'float32');
    assert.equal(arange(3).dtype, 'int64');
    assert.equal(arange(0, 1, 0.25).dtype, 'float32');
    assertClose(arange(0, 1, 0.25).toTypedArray(), [0, 0.25, 0.5, 0.75]);
    assert.equal(tensor([2 ** 40]).item(), 2 ** 40, 'int64 beyond int32 survives');
  }));

  it('typed array with an explicit shape', () => tidy(() => {
    const t = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
    assert.deepEqual(t.shape, [2, 3]);
    assert.deepEqual(t.toArray(), [[1, 2, 3], [4, 5, 6]]);
    assert.throws(() => tensor(new Float32Array(5), { shape: [2, 3] }), /holds 6 elements but the array has 5/);
  }));
});
