// Benchmark (a measurement, not a test): host memory of the memory options of training, CPU.
//
// 1. One training step (forward + backward, LN-tuning, loss only) of a synthetic LLaMA-shaped
//    language model at batch x sequence tokens, with and without activation checkpointing
//    (--gradient-checkpointing) and chunked cross-entropy (--loss-chunk-size): peak resident
//    memory of the step above the resident memory before it, and the step time. Each variant
//    runs in a fresh process; the peak is VmHWM, reset through /proc/self/clear_refs after the
//    model and batch exist.
// 2. Loading a float32 checkpoint straight into bf16 (loadModel(dir, { dtype: 'bf16' })): peak
//    resident memory of the load above the baseline, against the bf16 model's own size (a
//    float32 staging copy of the whole model would make it about 3x).
//
// With --device cuda the step runs in bf16 on the GPU and its peak is the CUDA caching
// allocator's peak allocated bytes above those allocated before the step.
//
// Usage: node --import tsx scripts/bench/memory.ts [--layers 8] [--hidden 512] [--vocab 32000]
//          [--batch 4] [--seq 512] [--device cpu|cuda] [--load-hidden 768] [--skip-load] [--out FILE]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createModel, loadModel } from '../../lib/models/index.ts';
import { cuda, manualSeed, ones, randint } from '../../lib/torch/index.ts';
import type { Device } from '../../lib/torch/device.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    layers: { type: 'string', default: '8' },
    hidden: { type: 'string', default: '512' },
    vocab: { type: 'string', default: '32000' },
    batch: { type: 'string', default: '4' },
    seq: { type: 'string', default: '512' },
    'load-hidden': { type: 'string', default: '768' },
    device: { type: 'string', default: 'cpu' },
    'skip-load': { type: 'boolean', default: false },
    out: { type: 'string', default: join(root, 'runs', 'bench-memory.json') },
  },
});

function status(key: 'VmHWM' | 'VmRSS'): number {
  const m = readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
  return Number(m![1]) * 1024;
}

function resetPeak(): void {
  writeFileSync('/proc/self/clear_refs', '5');
}

function llamaConfig(hidden: number, layers: number, vocab: number) {
  return {
    model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: vocab, hidden_size: hidden, intermediate_size: Math.round((hidden * 8) / 3 / 64) * 64,
    num_hidden_layers: layers, num_attention_heads: hidden / 64, num_key_value_heads: hidden / 64, max_position_embeddings: 4096, rms_norm_eps: 1e-5,
    rope_theta: 10000, tie_word_embeddings: false,
  };
}

const GiB = 2 ** 30;

async function stepChild(variant: string): Promise<void> {
  const [gc, chunk] = variant.split(',');
  const B = Number(values.batch), S = Number(values.seq);
  const device = values.device as Device;
  const onCuda = device.startsWith('cuda');
  const model = await createModel(llamaConfig(Number(values.hidden), Number(values.layers), Number(values.vocab)), { seed: 0, device, dtype: onCuda ? 'bf16' : 'fp32' });
  model.setRequiresGrad('all', false);
  model.setRequiresGrad(model.parameters().filter((p) => p.kind === 'norm').map((p) => p.name), true);
  model.setMemoryOptions({ gradientCheckpointing: gc === 'gc', lossChunkTokens: Number(chunk) });
  model.train(true);
  manualSeed(0);
  const ids = randint(0, Number(values.vocab), [B, S]);
  const batch = { input_ids: ids.to(device), labels: ids.to(device), attention_mask: ones([B, S], { dtype: 'int64', device }) };
  // Warm-up step (first-call allocations of the kernels), then the measured one.
  for (let run = 0; run < 2; run++) {
    const cudaBefore = onCuda ? cuda.memoryStats(0) : null;
    if (onCuda) cuda.resetPeakMemoryStats(0);
    const baseline = cudaBefore && cudaBefore.available ? cudaBefore.allocated : status('VmRSS');
    resetPeak();
    const t0 = performance.now();
    const out = await model.forward(batch, { logits: false });
    const loss = out['loss']!;
    loss.backward();
    const value0 = loss.toTypedArray()[0] as number;  // waits for the device
    const ms = performance.now() - t0;
    const after = onCuda ? cuda.memoryStats(0) : null;
    const peak = after && after.available ? after.peakAllocated : status('VmHWM');
    const value = value0;
    for (const t of Object.values(out)) t.dispose();
    for (const p of model.parameters().filter((q) => q.requiresGrad)) {
      const t = model.parameter(p.name);
      t.grad = null;
      t.dispose();
    }
    if (run === 1) console.log(JSON.stringify({ variant, loss: value, stepMs: ms, baselineBytes: baseline, peakOverBaselineBytes: peak - baseline }));
  }
}

async function loadChild(dir: string): Promise<void> {
  const baseline = status('VmRSS');
  resetPeak();
  const t0 = performance.now();
  const model = await loadModel(dir, { dtype: 'bf16' });
  const ms = performance.now() - t0;
  const peak = status('VmHWM');
  const numels = model.parameters().map((p) => p.shape.reduce((a, b) => a * b, 1));
  const bytes = numels.reduce((s, n) => s + n * 2, 0);
  console.log(JSON.stringify({ loadMs: ms, baselineBytes: baseline, peakOverBaselineBytes: peak - baseline, modelBytes: bytes, largestFp32TensorBytes: Math.max(...numels) * 4,
    dtypes: [...new Set(model.parameters().map((p) => p.dtype))] }));
}

function child(args: string[]): Record<string, unknown> {
  // A fixed mmap threshold: large tensors are mapped and unmapped as they come and go, so the
  // resident size follows live memory instead of glibc's heap retaining freed blocks.
  const env = { ...process.env, MALLOC_MMAP_THRESHOLD_: '131072' };
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...args], { cwd: root, env, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`child ${args.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
}

if (values.child) {
  const [kind, arg] = values.child.split(':');
  if (kind === 'step') await stepChild(arg!);
  else await loadChild(arg!);
} else {
  const passThrough = ['--layers', values.layers!, '--hidden', values.hidden!, '--vocab', values.vocab!, '--batch', values.batch!, '--seq', values.seq!, '--device', values.device!];
  console.log(`training step: LLaMA-shaped, ${values.layers} layers, hidden ${values.hidden}, vocab ${values.vocab}, batch ${values.batch} x ${values.seq} tokens, LN-tuning, ` +
    (values.device === 'cpu' ? 'fp32, CPU, peak resident memory' : `bf16, ${values.device}, peak CUDA allocated memory`));
  const variants = [['off', '0', 'plain (whole logits)'], ['off', '1024', 'chunked CE (1024)'], ['gc', '0', 'checkpointing'], ['gc', '1024', 'checkpointing + chunked CE']] as const;
  const steps: (Record<string, unknown> & { label: string })[] = variants.map(([gc, chunk, label]) => ({ label, ...child(['--child', `step:${gc},${chunk}`, ...passThrough]) }));
  const base = steps[0]!['peakOverBaselineBytes'] as number;
  console.log('| variant | loss | step peak above baseline | vs plain | step time |');
  console.log('|---|---:|---:|---:|---:|');
  for (const s of steps) {
    const peak = s['peakOverBaselineBytes'] as number;
    console.log(`| ${s.label} | ${(s['loss'] as number).toFixed(6)} | ${(peak / GiB).toFixed(3)} GiB | ${(peak / base).toFixed(2)}x | ${(s['stepMs'] as number).toFixed(0)} ms |`);
  }

  if (values['skip-load']) process.exit(0);
  const hidden = Number(values['load-hidden']);
  const dir = join(root, '.cache', 'bench', `llama-h${hidden}-fp32`);
  if (!existsSync(join(dir, 'config.json'))) {
    console.log(`writing a float32 checkpoint to ${dir} (once)`);
    const model = await createModel(llamaConfig(hidden, 12, 32000), { seed: 0 });
    mkdirSync(dir, { recursive: true });
    await model.save(dir, { maxShardSize: '256MB' });
    model.dispose();
  }
  const load = child(['--child', `load:${dir}`]);
  const modelBytes = load['modelBytes'] as number;
  const peak = load['peakOverBaselineBytes'] as number;
  console.log(`\nloading a float32 checkpoint (${(2 * modelBytes / GiB).toFixed(2)} GiB, 256 MB shards) into bf16: model ${(modelBytes / GiB).toFixed(3)} GiB, ` +
    `peak above baseline ${(peak / GiB).toFixed(3)} GiB = ${(peak / modelBytes).toFixed(2)}x the bf16 model; beyond the model ${((peak - modelBytes) / 2 ** 20).toFixed(0)} MiB ` +
    `(the largest float32 tensor, mapped while it is converted: ${((load['largestFp32TensorBytes'] as number) / 2 ** 20).toFixed(0)} MiB), ${(load['loadMs'] as number).toFixed(0)} ms, dtypes ${String(load['dtypes'])}`);
  mkdirSync(dirname(values.out!), { recursive: true });
  writeFileSync(values.out!, `${JSON.stringify({ steps, load }, null, 2)}\n`);
}
