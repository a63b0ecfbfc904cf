// Schedules against transformers.get_scheduler stepped through torch's LambdaLR.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LrSchedule, type ScheduleName, warmupSteps } from '../../lib/train/schedule.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

interface Case { name: ScheduleName; total: number; warmup: number; base_lrs: number[]; lrs: number[][] }

describe('learning-rate schedules', () => {
  it('match transformers get_scheduler step by step (warmup as steps and as a ratio)', () => {
    const dir = cachedFixture('schedules', 'schedule_reference.py');
    const cases = JSON.parse(readFileSync(join(dir, 'schedules.json'), 'utf8')) as Case[];
    assert.equal(cases.length, 24);
    for (const c of cases) {
      const s = new LrSchedule({ name: c.name, totalSteps: c.total, warmup: c.warmup }, c.base_lrs);
      // Same operations in the same order; only Math.cos and libm's cos may differ in the last
      // bit, which 1 + cos(x) magnifies near the end of a cosine schedule (seen: 3e-15 relative).
      c.lrs.forEach((expected, step) =>
        assertClose(s.lrs(step), expected, { atol: 0, rtol: 1e-12, message: `${c.name} total ${c.total} warmup ${c.warmup} step ${step}` }));
    }
  });

  it('warmup: >= 1 is steps, below 1 a fraction rounded up; nonsense is refused', () => {
    assert.equal(warmupSteps(0.1, 17), 2);
    assert.equal(warmupSteps(3.7, 100), 3);
    assert.equal(warmupSteps(0, 100), 0);
    assert.throws(() => warmupSteps(-1, 10), /non-negative/);
    assert.throws(() => new LrSchedule({ name: 'linear', totalSteps: 0 }, [1]), /positive whole number of steps/);
  });
});
