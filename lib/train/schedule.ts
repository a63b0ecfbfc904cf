// Learning-rate schedules, numerically identical to transformers' get_scheduler: the factor that
// multiplies each group's base lr at optimizer step k (0-based) is the LambdaLR lambda at k.
// So with warmup the first step runs at lr 0, as in the HF Trainer.

export const SCHEDULES = ['constant', 'linear', 'cosine'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

export interface ScheduleSpec {
  name: ScheduleName;
  /** Optimizer steps in the whole run (linear and cosine reach 0 there). */
  totalSteps: number;
  /** Warmup: a value >= 1 is a number of steps, a value in [0, 1) a fraction of totalSteps (TrainingArguments.warmup_steps in transformers 5). */
  warmup?: number;
  /** Cosine only: number of waves (0.5 = one half-cosine from 1 to 0, the default). */
  numCycles?: number;
}

/** TrainingArguments.get_warmup_steps: int(w) steps when w >= 1, else ceil(total * w). */
export function warmupSteps(warmup: number, totalSteps: number): number {
  if (!(warmup >= 0) || !Number.isFinite(warmup)) throw new RangeError(`warmup must be a non-negative number (steps, or a fraction below 1), got ${warmup}`);
  return warmup >= 1 ? Math.trunc(warmup) : Math.ceil(totalSteps * warmup);
}

/** The lr multiplier at optimizer step `step` (0-based). */
export function scheduleFactor(spec: ScheduleSpec, step: number): number {
  const w = warmupSteps(spec.warmup ?? 0, spec.totalSteps);
  const n = spec.totalSteps;
  // _get_*_schedule_with_warmup_lr_lambda in transformers/optimization.py, operation for operation.
  if (step < w) return step / Math.max(1, w);
  switch (spec.name) {
    case 'constant':
      return 1.0;
    case 'linear':
      return Math.max(0.0, (n - step) / Math.max(1, n - w));
    case 'cosine': {
      const progress = (step - w) / Math.max(1, n - w);
      return Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * (spec.numCycles ?? 0.5) * 2.0 * progress)));
    }
  }
}

export function isScheduleName(s: string): s is ScheduleName {
  return (SCHEDULES as readonly string[]).includes(s);
}

/** Per-group learning rates over the run: base lr of each group times the schedule's factor. */
export class LrSchedule {
  constructor(readonly spec: ScheduleSpec, readonly baseLrs: readonly number[]) {
    if (!Number.isInteger(spec.totalSteps) || spec.totalSteps < 1) throw new RangeError(`the schedule needs a positive whole number of steps, got ${spec.totalSteps}`);
    warmupSteps(spec.warmup ?? 0, spec.totalSteps);
  }

  get warmupSteps(): number {
    return warmupSteps(this.spec.warmup ?? 0, this.spec.totalSteps);
  }

  factor(step: number): number {
    return scheduleFactor(this.spec, step);
  }

  /** The groups' learning rates for optimizer step `step` (0-based). */
  lrs(step: number): number[] {
    const f = this.factor(step);
    return this.baseLrs.map((b) => b * f);
  }

  /** What a checkpoint records to resume the schedule (the step itself is in the trainer state). */
  toJSON(): { spec: ScheduleSpec; baseLrs: readonly number[]; warmupSteps: number } {
    return { spec: this.spec, baseLrs: this.baseLrs, warmupSteps: this.warmupSteps };
  }
}
