// The per-step JSONL log (--log FILE.jsonl): one JSON object per line, written as each optimizer
// step or evaluation finishes, so a crashed run keeps everything up to its last step.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export interface StepRecord {
  type: 'train';
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  grad_norm: number;
  samples: number;
  /** Input tokens (attention-mask positions) for token models. */
  tokens?: number;
  /** Tokens with a label (the loss's denominator) for token models. */
  supervised_tokens?: number;
  /** fp16: the loss scale the step ran with (torch.amp.GradScaler's). */
  loss_scale?: number;
  /** fp16: the loss scaler skipped this step's update (inf/NaN gradients); the schedule did not advance. */
  skipped?: boolean;
  /** Wall time of the step as the event loop sees it (awaiting the batch, the native call, the result). */
  step_ms: number;
  /**
   * Time inside the native step (forward, backward, clipping, update; steady_clock in
   * csrc/train/train_step.cpp). step_ms - native_ms is what the step costs outside libtorch's
   * work: the N-API call, the compute-queue hand-off and this loop.
   */
  native_ms: number;
  samples_per_s: number;
  tokens_per_s?: number;
}

export interface EvalRecord {
  type: 'eval';
  step: number;
  epoch: number;
  eval_loss: number;
  eval_samples: number;
  eval_ms: number;
  [metric: string]: number | string;
}

export class JsonlLog {
  #fd: number | null;
  constructor(readonly path: string, opts: { append?: boolean } = {}) {
    mkdirSync(dirname(path), { recursive: true });
    this.#fd = openSync(path, opts.append ? 'a' : 'w');
  }

  write(record: StepRecord | EvalRecord | Record<string, unknown>): void {
    if (this.#fd === null) throw new Error(`${this.path}: the log is closed`);
    writeSync(this.#fd, `${JSON.stringify(record)}\n`);
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }
}
