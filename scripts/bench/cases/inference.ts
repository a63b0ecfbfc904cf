// Inference cases: a forward pass without autograd (model.forward(batch, { grad: false }) vs
// transformers under torch.no_grad()), and greedy generation with a KV cache (model.generate vs
// transformers' generate(use_cache=True)) of exactly N new tokens (no EOS ids on either side),
// in ms per token. Same model directory, same first rows of the same tensor file, alternating
// rounds.
import { loadModel, type Model } from '../../../lib/models/index.ts';
import type { Tensor } from '../../../lib/torch/index.ts';
import { TensorFileDataset } from '../../../lib/train/dataset.ts';
import { row, type CaseResult, type PythonWorker } from './common.ts';
import type { BenchModel } from './models.ts';

export interface InferenceOptions { iters: number; warmup: number; rounds: number }

async function firstRows(m: BenchModel, n: number, keys: string[]): Promise<{ batch: Record<string, Tensor>; dispose: () => void }> {
  const data = await TensorFileDataset.open(m.dataFile);
  const batch = await data.batch(Array.from({ length: n }, (_, i) => i));
  data.dispose();
  for (const k of Object.keys(batch)) if (!keys.includes(k)) { batch[k]?.dispose(); delete batch[k]; }
  return { batch: batch as Record<string, Tensor>, dispose: () => Object.values(batch).forEach((t) => t?.dispose()) };
}

async function timed(n: number, warmup: number, fn: () => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < warmup + n; i++) {
    const t0 = performance.now();
    await fn();
    if (i >= warmup) times.push(performance.now() - t0);
  }
  return times;
}

const INPUTS = ['pixel_values', 'input_ids', 'attention_mask'];

export async function forwardCase(m: BenchModel, o: InferenceOptions, worker: PythonWorker): Promise<CaseResult> {
  const model: Model = await loadModel(m.modelDir);
  const { batch, dispose } = await firstRows(m, m.batch, INPUTS);
  const mine: number[] = [];
  const theirs: number[] = [];
  try {
    for (let r = 0; r < o.rounds; r++) {
      mine.push(...await timed(o.iters, o.warmup, async () => {
        const out = await model.forward(batch, { grad: false });
        for (const t of Object.values(out)) t.dispose();
      }));
      theirs.push(...(await worker.call<{ ms: number[] }>({ cmd: 'forward', model: m.modelDir, data: m.dataFile, batch: m.batch, iters: o.iters, warmup: o.warmup })).ms);
    }
  } finally {
    dispose();
    model.dispose();
  }
  return row('forward (no grad)', m.name, `forward of batch ${m.batch}`, mine, theirs);
}

export async function generateCase(m: BenchModel, newTokens: number, o: InferenceOptions, worker: PythonWorker): Promise<CaseResult> {
  const model = await loadModel(m.modelDir);
  const { batch, dispose } = await firstRows(m, 1, INPUTS);
  const mine: number[] = [];
  const theirs: number[] = [];
  let ours: number[] = [];
  let reference: number[] = [];
  try {
    for (let r = 0; r < o.rounds; r++) {
      mine.push(...await timed(o.iters, o.warmup, async () => {
        const out = await model.generate(batch, { maxNewTokens: newTokens, eosTokenId: [], padTokenId: 0 });
        ours = out.tokens.toNumbers();
        out.tokens.dispose();
        out.sequences.dispose();
      }));
      const ref = await worker.call<{ ms: number[]; tokens: number[] }>({ cmd: 'generate', model: m.modelDir, data: m.dataFile, new_tokens: newTokens, iters: o.iters, warmup: o.warmup });
      theirs.push(...ref.ms);
      reference = ref.tokens;
    }
  } finally {
    dispose();
    model.dispose();
  }
  const perToken = (xs: number[]) => xs.map((x) => x / newTokens);
  const same = ours.length === reference.length && ours.every((t, i) => t === reference[i]);
  const r = row('greedy generate (KV cache)', m.name, `token (${newTokens} new, batch 1)`, perToken(mine), perToken(theirs), {
    new_tokens: newTokens, tokens_identical: same,
  }, same ? undefined : 'generated tokens differ from transformers');
  r.details!['medtune_tokens_per_s'] = 1000 / r.medtune_ms;
  r.details!['pytorch_tokens_per_s'] = 1000 / r.pytorch_ms;
  return r;
}
