// The comparison's verdict and report: per-step losses and gradient norms of both sides and their
// differences, trainable-parameter counts, speed and peak memory with medtune / PyTorch ratios.
import type { TrainConfig, TrainDType } from '../train/config.ts';
import type { SideResult, SideStep } from './types.ts';

export const REPORT_FORMAT = 'medtune.compare_report/1';

/** Default relative loss tolerance: fp32 agrees to ~1e-6 in practice; half types round at ~4e-3 a step. */
export function defaultTolerance(dtype: TrainDType): number {
  return dtype === 'fp32' ? 1e-4 : 2e-2;
}

export interface StepComparison {
  step: number;
  medtune: SideStep;
  pytorch: SideStep;
  loss_abs_diff: number;
  loss_rel_diff: number;
  grad_norm_abs_diff: number;
  grad_norm_rel_diff: number;
}

export interface SideSummary {
  median_step_ms: number;
  samples_per_s: number;
  tokens_per_s: number | null;
  peak_rss_bytes: number;
  rss_before_training_bytes: number | null;
  cuda_peak_allocated_bytes: number | null;
  trainable: number;
  total: number;
  trainable_tensors: number;
  load_s: number;
  device: string;
  threads: number;
  versions: Record<string, string>;
}

export interface CompareReport {
  format: typeof REPORT_FORMAT;
  created: string;
  run: Record<string, unknown>;
  tolerance: { loss_relative: number };
  ok: boolean;
  /** Why not ok (empty when ok). */
  failures: string[];
  loss: { max_abs_diff: number; max_rel_diff: number; worst_step: number };
  grad_norm: { max_abs_diff: number; max_rel_diff: number };
  trainable: { medtune: number; pytorch: number; equal: boolean; selection_mismatch: SideResult['selection_mismatch'] | null };
  medtune: SideSummary;
  pytorch: SideSummary;
  /** medtune / PyTorch: below 1 means medtune is faster (step time) or uses less memory. */
  ratios: { median_step_time: number; samples_per_s: number; tokens_per_s: number | null; peak_rss: number; cuda_peak_allocated: number | null };
  steps: StepComparison[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** |a - b| relative to the larger magnitude (0 when both are 0; Infinity when either is not finite). */
export function relDiff(a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
  const scale = Math.max(Math.abs(a), Math.abs(b));
  return scale === 0 ? 0 : Math.abs(a - b) / scale;
}

function absDiff(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) ? Math.abs(a - b) : Infinity;
}

function summarise(r: SideResult): SideSummary {
  const ms = median(r.steps.map((s) => s.step_ms));
  const samples = median(r.steps.map((s) => s.samples));
  const hasTokens = r.steps.length > 0 && r.steps.every((s) => s.tokens !== undefined);
  return {
    median_step_ms: ms,
    // per median step: the first step's warm-up does not count
    samples_per_s: samples / (ms / 1000),
    tokens_per_s: hasTokens ? median(r.steps.map((s) => s.tokens!)) / (ms / 1000) : null,
    peak_rss_bytes: r.memory.peak_rss_bytes,
    rss_before_training_bytes: r.memory.rss_before_training_bytes,
    cuda_peak_allocated_bytes: r.memory.cuda_peak_allocated_bytes,
    trainable: r.trainable.count,
    total: r.trainable.total,
    trainable_tensors: r.trainable.tensors,
    load_s: r.load_s,
    device: r.device,
    threads: r.threads,
    versions: r.versions,
  };
}

export function buildReport(medtune: SideResult, pytorch: SideResult, opts: { tolerance: number; run: Record<string, unknown> }): CompareReport {
  const failures: string[] = [];
  if (medtune.steps.length !== pytorch.steps.length) failures.push(`medtune ran ${medtune.steps.length} steps, PyTorch ${pytorch.steps.length}`);
  const n = Math.min(medtune.steps.length, pytorch.steps.length);
  const steps: StepComparison[] = [];
  for (let i = 0; i < n; i++) {
    const a = medtune.steps[i]!;
    const b = pytorch.steps[i]!;
    steps.push({
      step: i + 1, medtune: a, pytorch: b,
      loss_abs_diff: absDiff(a.loss, b.loss), loss_rel_diff: relDiff(a.loss, b.loss),
      grad_norm_abs_diff: absDiff(a.grad_norm, b.grad_norm), grad_norm_rel_diff: relDiff(a.grad_norm, b.grad_norm),
    });
  }
  const worst = steps.reduce((w, s) => (s.loss_rel_diff > (w?.loss_rel_diff ?? -1) ? s : w), steps[0]);
  const loss = {
    max_abs_diff: Math.max(0, ...steps.map((s) => s.loss_abs_diff)),
    max_rel_diff: Math.max(0, ...steps.map((s) => s.loss_rel_diff)),
    worst_step: worst?.step ?? 0,
  };
  if (worst && !(loss.max_rel_diff <= opts.tolerance)) {
    failures.push(`losses diverge: at step ${worst.step} medtune ${worst.medtune.loss} vs PyTorch ${worst.pytorch.loss} ` +
      `(relative difference ${loss.max_rel_diff.toExponential(2)} > tolerance ${opts.tolerance})`);
  }
  const equal = medtune.trainable.count === pytorch.trainable.count;
  if (!equal) failures.push(`trainable parameters differ: medtune ${medtune.trainable.count}, PyTorch ${pytorch.trainable.count}`);
  const m = summarise(medtune);
  const p = summarise(pytorch);
  const ratio = (x: number | null, y: number | null) => (x !== null && y !== null && y > 0 ? x / y : null);
  return {
    format: REPORT_FORMAT,
    created: new Date().toISOString(),
    run: opts.run,
    tolerance: { loss_relative: opts.tolerance },
    ok: failures.length === 0,
    failures,
    loss,
    grad_norm: {
      max_abs_diff: Math.max(0, ...steps.map((s) => s.grad_norm_abs_diff)),
      max_rel_diff: Math.max(0, ...steps.map((s) => s.grad_norm_rel_diff)),
    },
    trainable: { medtune: medtune.trainable.count, pytorch: pytorch.trainable.count, equal, selection_mismatch: pytorch.selection_mismatch ?? null },
    medtune: m,
    pytorch: p,
    ratios: {
      median_step_time: m.median_step_ms / p.median_step_ms,
      samples_per_s: m.samples_per_s / p.samples_per_s,
      tokens_per_s: ratio(m.tokens_per_s, p.tokens_per_s),
      peak_rss: m.peak_rss_bytes / p.peak_rss_bytes,
      cuda_peak_allocated: ratio(m.cuda_peak_allocated_bytes, p.cuda_peak_allocated_bytes),
    },
    steps,
  };
}

/** The run's settings recorded in the report (what was compared). */
export function describeRun(o: { model: string; data: string; method: Record<string, unknown>; dtype: TrainDType; device: string; config: TrainConfig; examples: number }): Record<string, unknown> {
  const c = o.config;
  return {
    model: o.model, data: o.data, examples: o.examples, method: o.method, dtype: o.dtype, device: o.device,
    steps: c.steps, batch_size: c.batchSize, grad_accum: c.gradAccum, optimizer: c.optimizer, lr: c.lr, weight_decay: c.weightDecay,
    schedule: c.schedule, warmup: c.warmup, max_grad_norm: c.maxGradNorm, seed: c.seed, shuffle: c.shuffle, drop_last: c.dropLast,
  };
}

const MiB = 1024 * 1024;
const fmt = (x: number | null, digits = 1) => (x === null ? '–' : x.toFixed(digits));
const mib = (x: number | null) => (x === null ? '–' : (x / MiB).toFixed(1));
const exp = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));
const ratio = (x: number | null) => (x === null ? '–' : `${x.toFixed(2)}x`);

export function renderMarkdown(r: CompareReport): string {
  const run = r.run;
  const method = run['method'] as Record<string, unknown>;
  const methodText = Object.entries(method).map(([k, v]) => (k === 'method' ? String(v) : `--${k} ${String(v)}`)).join(' ');
  const lines = [
    `# medtune compare: ${methodText} on ${String(run['model'])}`,
    '',
    `${r.ok ? '**Agree**' : '**DIVERGE**'}: max loss difference ${exp(r.loss.max_abs_diff)} absolute, ${exp(r.loss.max_rel_diff)} relative ` +
      `(tolerance ${r.tolerance.loss_relative} relative); max gradient-norm difference ${exp(r.grad_norm.max_abs_diff)} absolute, ${exp(r.grad_norm.max_rel_diff)} relative.`,
    ...r.failures.map((f) => `- ${f}`),
    '',
    `${String(run['steps'])} steps of ${String(run['optimizer'])} (lr ${String(run['lr'])}, ${String(run['schedule'])} schedule, warmup ${String(run['warmup'])}, ` +
      `clip ${String(run['max_grad_norm'])}), batch ${String(run['batch_size'])} x accumulation ${String(run['grad_accum'])}, seed ${String(run['seed'])}, ` +
      `${String(run['dtype'])} on ${String(run['device'])}; data ${String(run['data'])} (${String(run['examples'])} examples).`,
    '',
    '| | medtune | PyTorch | medtune / PyTorch |',
    '|---|---:|---:|---:|',
    `| trainable parameters | ${r.medtune.trainable.toLocaleString('en-US')} | ${r.pytorch.trainable.toLocaleString('en-US')} | ${r.trainable.equal ? 'equal' : 'DIFFER'} |`,
    `| all parameters | ${r.medtune.total.toLocaleString('en-US')} | ${r.pytorch.total.toLocaleString('en-US')} | |`,
    `| median step time (ms) | ${fmt(r.medtune.median_step_ms, 2)} | ${fmt(r.pytorch.median_step_ms, 2)} | ${ratio(r.ratios.median_step_time)} |`,
    `| samples/s | ${fmt(r.medtune.samples_per_s)} | ${fmt(r.pytorch.samples_per_s)} | ${ratio(r.ratios.samples_per_s)} |`,
    ...(r.medtune.tokens_per_s !== null ? [`| tokens/s | ${fmt(r.medtune.tokens_per_s)} | ${fmt(r.pytorch.tokens_per_s)} | ${ratio(r.ratios.tokens_per_s)} |`] : []),
    `| peak RSS (MiB) | ${mib(r.medtune.peak_rss_bytes)} | ${mib(r.pytorch.peak_rss_bytes)} | ${ratio(r.ratios.peak_rss)} |`,
    `| RSS when training starts (MiB) | ${mib(r.medtune.rss_before_training_bytes)} | ${mib(r.pytorch.rss_before_training_bytes)} | |`,
    ...(r.medtune.cuda_peak_allocated_bytes !== null || r.pytorch.cuda_peak_allocated_bytes !== null
      ? [`| CUDA peak allocated (MiB) | ${mib(r.medtune.cuda_peak_allocated_bytes)} | ${mib(r.pytorch.cuda_peak_allocated_bytes)} | ${ratio(r.ratios.cuda_peak_allocated)} |`]
      : []),
    `| load + method (s) | ${fmt(r.medtune.load_s, 2)} | ${fmt(r.pytorch.load_s, 2)} | |`,
    `| threads | ${r.medtune.threads} | ${r.pytorch.threads} | |`,
    `| versions | ${Object.entries(r.medtune.versions).map(([k, v]) => `${k} ${v}`).join(', ')} | ${Object.entries(r.pytorch.versions).map(([k, v]) => `${k} ${v}`).join(', ')} | |`,
    '',
    'Peak RSS is each side\'s own process (getrusage max RSS: runtime, libraries, model, data and training together).',
    '',
    '![loss curves](loss.png)',
    '',
    '| step | lr | loss medtune | loss PyTorch | abs diff | rel diff | grad norm medtune | grad norm PyTorch | rel diff | ms medtune | ms PyTorch |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...r.steps.map((s) => `| ${s.step} | ${s.medtune.lr.toExponential(3)} | ${s.medtune.loss.toFixed(7)} | ${s.pytorch.loss.toFixed(7)} | ${exp(s.loss_abs_diff)} | ${exp(s.loss_rel_diff)} | ` +
      `${s.medtune.grad_norm.toFixed(6)} | ${s.pytorch.grad_norm.toFixed(6)} | ${exp(s.grad_norm_rel_diff)} | ${s.medtune.step_ms.toFixed(1)} | ${s.pytorch.step_ms.toFixed(1)} |`),
    '',
  ];
  if (r.trainable.selection_mismatch) {
    const mm = r.trainable.selection_mismatch;
    lines.push(`Parameters only PyTorch's selection trains: ${mm.only_pytorch.join(', ') || 'none'}; only medtune's: ${mm.only_medtune.join(', ') || 'none'}.`, '');
  }
  return lines.join('\n');
}
