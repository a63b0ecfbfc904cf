// Forward ops against PyTorch (test/fixtures/core-reference.json, made by
// scripts/python/make_core_fixtures.py) and against values worked out by hand.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { F, cat, stack, tensor, arange, where, tidy, slice, type NestedArray } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { readFixture } from '../helpers/fixtures.ts';

interface CoreReference {
  inputs: { x: number[][]; w: number[][]; b: number[] };
  [key: string]: unknown;
}
const ref = readFixture<CoreReference>('core-reference.json');

describe('math against PyTorch', () => {
  it('matmul, linear, softmax, log_softmax', () => tidy(() => {
    const x = tensor(ref.inputs.x);
    const w = tensor(ref.inputs.w);
    const b = tensor(ref.inputs.b);
    const y = x.matmul(w);
    assert.deepEqual(y.shape, [3, 5]);
    assertClose(y.toTypedArray(), ref['matmul'], { atol: 1e-5 });
    assertClose(F.linear(x, w.T, b).toTypedArray(), ref['linear'], { atol: 1e-5 });
    assertClose(y.softmax(1).toTypedArray(), ref['softmax_dim1'], { atol: 1e-6 });
    assertClose(y.logSoftmax(0).toTypedArray(), ref['log_softmax_dim0'], { atol: 1e-5 });
    assertClose(F.layerNorm(y, [5]).toTypedArray(), ref['layer_norm'], { atol: 1e-5 });
    assertClose(y.gelu().toTypedArray(), ref['gelu'], { atol: 1e-6 });
    assertClose(y.gelu('tanh').toTypedArray(), ref['gelu_tanh'], { atol: 1e-6 });
  }));

  it('reductions', () => tidy(() => {
    const y = tensor(ref.inputs.x).matmul(tensor(ref.inputs.w));
    assertClose(y.sum().item(), ref['sum'], { atol: 1e-5 });
    assertClose(y.sum(0).toTypedArray(), ref['sum_dim0'], { atol: 1e-5 });
    const m = y.mean(1, { keepdim: true });
    assert.deepEqual(m.shape, [3, 1]);
    assertClose(m.toTypedArray(), ref['mean_dim1_keepdim'], { atol: 1e-6 });
    assertClose(y.std(1).toTypedArray(), ref['std_dim1'], { atol: 1e-5 });
    assertClose(y.var().item(), ref['var_all'], { atol: 1e-5 });
    assertClose(y.norm(2, 1).toTypedArray(), ref['norm_dim1'], { atol: 1e-5 });
    assertClose(y.logsumexp(1).toTypedArray(), ref['logsumexp_dim1'], { atol: 1e-5 });
    assertClose(y.max(0).toTypedArray(), ref['amax_dim0'], { atol: 1e-6 });
    assert.deepEqual(Array.from(y.argmax(1).toTypedArray(), Number), ref['argmax_dim1']);
    assertClose(y.cumsum(1).toTypedArray(), ref['cumsum_dim1'], { atol: 1e-5 });
  }));

  it('losses', () => tidy(() => {
    const y = tensor(ref.inputs.x).matmul(tensor(ref.inputs.w));
    const target = tensor([1, 4, 0]);
    assertClose(F.crossEntropy(y, target).item(), ref['cross_entropy'], { atol: 1e-6 });
    assertClose(F.crossEntropy(y, target, { labelSmoothing: 0.1 }).item(), ref['cross_entropy_smooth'], { atol: 1e-6 });
    const labels = arange(15).reshape(3, 5).remainder(3).eq(0).float();
    assertClose(F.binaryCrossEntropyWithLogits(y, labels).item(), ref['bce_with_logits'], { atol: 1e-6 });
  }));
});

describe('math by hand', () => {
  it('matmul of small integers', () => tidy(() => {
    const a = tensor([[1, 2], [3, 4]], { dtype: 'float32' });
    const b = tensor([[5, 6], [7, 8]], { dtype: 'float32' });
    assert.deepEqual(a.matmul(b).toArray(), [[19, 22], [43, 50]]);
  }));

  it('softmax of [0, ln 2, ln 3] is [1/6, 2/6, 3/6]', () => tidy(() => {
    const s = tensor([0, Math.log(2), Math.log(3)]).softmax(0);
    assertClose(s.toTypedArray(), [1 / 6, 2 / 6, 3 / 6], { atol: 1e-7 });
  }));

  it('broadcasting and scalar promotion follow PyTorch', () => tidy(() => {
    const col = tensor([[1], [2], [3]]);
    const row = tensor([10, 20]);
    const sum = col.add(row);
    assert.deepEqual(sum.shape, [3, 2]);
    assert.equal(sum.dtype, 'int64');
    assert.deepEqual(sum.toArray(), [[11, 21], [12, 22], [13, 23]]);
    assert.equal(col.mul(2).dtype, 'int64', 'an integral JS number keeps an int tensor integral');
    assert.equal(col.mul(0.5).dtype, 'float32', 'a fractional JS number promotes to the default float');
    assert.equal(tensor([1, 2], { dtype: 'float16' }).add(1.5).dtype, 'float16', 'a scalar does not widen a float16 tensor');
    assert.deepEqual(col.gt(1).toArray(), [[false], [true], [true]]);
  }));

  it('sum, mean, max over dims', () => tidy(() => {
    const t = tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float32' });
    assert.equal(t.sum().item(), 21);
    assert.deepEqual(t.sum(0).toArray(), [5, 7, 9]);
    assert.deepEqual(t.mean(1).toArray(), [2, 5]);
    const [values, indices] = t.maxWithIndices(1);
    assert.deepEqual(values.toArray(), [3, 6]);
    assert.deepEqual(indices.toArray(), [2, 2]);
    assert.equal(t.prod().item(), 720);
  }));

  it('indexing, slicing, narrow, cat and stack', () => tidy(() => {
    const t = arange(12).reshape(3, 4);
    assert.deepEqual(t.index(1).toArray(), [4, 5, 6, 7]);
    assert.deepEqual(t.index(':', slice(1, null, 2)).toArray(), [[1, 3], [5, 7], [9, 11]]);
    assert.deepEqual(t.index(null, 0, -1).shape, [1]);
    assert.deepEqual(t.index('...', 0).toArray(), [0, 4, 8]);
    assert.deepEqual(t.index(t.gt(9)).toArray(), [10, 11]);
    assert.deepEqual(t.narrow(1, 1, 2).toArray(), [[1, 2], [5, 6], [9, 10]]);
    assert.deepEqual(t.select(0, 2).toArray(), [8, 9, 10, 11]);
    assert.deepEqual(t.slice(0, 0, 3, 2).toArray(), [[0, 1, 2, 3], [8, 9, 10, 11]]);
    assert.deepEqual(cat([t.index(0), t.index(1)]).shape, [8]);
    assert.deepEqual(stack([t.index(0), t.index(1)], 1).shape, [4, 2]);
    const u = t.clone();
    u.indexPut_([':', 0], -1);
    assert.deepEqual(u.index(':', 0).toArray(), [-1, -1, -1]);
    assert.deepEqual(where(t.lt(2), t, 0).index(0).toArray(), [0, 1, 0, 0]);
  }));

  it('reshape, view, permute, transpose, contiguous, strides', () => tidy(() => {
    const t = arange(24).reshape(2, 3, 4);
    assert.deepEqual(t.strides, [12, 4, 1]);
    const p = t.permute(2, 0, 1);
    assert.deepEqual(p.shape, [4, 2, 3]);
    assert.deepEqual(p.strides, [1, 12, 4]);
    assert.equal(p.isContiguous, false);
    assert.equal(p.contiguous().isContiguous, true);
    assert.deepEqual(t.transpose(0, 2).shape, [4, 3, 2]);
    assert.deepEqual(t.view(6, 4).index(5).toArray(), [20, 21, 22, 23]);
    assert.deepEqual(t.flatten().shape, [24]);
    assert.deepEqual(t.unsqueeze(0).squeeze(0).shape, [2, 3, 4]);
    assert.deepEqual(t.split(1, 0).map((x) => x.shape), [[1, 3, 4], [1, 3, 4]]);
  }));

  it('toArray round-trips nested data', () => tidy(() => {
    const data: NestedArray = [[[1.5, -2], [3, 4]], [[5, 6], [7, 8.25]]];
    assert.deepEqual(tensor(data).toArray(), data);
  }));
});
