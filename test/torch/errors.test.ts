// Native errors arrive as JavaScript Errors with libtorch's message; nothing aborts the process.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { native, ones, tensor, tidy, zeros } from '../../lib/torch/index.ts';
import type { DType, Device } from '../../lib/torch/index.ts';

describe('errors', () => {
  it('shape mismatch keeps libtorch message, without the C++ backtrace', () => tidy(() => {
    const err = captureError(() => zeros([2, 3]).matmul(zeros([4, 5])));
    assert.ok(err instanceof Error);
    assert.match(err.message, /mat1 and mat2 shapes cannot be multiplied \(2x3 and 4x5\)/);
    assert.doesNotMatch(err.message, /Exception raised from|frame #/);
    assert.throws(() => ones([2, 3]).add(ones([4])), /size of tensor a \(3\) must match the size of tensor b \(4\)/);
    assert.throws(() => ones([6]).view(4, 2), /shape '\[4, 2\]' is invalid for input of size 6/);
  }));

  it('bad dtype and unknown device are TypeErrors that list what is valid', () => {
    assert.throws(() => zeros([2], { dtype: 'float33' as DType }), (e: Error) => e instanceof TypeError && /unknown dtype 'float33'.*float32/.test(e.message));
    assert.throws(() => zeros([2], { device: 'gpu' as Device }), (e: Error) => e instanceof TypeError && /unknown device 'gpu'/.test(e.message));
    assert.throws(() => zeros([2], { device: 'cuda:0' }), (e: Error & { code?: string }) => e.code === 'MEDTUNE_NO_CUDA' || /does not exist/.test(e.message));
  });

  it('a disposed tensor used again is an Error, not a crash', () => {
    const t = ones([3]);
    t.dispose();
    assert.throws(() => t.add(1), (e: Error & { code?: string }) => e.code === 'MEDTUNE_DISPOSED' && /add\(\): argument 1: the tensor was disposed/.test(e.message));
    assert.throws(() => t.sum(), /disposed/);
    assert.throws(() => t.toTypedArray(), /disposed/);
    const u = ones([3]);
    assert.throws(() => u.add(t), /argument 2: the tensor was disposed/);
    u.dispose();
  });

  it('wrong argument types name the function and argument', () => {
    const n = native() as unknown as Record<string, (...a: unknown[]) => unknown>;
    assert.throws(() => n['matmul']!('x', 1), /matmul\(\): argument 1 must be a Tensor, number or boolean, got string/);
    assert.throws(() => n['zeros']!([2, 'a']), /zeros\/ones\/empty\(\): argument 1\[1\] must be an integer/);
    assert.throws(() => n['reshape']!({}, [1]), /reshape\(\): argument 1 must be a Tensor, got object/);
    assert.throws(() => tensor([[1, 2], [3]]), /ragged nested array at data\[1\]/);
    assert.throws(() => ones([2]).item(), /has 2 elements/);
    assert.throws(() => zeros([-1]), /negative dimension/);
  });

  it('native errors carry the backtrace separately for debugging', () => {
    const err = captureError(() => zeros([2, 3]).matmul(zeros([4, 5]))) as Error & { nativeStack?: string };
    assert.equal(typeof err.nativeStack, 'string');
    assert.equal(Object.keys(err).includes('nativeStack'), false, 'not enumerable');
  });

  it('an async job that fails rejects with the message', async () => {
    await assert.rejects(native().failAsync('worker failed on purpose'), /worker failed on purpose/);
    const bad = zeros([2, 3]);
    await assert.rejects(bad.matmulAsync(zeros([4, 5])), /shapes cannot be multiplied/);
    bad.dispose();
  });
});

function captureError(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}
