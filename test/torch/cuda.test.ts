// CUDA status and caching-allocator statistics. On a CPU build they report "not compiled in"
// instead of throwing; the allocator numbers are checked on a CUDA device (skipped elsewhere,
// with the reason).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildInfo, cuda, zeros } from '../../lib/torch/index.ts';

const status = cuda.status();
const build = buildInfo();
const MiB = 2 ** 20;

describe('cuda status', () => {
  it('agrees with the build variant and the runtime facts', () => {
    assert.equal(status.compiled, build.variant === 'cuda');
    assert.equal(status.deviceCount, cuda.deviceCount());
    assert.equal(cuda.devices().length, status.deviceCount);
    if (status.compiled) {
      assert.match(build.cudaVersion!, /^\d+\.\d+$/);
      // The loaded libcudart has the compiled-in major (its soname); without a driver it may not say.
      if (status.runtimeVersion !== null) assert.equal(status.runtimeVersion.split('.')[0], build.cudaVersion!.split('.')[0]);
      assert.equal(status.reason === null, status.deviceCount > 0);
    } else {
      assert.equal(status.runtimeVersion, null);
      assert.match(status.reason!, /CUDA is not compiled into this medtune build \(cpu variant\)/);
    }
  });

  it('memory functions answer without CUDA instead of throwing, and reject impossible devices', { skip: status.deviceCount > 0 ? 'a CUDA device is visible (see the device tests)' : false }, () => {
    const stats = cuda.memoryStats();
    assert.equal(stats.available, false);
    assert.equal(stats.device, 0);
    if (!stats.available) assert.match(stats.reason, status.compiled ? /no CUDA device is visible/ : /not compiled in/);
    assert.deepEqual(cuda.memoryStatsAll(), []);
    assert.equal(cuda.resetPeakMemoryStats(), false);
    assert.equal(cuda.emptyCache(), false);
    assert.throws(() => cuda.memoryStats(-1), /device must be a non-negative integer, got -1/);
    assert.throws(() => cuda.memoryStats(0.5), TypeError);
  });
});

describe('cuda caching allocator', { skip: status.deviceCount > 0 ? false : `needs a CUDA device: ${status.reason}` }, () => {
  it('lists devices with name, memory and compute capability', () => {
    for (const d of cuda.devices()) {
      assert.ok(d.name.length > 0);
      assert.ok(d.totalMemory > 2 ** 30);
      assert.match(d.capability, /^\d+\.\d+$/);
      assert.ok(d.multiProcessors > 0);
    }
  });

  it('counts a tensor exactly, keeps the peak, resets it and releases the cache', () => {
    cuda.emptyCache();
    const before = cuda.memoryStats(0);
    assert.ok(before.available);
    const t = zeros([16 * MiB], { dtype: 'float32', device: 'cuda:0' }); // 64 MiB
    const during = cuda.memoryStats(0);
    assert.ok(during.available);
    assert.equal(during.allocated - before.allocated, 64 * MiB);
    assert.ok(during.reserved >= during.allocated);
    assert.ok(during.peakAllocated >= during.allocated);
    t.dispose();
    const after = cuda.memoryStats(0);
    assert.ok(after.available);
    assert.equal(after.allocated, before.allocated);
    assert.ok(after.peakAllocated >= before.allocated + 64 * MiB, 'the peak survives the free');
    assert.ok(after.reserved >= 64 * MiB, 'the freed block stays cached');
    assert.equal(cuda.resetPeakMemoryStats(0), true);
    const reset = cuda.memoryStats(0);
    assert.ok(reset.available);
    assert.equal(reset.peakAllocated, reset.allocated);
    assert.equal(cuda.emptyCache(), true);
    const emptied = cuda.memoryStats(0);
    assert.ok(emptied.available);
    assert.ok(emptied.reserved <= after.reserved - 64 * MiB, 'emptyCache returned the cached block');
  });

  it('a device index past the visible devices is an error', () => {
    assert.throws(() => cuda.memoryStats(status.deviceCount), new RegExp(`there is no cuda:${status.deviceCount}`));
  });
});
