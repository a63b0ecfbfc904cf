// `npm run bench`: the fixed benchmark suite, every case against PyTorch in the same run, the
// sides alternating rounds (so a change in machine load hits both), same thread count, same model
// files and batches. Prints a table (medtune ms, PyTorch ms, ratio = medtune / PyTorch: < 1 means
// medtune is faster) and writes it as JSON with the machine and the versions, so runs can be
// compared (--compare OLD.json).
//
//   npm run bench [-- --quick] [--only REGEX] [--threads N] [--out FILE] [--compare OLD.json]
//
// Cases (scripts/bench/cases/): inference forward passes, a train step per tuning method (ln,
// ffn, attn, lora, full, applied as `medtune train --method` does) on ViT and LLaVA configs with
// the dispatch overhead (time per step outside the native step), greedy generation with a KV
// cache, checkpoint loading (fresh processes) and the image pipeline. --quick runs the tiny
// models and small files only (a smoke run).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildInfo, getNumThreads, PACKAGE_ROOT, setNumThreads } from '../../lib/torch/index.ts';
import { BENCH_CACHE, withWorker, type CaseResult, type PythonVersions } from './cases/common.ts';
import { imagePipelineCase } from './cases/image-pipeline.ts';
import { forwardCase, generateCase } from './cases/inference.ts';
import { ensureCheckpoint, loadCheckpointCase } from './cases/load-checkpoint.ts';
import { llavaSmall, llavaTiny, vitSmall, vitTiny, type BenchModel } from './cases/models.ts';
import { trainStepCase } from './cases/train-step.ts';

const HELP = `usage: npm run bench [-- options]
  --quick            tiny models and small files only (a smoke run)
  --only REGEX       run the cases whose "group case" matches (checkpoint load, image pipeline: the group)
  --threads N        intra-op threads on both sides (default: the CPU count)
  --out FILE         JSON output (default runs/bench/<timestamp>.json)
  --compare OLD.json print each case's ratio next to the old run's`;

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    threads: { type: 'string', default: String(Math.max(1, cpus().length)) },
    out: { type: 'string' },
    compare: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const quick = values.quick!;
const threads = Number(values.threads);
if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads must be a positive integer, got '${values.threads}'`);
const only = values.only ? new RegExp(values.only, 'i') : null;
const old = values.compare ? readRun(values.compare) : null;
setNumThreads(threads);

const METHODS = ['ln', 'ffn', 'attn', 'lora', 'full'];
const results: CaseResult[] = [];
const started = new Date();
let pythonVersions: PythonVersions | null = null;

function wanted(group: string, name = ''): boolean {
  return !only || only.test(`${group} ${name}`);
}

function report(r: CaseResult): void {
  results.push(r);
  console.log(`  ${r.group.padEnd(26)} ${r.name.padEnd(40)} ${fmt(r.medtune_ms).padStart(10)} ${fmt(r.pytorch_ms).padStart(10)} ${r.ratio.toFixed(2).padStart(6)} ${r.min_ratio.toFixed(2).padStart(6)}${r.note ? `  (${r.note})` : ''}`);
}

function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3);
}

// ---- the suite ----------------------------------------------------------------------------------

const trainModels: { make: () => Promise<BenchModel>; steps: number; warmup: number; rounds: number }[] = quick
  ? [{ make: vitTiny, steps: 8, warmup: 2, rounds: 1 }, { make: llavaTiny, steps: 8, warmup: 2, rounds: 1 }]
  : [
    { make: vitTiny, steps: 15, warmup: 3, rounds: 4 },
    { make: llavaTiny, steps: 15, warmup: 3, rounds: 4 },
    { make: vitSmall, steps: 4, warmup: 1, rounds: 2 },
    { make: llavaSmall, steps: 4, warmup: 1, rounds: 2 },
  ];
const inferenceModels = quick ? [vitTiny, llavaTiny] : [vitTiny, llavaTiny, vitSmall, llavaSmall];
const inference = quick ? { iters: 10, warmup: 2, rounds: 1 } : { iters: 10, warmup: 2, rounds: 3 };
const generation = quick ? { model: llavaTiny, tokens: 8, iters: 2, warmup: 1, rounds: 1 } : { model: llavaSmall, tokens: 32, iters: 3, warmup: 1, rounds: 2 };

const loadAtStart = loadavg().map((x) => Math.round(x * 100) / 100);
console.log(`medtune bench${quick ? ' --quick' : ''}: ${threads} thread(s) on both sides, CPU fp32 (checkpoint load: bf16)`);
if (loadAtStart[0]! > cpus().length) {
  console.log(`note: load average ${loadAtStart[0]} on ${cpus().length} CPUs: other work shares the machine, so times are inflated and noisy` +
    `${threads > 1 ? ' (several intra-op threads suffer most from it; --threads 1 is steadier)' : ''}; compare ratios, and the min ratio column`);
}
console.log(`  ${'group'.padEnd(26)} ${'case'.padEnd(40)} ${'medtune ms'.padStart(10)} ${'PyTorch ms'.padStart(10)} ${'ratio'.padStart(6)} ${'min'.padStart(6)}`);

// Forward passes, train steps and generation share one PyTorch interpreter (their family).
await withWorker(threads, async (worker, versions) => {
  pythonVersions = versions;
  for (const make of inferenceModels) {
    const m = await make();
    if (wanted('forward (no grad)', m.name)) report(await forwardCase(m, inference, worker));
  }
  for (const t of trainModels) {
    const m = await t.make();
    const group = `train ${m.name}`;
    for (const method of METHODS) {
      if (!wanted(group, method)) continue;
      report(await trainStepCase({ group, modelDir: m.modelDir, dataFile: m.dataFile, method, batch: m.batch, steps: t.steps, warmup: t.warmup, rounds: t.rounds }, worker));
    }
  }
  const g = await generation.model();
  if (wanted('greedy generate (KV cache)', g.name)) report(await generateCase(g, generation.tokens, generation, worker));
});

// Checkpoint loading: a fresh process per load, by design (a load is what a process starts with).
if (wanted('checkpoint load')) {
  const shape = quick
    ? { hidden_size: 256, intermediate_size: 688, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 4, vocab_size: 8000 }
    : { hidden_size: 1024, intermediate_size: 2816, num_hidden_layers: 12, num_attention_heads: 16, num_key_value_heads: 4, vocab_size: 32000 };
  const config = { model_type: 'llama', architectures: ['LlamaForCausalLM'], max_position_embeddings: 2048, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false, ...shape };
  const label = quick ? 'LLaMA 8M bf16' : 'LLaMA 220M bf16';
  const dir = join(BENCH_CACHE, quick ? 'llama-8m-bf16' : 'llama-220m-bf16');
  await ensureCheckpoint(dir, config, '200MB', () => {});
  for (const r of loadCheckpointCase(label, dir, 'bfloat16', quick ? 1 : 3)) report(r);
}

if (wanted('image pipeline')) {
  for (const r of await imagePipelineCase(quick ? { images: 4, size: 256, repeats: 1, rounds: 1 } : { images: 24, size: 1024, repeats: 1, rounds: 2 })) report(r);
}

// ---- output ---------------------------------------------------------------------------------------

interface BenchRun {
  format: 'medtune.bench/1';
  started: string;
  finished: string;
  quick: boolean;
  machine: Record<string, unknown>;
  versions: Record<string, unknown>;
  results: CaseResult[];
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: PACKAGE_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

const info = buildInfo();
const run: BenchRun = {
  format: 'medtune.bench/1',
  started: started.toISOString(),
  finished: new Date().toISOString(),
  quick,
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown', cpus: cpus().length, memory_gib: Math.round(totalmem() / 2 ** 30), platform: `${process.platform}-${process.arch}`,
    threads: getNumThreads(), load_average_at_start: loadAtStart, load_average_at_end: loadavg().map((x) => Math.round(x * 100) / 100),
  },
  versions: {
    medtune_commit: gitCommit(), node: process.version, libtorch: info.torchVersion, libtorch_variant: info.variant,
    pytorch: (pythonVersions as PythonVersions | null)?.torch ?? null, transformers: (pythonVersions as PythonVersions | null)?.transformers ?? null,
    python: (pythonVersions as PythonVersions | null)?.python ?? null,
  },
  results,
};

console.log(`\n${formatTable(run, old)}`);
const dispatch = results.filter((r) => r.details?.['dispatch_overhead_us'] !== undefined && /tiny/.test(r.group));
if (dispatch.length) {
  console.log('\ndispatch overhead (time per train step outside the native step: N-API, queue hand-off, TypeScript loop)');
  for (const r of dispatch) {
    const d = r.details!;
    console.log(`  ${r.group.padEnd(20)} ${r.name.padEnd(6)} step ${fmt(r.medtune_ms).padStart(7)} ms, native ${fmt(d['native_ms'] as number).padStart(7)} ms, outside ${String(d['dispatch_overhead_us']).padStart(5)} us (${(100 * (d['dispatch_overhead_share'] as number)).toFixed(1)}%; least ${d['dispatch_overhead_min_us']} us)`);
  }
}
const out = values.out ?? join(PACKAGE_ROOT, 'runs', 'bench', `${started.toISOString().replace(/[:.]/g, '-')}.json`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(run, null, 2)}\n`);
console.log(`\nwritten to ${out}`);
const above = results.filter((r) => r.group.startsWith('train') && r.ratio > 1);
if (above.length) console.log(`train steps slower than PyTorch (ratio > 1): ${above.map((r) => `${r.group} ${r.name} ${r.ratio.toFixed(2)}`).join(', ')}`);

function readRun(file: string): BenchRun {
  let run: BenchRun;
  try {
    run = JSON.parse(readFileSync(file, 'utf8')) as BenchRun;
  } catch (e) {
    throw new Error(`--compare ${file}: cannot read it as JSON (${(e as Error).message})`);
  }
  if (run.format !== 'medtune.bench/1' || !Array.isArray(run.results)) throw new Error(`--compare ${file}: not a medtune bench result (format medtune.bench/1)`);
  return run;
}

/** The results as a Markdown table; with an old run, its ratio and the change in medtune's time. */
function formatTable(r: BenchRun, before: BenchRun | null): string {
  const prev = new Map((before?.results ?? []).map((x) => [`${x.group}\u0000${x.name}`, x]));
  const head = ['group', 'case', 'unit', 'medtune ms', 'PyTorch ms', 'ratio', 'min ratio', 'outside native'];
  if (before) head.push('old ratio', 'medtune ms change');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i >= 3 ? '---:' : '---')).join('|')}|`];
  for (const x of r.results) {
    const d = x.details ?? {};
    const outside = d['dispatch_overhead_us'] !== undefined ? `${d['dispatch_overhead_us']} us (${(100 * (d['dispatch_overhead_share'] as number)).toFixed(1)}%)` : '';
    const cells = [x.group, x.name + (x.note ? ` (${x.note})` : ''), x.unit, fmt(x.medtune_ms), fmt(x.pytorch_ms), x.ratio.toFixed(2), x.min_ratio.toFixed(2), outside];
    if (before) {
      const o = prev.get(`${x.group}\u0000${x.name}`);
      cells.push(o ? o.ratio.toFixed(2) : '', o ? `${(100 * (x.medtune_ms / o.medtune_ms - 1)).toFixed(1)}%` : '');
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}
