// The scale proof: a LLaVA-Med-v1.5-shaped checkpoint (Mistral-7B + CLIP ViT-L/14-336 + mlp2x_gelu
// projector, random weights, bf16 safetensors shards, the original LLaVA-Med layout) is made on the
// device, then trained with ln, attn, ffn and lora (r 8 on q/v) at batch 4 x 1024 tokens (576 image
// features each) here and, in the same call, in PyTorch (transformers + peft, bf16 autocast with
// float32 masters: scripts/python/scale_reference.py). For each method and side: tokens/s, MFU
// (scripts/scale/flops.ts), peak CUDA allocator memory, load time and the first step's loss, as
// JSON and a Markdown table.
//
//   node --import tsx scripts/scale/llava-med-7b.ts --device cuda [--out DIR] [--methods ln,attn,ffn,lora]
//        [--warmup 2] [--steps 4] [--budget-s 480] [--no-python] [--checkpoint DIR]
//   node --import tsx scripts/scale/llava-med-7b.ts --tiny       # the same code path, CPU, seconds
//
// --tiny runs a tiny configuration of the same shape on the CPU (test/scale/scale-tiny.test.ts).
// A method that fails (CUDA out of memory, say) is a row with its error; the others still run.
// --budget-s stops starting new methods once that much time has passed (the table says which were
// left out).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createModel, loadModel, saveSafetensors } from '../../lib/models/index.ts';
import { applyMethod, type MethodSpec } from '../../lib/peft/index.ts';
import { cat, full, manualSeed, randint, randn } from '../../lib/torch/index.ts';
import { emptyCache, memoryStats, resetPeakMemoryStats } from '../../lib/torch/cuda-memory.ts';
import { resolveTrainConfig } from '../../lib/train/config.ts';
import { TensorFileDataset } from '../../lib/train/dataset.ts';
import { train } from '../../lib/train/trainer.ts';
import { ensurePythonEnv } from '../setup/python-env.mjs';
import { countMatrices, H100_BF16_PEAK, mfu, stepFlops } from './flops.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const METHODS = ['ln', 'attn', 'ffn', 'lora'] as const;
export type ScaleMethod = (typeof METHODS)[number];

export interface ScaleOptions {
  tiny: boolean;
  device: 'cpu' | 'cuda';
  out: string;
  methods: ScaleMethod[];
  warmup: number;
  steps: number;
  budgetS: number;
  python: boolean;
  checkpoint: string | null;
  batch: number;
}

/** One side's numbers for one method (null where the side did not run or failed). */
export interface SideResult {
  trainable: number | null;
  tokensPerS: number | null;
  mfu: number | null;
  peakGiB: number | null;
  loadS: number | null;
  firstLoss: number | null;
  error: string | null;
}

export interface ScaleRow {
  method: ScaleMethod;
  flopsPerStep: number;
  medtune: SideResult;
  pytorch: SideResult;
  /** medtune / PyTorch tokens per second. */
  speedup: number | null;
  /** |first-step losses| relative difference. */
  firstLossRelDiff: number | null;
}

export interface ScaleReport {
  config: { tiny: boolean; device: string; batch: number; seqLen: number; imageTokens: number; warmupSteps: number; measuredSteps: number; peakFlops: number; parameters: number };
  checkpoint: { dir: string; createS: number; bytes: number; shards: number };
  rows: ScaleRow[];
  skipped: { method: string; reason: string }[];
}

// LLaVA-Med v1.5 (microsoft/llava-med-v1.5-mistral-7b): Mistral-7B-Instruct-v0.2's language model
// (its config's sliding_window is null; LLaVA-Med's Mistral-7B base had 4096, which is what
// "sliding window" here exercises), CLIP ViT-L/14 at 336 px (24 layers, features from layer -2),
// mlp2x_gelu projector.
function llavaMedConfig(tiny: boolean, clipDir: string | null): Record<string, unknown> {
  const text = tiny
    ? { vocab_size: 512, hidden_size: 64, intermediate_size: 224, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, sliding_window: 48, max_position_embeddings: 256 }
    : { vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, sliding_window: 4096, max_position_embeddings: 32768 };
  return {
    model_type: 'llava_mistral', architectures: ['LlavaMistralForCausalLM'], ...text,
    hidden_act: 'silu', rms_norm_eps: 1e-5, rope_theta: tiny ? 10000 : 1000000, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
    mm_vision_tower: tiny ? clipDir : 'openai/clip-vit-large-patch14-336', mm_hidden_size: tiny ? 32 : 1024, mm_projector_type: 'mlp2x_gelu',
    mm_vision_select_layer: -2, mm_vision_select_feature: 'patch', mm_use_im_start_end: false, mm_use_im_patch_token: false,
    image_aspect_ratio: 'pad', tokenizer_padding_side: 'right', use_mm_proj: true,
  };
}

const TINY_CLIP = { model_type: 'clip_vision_model', hidden_size: 32, intermediate_size: 64, num_hidden_layers: 3, num_attention_heads: 4, patch_size: 14, image_size: 56, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 };
const CLIP_L_336 = { model_type: 'clip_vision_model', hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 24, num_attention_heads: 16, patch_size: 14, image_size: 336, hidden_act: 'quick_gelu', layer_norm_eps: 1e-5 };

function parse(argv: string[]): ScaleOptions {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      tiny: { type: 'boolean', default: false }, device: { type: 'string' }, out: { type: 'string' }, methods: { type: 'string', default: METHODS.join(',') },
      warmup: { type: 'string' }, steps: { type: 'string' }, 'budget-s': { type: 'string', default: '0' }, 'no-python': { type: 'boolean', default: false },
      checkpoint: { type: 'string' }, batch: { type: 'string', default: '4' },
    },
  });
  const methods = v.methods!.split(',').map((m) => m.trim()).filter(Boolean);
  for (const m of methods) if (!(METHODS as readonly string[]).includes(m)) throw new Error(`--methods: unknown method '${m}' (${METHODS.join(', ')})`);
  const device = (v.device ?? (v.tiny ? 'cpu' : 'cuda')) as 'cpu' | 'cuda';
  if (device !== 'cpu' && device !== 'cuda') throw new Error(`--device must be cpu or cuda, got '${device}'`);
  return {
    tiny: v.tiny!, device, out: resolve(v.out ?? join(root, 'runs', v.tiny ? 'scale-tiny' : 'scale-llava-med-7b')), methods: methods as ScaleMethod[],
    warmup: Number(v.warmup ?? 2), steps: Number(v.steps ?? (v.tiny ? 2 : 4)), budgetS: Number(v['budget-s']), python: !v['no-python'],
    checkpoint: v.checkpoint ? resolve(v.checkpoint) : null, batch: Number(v.batch),
  };
}

const METHOD_SPECS: Record<ScaleMethod, MethodSpec> = {
  ln: { method: 'ln' },
  attn: { method: 'attn' },
  ffn: { method: 'ffn' },
  lora: { method: 'lora', lora: { r: 8, alpha: 8, targets: 'q_proj,v_proj' } },
};

function emptySide(error: string | null = null): SideResult {
  return { trainable: null, tokensPerS: null, mfu: null, peakGiB: null, loadS: null, firstLoss: null, error };
}

function peakGiB(device: string): number | null {
  if (device !== 'cuda') return null;
  const s = memoryStats(0);
  return s.available ? s.peakAllocated / 2 ** 30 : null;
}

/** The batch both sides train on: medtune's (one -200 per image, original layout) and llava-hf's (expanded image tokens). */
async function makeData(dir: string, o: { batch: number; seqLen: number; imageTokens: number; imageSize: number; vocab: number; imageTokenId: number }): Promise<{ medtune: string; hf: string }> {
  manualSeed(1234);
  const prefix = 16;
  const suffix = o.seqLen - o.imageTokens - prefix;
  // Text tokens avoid the special ids (0..2) and the llava-hf image token (the last id).
  const pre = randint(3, o.vocab - 1, [o.batch, prefix]);
  const post = randint(3, o.vocab - 1, [o.batch, suffix]);
  const pixels = randn([o.batch, 3, o.imageSize, o.imageSize]);
  const placeholder = full([o.batch, 1], -200, { dtype: 'int64' });
  const images = full([o.batch, o.imageTokens], o.imageTokenId, { dtype: 'int64' });
  const ignoreOne = full([o.batch, 1], -100, { dtype: 'int64' });
  const ignoreImages = full([o.batch, o.imageTokens], -100, { dtype: 'int64' });
  // The first 16 text tokens are the prompt (unsupervised), the rest the answer.
  const ignorePre = full([o.batch, prefix], -100, { dtype: 'int64' });
  const ids = cat([pre, placeholder, post], 1);
  const labels = cat([ignorePre, ignoreOne, post], 1);
  const hfIds = cat([pre, images, post], 1);
  const hfLabels = cat([ignorePre, ignoreImages, post], 1);
  const medtune = join(dir, 'batch.medtune.safetensors');
  const hf = join(dir, 'batch.hf.safetensors');
  await saveSafetensors(medtune, { input_ids: ids, attention_mask: full(ids.shape, 1, { dtype: 'int64' }), labels, pixel_values: pixels }, { loss_scaling: 'tokens' });
  await saveSafetensors(hf, { input_ids: hfIds, attention_mask: full(hfIds.shape, 1, { dtype: 'int64' }), labels: hfLabels, pixel_values: pixels }, { loss_scaling: 'tokens' });
  for (const t of [pre, post, pixels, placeholder, images, ignoreOne, ignoreImages, ignorePre, ids, labels, hfIds, hfLabels]) t.dispose();
  return { medtune, hf };
}

async function runMedtune(o: ScaleOptions, ckpt: string, data: string, method: ScaleMethod, geometry: { seqLen: number; imageTokens: number; visionTokens: number }): Promise<{ side: SideResult; flops: number }> {
  const side = emptySide();
  let flops = 0;
  if (o.device === 'cuda') emptyCache();
  const t0 = performance.now();
  const model = await loadModel(ckpt, { dtype: 'bf16', device: o.device });
  side.loadS = (performance.now() - t0) / 1000;
  const dataset = await TensorFileDataset.open(data);
  const out = mkdtempSync(join(tmpdir(), `medtune-scale-${method}-`));
  try {
    await applyMethod(model, METHOD_SPECS[method]);
    const params = model.parameters();
    side.trainable = params.filter((p) => p.requiresGrad).reduce((a, p) => a + p.numel, 0);
    const parts = countMatrices(params);
    flops = stepFlops({ ...parts, batch: o.batch, ...geometry });
    if (o.device === 'cuda') resetPeakMemoryStats(0);
    const total = o.warmup + o.steps;
    const times: number[] = [];
    const losses: number[] = [];
    await train({
      model, train: dataset,
      // Numbers are read at the end of the warm-up and at the end (log every `warmup` steps), so the
      // measured steps run without the host waiting for the device between them.
      config: resolveTrainConfig({ out, steps: total, batchSize: o.batch, lr: 1e-5, schedule: 'constant', shuffle: false, logEvery: o.warmup, maxGradNorm: 1.0 }),
      weights: { save: async () => [], load: async () => {} },
      print: () => {},
      progress: { step: () => {}, note: () => {}, end: () => {} },
      onStep: (r) => {
        times[r.step] = performance.now();
        losses[r.step] = r.loss;
      },
    });
    const seconds = (times[total]! - times[o.warmup]!) / 1000 / o.steps;
    side.tokensPerS = (o.batch * geometry.seqLen) / seconds;
    side.mfu = mfu(flops, seconds);
    side.peakGiB = peakGiB(o.device);
    side.firstLoss = losses[1] ?? null;
  } catch (err) {
    side.error = (err as Error).message.split('\n')[0]!;
  } finally {
    dataset.dispose();
    model.dispose();
    rmSync(out, { recursive: true, force: true });
    if (o.device === 'cuda') emptyCache();
  }
  return { side, flops };
}

function runPytorch(o: ScaleOptions, ckpt: string, data: string, methods: ScaleMethod[], text: Record<string, unknown>, vision: Record<string, unknown>, imageTokenId: number, out: string): Record<string, SideResult & { seconds?: number }> {
  const jobFile = join(out, 'pytorch-job.json');
  const resultFile = join(out, 'pytorch.json');
  writeFileSync(jobFile, JSON.stringify({ checkpoint: ckpt, data, methods, device: o.device, warmup: o.warmup, steps: o.steps, text, vision, image_token_index: imageTokenId, out: resultFile }));
  const python = ensurePythonEnv({ quiet: true });
  const r = spawnSync(python, [join(root, 'scripts/python/scale_reference.py'), jobFile], { encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, TOKENIZERS_PARALLELISM: 'false' } });
  if (r.status !== 0 || !existsSync(resultFile)) {
    const why = `scale_reference.py exited with ${r.status ?? r.signal}`;
    return Object.fromEntries(methods.map((m) => [m, emptySide(why)]));
  }
  return JSON.parse(readFileSync(resultFile, 'utf8')) as Record<string, SideResult & { seconds?: number }>;
}

function fmt(x: number | null, digits = 1): string {
  return x === null || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

function pct(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '–';
  return `${(100 * x).toPrecision(x >= 0.001 ? 3 : 2)}%`;
}

export function markdownTable(r: ScaleReport): string {
  const c = r.config;
  const lines = [
    `LLaVA-Med v1.5 shape${c.tiny ? ' (tiny configuration)' : ''}, ${c.parameters >= 1e8 ? `${(c.parameters / 1e9).toFixed(2)} B` : c.parameters.toLocaleString('en-US')} parameters, bf16 frozen / float32 trained, ` +
      `batch ${c.batch} x ${c.seqLen} tokens (${c.imageTokens} image features each), ${c.device}; ${c.measuredSteps} measured steps after ${c.warmupSteps} warm-up; ` +
      `MFU against ${(c.peakFlops / 1e12).toFixed(0)} TFLOP/s; checkpoint made in ${fmt(r.checkpoint.createS)} s (${r.checkpoint.shards} shards, ${fmt(r.checkpoint.bytes / 2 ** 30, 2)} GiB)`,
    '',
    '| method | trainable | medtune tok/s | PyTorch tok/s | ratio | medtune MFU | PyTorch MFU | medtune peak GiB | PyTorch peak GiB | medtune load s | PyTorch load s | first loss medtune / PyTorch |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const row of r.rows) {
    const m = row.medtune;
    const p = row.pytorch;
    const errors = [m.error ? `medtune: ${m.error}` : '', p.error ? `PyTorch: ${p.error}` : ''].filter(Boolean).join('; ');
    lines.push(`| ${row.method} | ${m.trainable?.toLocaleString('en-US') ?? '–'} | ${fmt(m.tokensPerS)} | ${fmt(p.tokensPerS)} | ${fmt(row.speedup, 2)} | ${pct(m.mfu)} | ${pct(p.mfu)} | ${fmt(m.peakGiB, 2)} | ${fmt(p.peakGiB, 2)} | ${fmt(m.loadS)} | ${fmt(p.loadS)} | ${fmt(m.firstLoss, 4)} / ${fmt(p.firstLoss, 4)}${errors ? ` (${errors})` : ''} |`);
  }
  for (const s of r.skipped) lines.push(`\n${s.method}: not run (${s.reason})`);
  return `${lines.join('\n')}\n`;
}

export async function runScale(o: ScaleOptions): Promise<ScaleReport> {
  const started = performance.now();
  mkdirSync(o.out, { recursive: true });
  const clipDir = join(o.out, 'clip');
  if (o.tiny) {
    mkdirSync(clipDir, { recursive: true });
    writeFileSync(join(clipDir, 'config.json'), `${JSON.stringify({ ...TINY_CLIP, architectures: ['CLIPVisionModel'] }, null, 2)}\n`);
  }
  const config = llavaMedConfig(o.tiny, o.tiny ? clipDir : null);
  const vision = o.tiny ? TINY_CLIP : CLIP_L_336;
  const patches = ((vision.image_size / vision.patch_size) ** 2);
  const geometry = { seqLen: o.tiny ? 64 : 1024, imageTokens: patches, visionTokens: patches + 1 };
  const ckpt = o.checkpoint ?? join(o.out, 'checkpoint');

  // The checkpoint, made on the device (random weights, seeded), written as bf16 shards.
  let createS = 0;
  let parameters = 0;  // counted when the checkpoint is made here, else on the first row
  if (!existsSync(join(ckpt, 'config.json'))) {
    const t0 = performance.now();
    const model = await createModel(config, { dtype: 'bf16', device: o.device, seed: 0 });
    parameters = model.parameterCount().total;
    await model.save(ckpt, { maxShardSize: o.tiny ? '200KB' : '4GB' });
    model.dispose();
    if (o.device === 'cuda') emptyCache();
    createS = (performance.now() - t0) / 1000;
  }
  const shards = readdirSync(ckpt).filter((f) => f.endsWith('.safetensors'));
  const bytes = shards.reduce((a, f) => a + statSync(join(ckpt, f)).size, 0);
  const vocab = config['vocab_size'] as number;
  const imageTokenId = vocab - 1;
  const data = await makeData(o.out, { batch: o.batch, seqLen: geometry.seqLen, imageTokens: geometry.imageTokens, imageSize: vision.image_size, vocab, imageTokenId });

  const rows: ScaleRow[] = [];
  const skipped: { method: string; reason: string }[] = [];
  const textConfig = Object.fromEntries(Object.entries(config).filter(([k]) => !k.startsWith('mm_') && !['model_type', 'architectures', 'image_aspect_ratio', 'tokenizer_padding_side', 'use_mm_proj'].includes(k)));
  const report: ScaleReport = {
    config: { tiny: o.tiny, device: o.device, batch: o.batch, seqLen: geometry.seqLen, imageTokens: geometry.imageTokens, warmupSteps: o.warmup, measuredSteps: o.steps, peakFlops: H100_BF16_PEAK, parameters },
    checkpoint: { dir: ckpt, createS, bytes, shards: shards.length },
    rows, skipped,
  };
  // Written after every row, so a run stopped by a time limit leaves the rows it finished.
  const write = () => {
    writeFileSync(join(o.out, 'scale.json'), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(o.out, 'scale.md'), markdownTable(report));
  };
  const fillPytorch = (torch: Record<string, SideResult & { seconds?: number }>) => {
    for (const row of rows) {
      const p = torch[row.method];
      if (!p) continue;
      row.pytorch = { trainable: p.trainable, tokensPerS: p.tokensPerS, mfu: p.seconds ? mfu(row.flopsPerStep, p.seconds) : null, peakGiB: p.peakGiB, loadS: p.loadS, firstLoss: p.firstLoss, error: p.error };
      row.speedup = row.medtune.tokensPerS && row.pytorch.tokensPerS ? row.medtune.tokensPerS / row.pytorch.tokensPerS : null;
      row.firstLossRelDiff = row.medtune.firstLoss !== null && row.pytorch.firstLoss !== null ? Math.abs(row.medtune.firstLoss - row.pytorch.firstLoss) / Math.abs(row.pytorch.firstLoss) : null;
    }
  };
  // On the GPU each method's PyTorch run follows its medtune run in a process of its own (a row is
  // complete before the next method starts); the tiny CPU run starts Python once for all methods.
  const pythonEach = o.python && o.device === 'cuda';
  for (const method of o.methods) {
    const elapsed = (performance.now() - started) / 1000;
    if (o.budgetS > 0 && elapsed > o.budgetS) {
      skipped.push({ method, reason: `time budget of ${o.budgetS} s spent (${elapsed.toFixed(0)} s)` });
      write();
      continue;
    }
    const { side, flops } = await runMedtune(o, ckpt, data.medtune, method, geometry);
    if (!report.config.parameters) {
      const m = await loadModel(ckpt, { dtype: 'bf16', device: 'cpu', mmap: true });
      report.config.parameters = m.parameterCount().total;
      m.dispose();
    }
    rows.push({ method, flopsPerStep: flops, medtune: side, pytorch: emptySide(o.python ? 'no result' : 'not run (--no-python)'), speedup: null, firstLossRelDiff: null });
    console.log(`medtune ${method}: ${fmt(side.tokensPerS)} tok/s, peak ${fmt(side.peakGiB, 2)} GiB, load ${fmt(side.loadS)} s, first loss ${fmt(side.firstLoss, 4)}${side.error ? `, error: ${side.error}` : ''}`);
    if (pythonEach) fillPytorch(runPytorch(o, ckpt, data.hf, [method], textConfig, vision, imageTokenId, o.out));
    write();
  }
  if (o.python && !pythonEach && rows.length) fillPytorch(runPytorch(o, ckpt, data.hf, rows.map((r) => r.method), textConfig, vision, imageTokenId, o.out));
  write();
  return report;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const o = parse(process.argv.slice(2));
  const report = await runScale(o);
  console.log(markdownTable(report));
  console.log(`written: ${join(o.out, 'scale.json')}, ${join(o.out, 'scale.md')}`);
}
