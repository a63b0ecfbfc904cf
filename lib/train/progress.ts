// Progress output of a training run: on a terminal one line redrawn in place (a bar with step,
// loss, lr and throughput); elsewhere (CI logs, pipes) plain lines, one per `every` steps.

export interface ProgressSample {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  samplesPerS: number;
  tokensPerS?: number;
  elapsedMs: number;
}

export interface ProgressSink {
  step(s: ProgressSample): void;
  /** A line that must not be overwritten (eval results, checkpoints). */
  note(line: string): void;
  end(): void;
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (x: number) => String(x).padStart(2, '0');
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

function throughput(s: ProgressSample): string {
  return s.tokensPerS !== undefined ? `${s.tokensPerS.toFixed(0)} tok/s` : `${s.samplesPerS.toFixed(1)} samples/s`;
}

export function formatStepLine(s: ProgressSample): string {
  const width = String(s.totalSteps).length;
  return `step ${String(s.step).padStart(width)}/${s.totalSteps}  loss ${s.loss.toFixed(4)}  lr ${s.lr.toExponential(2)}  grad_norm ${s.gradNorm.toFixed(3)}  ${throughput(s)}`;
}

export class TerminalProgress implements ProgressSink {
  #last = '';
  constructor(private readonly out: NodeJS.WriteStream, private readonly barWidth = 24) {}

  step(s: ProgressSample): void {
    const done = Math.min(1, s.step / s.totalSteps);
    const filled = Math.round(done * this.barWidth);
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled ? '>' : ''}${' '.repeat(this.barWidth - filled)}`;
    const eta = s.step ? (s.elapsedMs / s.step) * (s.totalSteps - s.step) : 0;
    const line = `[${bar}] ${s.step}/${s.totalSteps} loss ${s.loss.toFixed(4)} lr ${s.lr.toExponential(2)} ${throughput(s)} ${duration(s.elapsedMs)}<${duration(eta)}`;
    const cols = this.out.columns || 120;
    this.#last = line.slice(0, cols - 1);
    this.out.write(`\r\x1b[2K${this.#last}`);
  }

  note(line: string): void {
    this.out.write(`\r\x1b[2K${line}\n${this.#last}`);
  }

  end(): void {
    if (this.#last) this.out.write('\n');
    this.#last = '';
  }
}

export class LineProgress implements ProgressSink {
  constructor(private readonly write: (line: string) => void, private readonly every = 1) {}

  step(s: ProgressSample): void {
    if (s.step === 1 || s.step % this.every === 0 || s.step === s.totalSteps) this.write(formatStepLine(s));
  }

  note(line: string): void {
    this.write(line);
  }

  end(): void {}
}

export const silentProgress: ProgressSink = { step() {}, note() {}, end() {} };

/** A bar on a terminal, plain lines otherwise (about 50 of them over the run). */
export function defaultProgress(totalSteps: number, out: NodeJS.WriteStream = process.stdout): ProgressSink {
  if (out.isTTY) return new TerminalProgress(out);
  return new LineProgress((line) => out.write(`${line}\n`), Math.max(1, Math.ceil(totalSteps / 50)));
}
