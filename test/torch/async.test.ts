// The compute queue: jobs run off the main thread, in submission order, one at a time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { native, randn, synchronize, tidy } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';

describe('compute queue', () => {
  it('the event loop keeps running while native work runs', async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const value = await native().sleepAsync(120, 42);
    clearInterval(timer);
    assert.equal(value, 42);
    assert.ok(ticks >= 5, `timers fired ${ticks} times during a 120 ms native job`);
  });

  it('jobs settle in submission order', async () => {
    const order: number[] = [];
    const jobs = [60, 5, 30, 1].map((ms, i) => native().sleepAsync(ms, i).then((v) => order.push(v)));
    await Promise.all(jobs);
    assert.deepEqual(order, [0, 1, 2, 3]);
  });

  it('async matmul equals the synchronous one, and holds its inputs alive', async () => tidy(async () => {
    const a = randn([32, 32]);
    const b = randn([32, 32]);
    const pending = a.matmulAsync(b);
    const expected = a.matmul(b).toTypedArray();
    a.dispose(); // the queued job keeps its own reference
    const result = await pending;
    assertClose(result.toTypedArray(), expected, { atol: 1e-5 });
    assertClose(await result.toFloat32Async(), expected, { atol: 1e-5 });
    await synchronize();
    assert.equal(native().queuePending(), 0);
  }));
});
