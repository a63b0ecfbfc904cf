// Deterministic release: dispose, `using`, tidy (sync, nested, async), and liveTensors().
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { keep, liveTensors, ones, randn, tensor, tidy, zeros, type Tensor } from '../../lib/torch/index.ts';

describe('memory', () => {
  it('dispose releases exactly one tensor and is idempotent', () => {
    const start = liveTensors();
    const t = zeros([4]);
    assert.equal(liveTensors(), start + 1);
    t.dispose();
    t.dispose();
    assert.equal(liveTensors(), start);
    assert.equal(t.isDisposed, true);
  });

  it('`using` disposes at the end of the block', () => {
    const start = liveTensors();
    {
      using a = ones([2, 2]);
      using b = a.add(1);
      const total = b.sum();
      assert.equal(total.item(), 8);
      assert.equal(liveTensors(), start + 3, 'a, b and the unscoped sum are alive');
      total.dispose();
    }
    assert.equal(liveTensors(), start, 'a and b were disposed at the end of the block');
  });

  it('tidy frees intermediates and keeps the result', () => {
    const start = liveTensors();
    const result = tidy(() => {
      const a = randn([8, 8]);
      const b = a.matmul(a).relu();
      return b.sum(1);
    });
    assert.equal(liveTensors(), start + 1);
    assert.equal(result.shape[0], 8);
    result.dispose();
    assert.equal(liveTensors(), start);
  });

  it('tidy keeps tensors inside returned arrays and objects, and frees them on throw', () => {
    const start = liveTensors();
    const { pair, nested } = tidy(() => {
      const a = ones([2]);
      const b = a.mul(3);
      const c = b.add(1);
      return { pair: [a, c] as [Tensor, Tensor], nested: { deep: [b] } };
    });
    assert.equal(liveTensors(), start + 3);
    for (const t of [...pair, ...nested.deep]) t.dispose();
    assert.equal(liveTensors(), start);
    assert.throws(() => tidy(() => {
      zeros([3]).add(1);
      throw new Error('fails midway');
    }), /fails midway/);
    assert.equal(liveTensors(), start);
  });

  it('nested scopes move survivors outward', () => {
    const start = liveTensors();
    tidy(() => {
      const outer = tidy(() => {
        const inner = tidy(() => ones([3]).mul(2));
        assert.equal(liveTensors(), start + 1);
        return inner.add(1);
      });
      assert.equal(liveTensors(), start + 1);
      assert.equal(outer.sum().item(), 9);
    });
    assert.equal(liveTensors(), start, 'the outermost scope frees what inner scopes handed up');
  });

  it('keep() takes a tensor out of its scope', () => {
    const start = liveTensors();
    let kept: Tensor | undefined;
    tidy(() => {
      kept = keep(ones([2]));
      zeros([2]);
    });
    assert.equal(liveTensors(), start + 1);
    kept!.dispose();
    assert.equal(liveTensors(), start);
  });

  it('async tidy follows the promise chain', async () => {
    const start = liveTensors();
    const result = await tidy(async () => {
      const a = randn([16, 16]);
      await new Promise((r) => setTimeout(r, 5));
      const b = await a.matmulAsync(a);
      await new Promise((r) => setImmediate(r));
      zeros([4]);
      return b.sum();
    });
    assert.equal(liveTensors(), start + 1);
    result.dispose();
    assert.equal(liveTensors(), start);
  });

  it('concurrent async scopes do not see each other', async () => {
    const start = liveTensors();
    const run = (n: number) => tidy(async () => {
      const t = ones([n]);
      await new Promise((r) => setTimeout(r, n));
      return t.sum().item();
    });
    const sums = await Promise.all([run(3), run(7), run(5)]);
    assert.deepEqual(sums, [3, 7, 5]);
    assert.equal(liveTensors(), start);
  });

  it('a loop of 1000 steps inside tidy ends where it started', () => {
    const start = liveTensors();
    for (let i = 0; i < 1000; i++) assert.equal(tidy(() => tensor([i, i + 1]).mul(2).sum().item()), 4 * i + 2);
    assert.equal(liveTensors(), start);
  });
});
