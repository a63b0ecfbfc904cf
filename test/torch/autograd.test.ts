import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { F, grad, isGradEnabled, noGrad, tensor, tidy } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { readFixture } from '../helpers/fixtures.ts';

interface Ref {
  inputs: { x: number[][]; w: number[][]; b: number[] };
  composite: { value: number; grad_x: number[][]; grad_w: number[][]; grad_b: number[] };
}
const ref = readFixture<Ref>('core-reference.json');

describe('autograd', () => {
  it('gradient of a composite function equals PyTorch', () => tidy(() => {
    const x = tensor(ref.inputs.x, { requiresGrad: true });
    const w = tensor(ref.inputs.w, { requiresGrad: true });
    const b = tensor(ref.inputs.b, { requiresGrad: true });
    const z = x.matmul(w).add(b);
    // logsigmoid(z) = -softplus(-z) = z - log(1 + exp(z)) = -log1p(exp(-z))
    const logSigmoid = z.neg().exp().log1p().neg();
    const f = z.softmax(-1).mul(logSigmoid).sum().add(w.tanh().pow(2).mean());
    assertClose(f.item(), ref.composite.value, { atol: 1e-5 });
    f.backward();
    assertClose(x.grad!.toTypedArray(), ref.composite.grad_x, { atol: 1e-5 });
    assertClose(w.grad!.toTypedArray(), ref.composite.grad_w, { atol: 1e-5 });
    assertClose(b.grad!.toTypedArray(), ref.composite.grad_b, { atol: 1e-5 });
    assert.equal(x.isLeaf, true);
    assert.equal(z.isLeaf, false);
    assert.equal(z.gradFn, 'AddBackward0');
  }));

  it('d/dx sum(x^3) = 3x^2 by hand, and grads accumulate', () => tidy(() => {
    const x = tensor([1, -2, 0.5], { requiresGrad: true });
    x.pow(3).sum().backward();
    assertClose(x.grad!.toTypedArray(), [3, 12, 0.75]);
    x.pow(3).sum().backward();
    assertClose(x.grad!.toTypedArray(), [6, 24, 1.5], { message: 'second backward accumulates' });
    x.grad = null;
    assert.equal(x.grad, null);
  }));

  it('grad() returns gradients without touching .grad', () => tidy(() => {
    const x = tensor([2, 3], { requiresGrad: true });
    const [g] = grad(x.mul(x).sum(), x);
    assertClose(g!.toTypedArray(), [4, 6]);
    assert.equal(x.grad, null);
  }));

  it('noGrad turns tracking off and restores it, even on throw', () => tidy(() => {
    const x = tensor([1, 2], { requiresGrad: true });
    const y = noGrad(() => x.mul(2));
    assert.equal(y.requiresGrad, false);
    assert.equal(isGradEnabled(), true);
    assert.throws(() => noGrad(() => { throw new Error('inside'); }), /inside/);
    assert.equal(isGradEnabled(), true);
    assert.equal(x.mul(2).requiresGrad, true);
    assert.throws(() => noGrad(async () => 1), /synchronous function/);
    assert.equal(isGradEnabled(), true);
  }));

  it('detach cuts the graph; backward on a non-scalar needs a gradient', () => tidy(() => {
    const x = tensor([1, 2], { requiresGrad: true });
    assert.equal(x.mul(3).detach().requiresGrad, false);
    assert.throws(() => x.mul(3).backward(), /gradient must be given/);
    assert.throws(() => tensor([1, 2]).sum().backward(), /does not require grad/);
    assert.throws(() => tensor([1, 2]).requiresGrad_(true), /only floating-point/);
  }));

  it('cross entropy gradient equals softmax minus one-hot over batch size', () => tidy(() => {
    const logits = tensor([[1, 2, 3], [1, 1, 1]], { requiresGrad: true });
    F.crossEntropy(logits, tensor([2, 0])).backward();
    const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
    const s = e.reduce((a, v) => a + v, 0);
    const expected = [e[0]! / s / 2, e[1]! / s / 2, (e[2]! / s - 1) / 2, (1 / 3 - 1) / 2, 1 / 6, 1 / 6];
    assertClose(logits.grad!.toTypedArray(), expected, { atol: 1e-7 });
  }));
});
