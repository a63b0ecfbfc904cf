// `medtune train`: fine-tune a model on a dataset. Parses flags into lib/train's fineTune();
// every decision about training lives there.
import { parseArgs } from 'node:util';
import type { Device } from '../../torch/device.ts';
import { isDevice } from '../../torch/device.ts';
import type { TaskName, TrainConfig } from '../../train/config.ts';
import { LoraTargetError, MethodError, PatternError } from '../../peft/index.ts';
import { TrainConfigError } from '../../train/config.ts';
import { KNOWN_METHODS, METHOD_FLAGS } from '../../train/method.ts';
import { NO_DECAY_RULES, type NoDecayRule } from '../../train/param-groups.ts';
import { PRESETS } from '../../models/presets.ts';
import { fineTune } from '../../train/run.ts';
import { SCHEDULES, type ScheduleName } from '../../train/schedule.ts';
import { type Command, UsageError } from '../command.ts';

const FLAGS = {
  model: { type: 'string' },
  arch: { type: 'string' },
  'num-labels': { type: 'string' },
  tokenizer: { type: 'string' },
  split: { type: 'string' },
  'eval-split': { type: 'string' },
  data: { type: 'string' },
  'eval-data': { type: 'string' },
  images: { type: 'string' },
  task: { type: 'string' },
  method: { type: 'string', default: 'full' },
  steps: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  'grad-accum': { type: 'string' },
  lr: { type: 'string' },
  optimizer: { type: 'string' },
  'weight-decay': { type: 'string' },
  momentum: { type: 'string' },
  nesterov: { type: 'boolean' },
  'no-decay': { type: 'string' },
  'layer-decay': { type: 'string' },
  schedule: { type: 'string' },
  warmup: { type: 'string' },
  'max-grad-norm': { type: 'string' },
  seed: { type: 'string' },
  dtype: { type: 'string' },
  device: { type: 'string' },
  'no-shuffle': { type: 'boolean' },
  'drop-last': { type: 'boolean' },
  'eval-every': { type: 'string' },
  'eval-batch-size': { type: 'string' },
  'save-every': { type: 'string' },
  'keep-checkpoints': { type: 'string' },
  'gradient-checkpointing': { type: 'boolean' },
  'loss-chunk-size': { type: 'string' },
  resume: { type: 'string' },
  out: { type: 'string' },
  log: { type: 'string' },
} as const;

function number(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got '${v}'`);
  return n;
}

function integer(flag: string, v: string | undefined): number | undefined {
  const n = number(flag, v);
  if (n !== undefined && !Number.isSafeInteger(n)) throw new UsageError(`--${flag} must be a whole number, got '${v}'`);
  return n;
}

function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

const USAGE = `medtune train --model DIR --data FILE --out DIR [options]

  --model DIR|FILE       Hugging Face model directory (config.json + safetensors), or a weights
                         file (.pth/.pt/.bin read safely, or .safetensors)
  --arch A               architecture of a weights file: a preset (${Object.keys(PRESETS).join(', ')})
                         or a config.json (default: read off the keys where they tell it)
  --num-labels N         classifier with N labels (a fresh head for MAE / MRM backbones)
  --tokenizer DIR        tokenizer for text data, when the model's directory has none
  --split S, --eval-split S   split of --data / --eval-data (VQA-RAD train|test, annotation.json train|val|test)
  --data FILE            training data: .safetensors of pre-processed tensors; for BLIP models also
                         VQA-RAD / SLAKE / PathVQA / conversation JSON and annotation.json report files
  --eval-data FILE       validation data, evaluated at the end and every --eval-every N steps
                         (batches of --eval-batch-size, default --batch-size)
  --images DIR           image folder of the dataset
  --task T               vqa | report | classify (default: inferred from the data)
  --method M             tuning method: ${KNOWN_METHODS.join(' | ')} (default full)
${Object.entries(METHOD_FLAGS).map(([k, f]) => `  ${`--${k}${f.type === 'string' ? ' X' : ''}`.padEnd(22)} ${f.help}`).join('\n')}
  --steps N | --epochs E length of the run (default 3 epochs)
  --batch-size B         examples per micro-batch (default 8)
  --grad-accum K         micro-batches per optimizer step (default 1)
  --lr X                 peak learning rate (default 5e-5)
  --optimizer O          adamw | sgd (default adamw)
  --weight-decay W       (default 0); --no-decay norm-bias|mae|none exempts parameters (default norm-bias)
  --momentum M, --nesterov   SGD momentum
  --layer-decay D        layer-wise lr decay as in MAE fine-tuning (e.g. 0.75)
  --schedule S           constant | linear | cosine (default linear)
  --warmup W             warmup steps (>= 1) or fraction of the run (< 1) (default 0)
  --max-grad-norm G      clip the gradient norm (default 1.0; 0 = off)
  --seed S               data order and randomness (default 42)
  --dtype D              fp32 | bf16 | fp16 (default fp32)
  --device D             cpu | cuda | cuda:N (default cpu)
  --gradient-checkpointing  recompute each transformer layer in the backward pass instead of
                         keeping its activations (less memory for ~1/3 more compute; same results)
  --loss-chunk-size N    language models: compute the LM head + cross-entropy N tokens at a time,
                         never the whole [tokens, vocab] logits (default 1024; 0 = whole logits)
  --no-shuffle           batches follow file order
  --drop-last            skip an epoch's last incomplete batch
  --save-every N         checkpoint every N steps (kept: --keep-checkpoints, default 2)
  --resume DIR|latest    continue from a checkpoint-<step> directory
  --out DIR              output directory (trained weights, trainer state, resolved config)
  --log FILE             JSONL log, one line per optimizer step (default OUT/train_log.jsonl)`;

export const trainCommand: Command = {
  name: 'train',
  summary: 'Fine-tune a model (full or parameter-efficient) on a dataset',
  usage: USAGE,
  async run(argv) {
    const methodFlags = Object.fromEntries(Object.entries(METHOD_FLAGS).map(([k, v]) => [k, { type: v.type }]));
    const { values: v } = parseArgs({ args: argv, options: { ...FLAGS, ...methodFlags }, strict: true, allowPositionals: false });
    const flags = v as Record<string, string | boolean | undefined>;
    const s = (k: string) => flags[k] as string | undefined;
    if (!s('model')) throw new UsageError('--model DIR is required');
    if (!s('data')) throw new UsageError('--data FILE is required');
    if (!s('out')) throw new UsageError('--out DIR is required');
    if (s('steps') !== undefined && s('epochs') !== undefined) throw new UsageError('give --steps or --epochs, not both');
    const device = s('device');
    if (device !== undefined && !isDevice(device)) throw new UsageError(`--device must be cpu, cuda or cuda:N, got '${device}'`);
    const dtype = oneOf('dtype', s('dtype'), ['fp32', 'bf16', 'fp16'] as const);
    const task = oneOf<TaskName>('task', s('task'), ['vqa', 'report', 'classify']);

    const config: Partial<TrainConfig> & { out: string } = { out: s('out')! };
    const set = <K extends keyof TrainConfig>(key: K, value: TrainConfig[K] | undefined) => {
      if (value !== undefined) config[key] = value;
    };
    set('steps', integer('steps', s('steps')));
    set('epochs', integer('epochs', s('epochs')));
    set('batchSize', integer('batch-size', s('batch-size')));
    set('gradAccum', integer('grad-accum', s('grad-accum')));
    set('lr', number('lr', s('lr')));
    set('optimizer', oneOf('optimizer', s('optimizer'), ['adamw', 'sgd'] as const));
    set('weightDecay', number('weight-decay', s('weight-decay')));
    set('momentum', number('momentum', s('momentum')));
    if (flags['nesterov']) config.nesterov = true;
    set('noDecay', oneOf<NoDecayRule>('no-decay', s('no-decay'), NO_DECAY_RULES));
    set('layerDecay', number('layer-decay', s('layer-decay')));
    set('schedule', oneOf<ScheduleName>('schedule', s('schedule'), SCHEDULES));
    set('warmup', number('warmup', s('warmup')));
    set('maxGradNorm', number('max-grad-norm', s('max-grad-norm')));
    set('seed', integer('seed', s('seed')));
    if (flags['no-shuffle']) config.shuffle = false;
    if (flags['drop-last']) config.dropLast = true;
    set('evalEvery', integer('eval-every', s('eval-every')));
    set('evalBatchSize', integer('eval-batch-size', s('eval-batch-size')));
    set('saveEvery', integer('save-every', s('save-every')));
    set('keepCheckpoints', integer('keep-checkpoints', s('keep-checkpoints')));
    set('log', s('log'));
    if (flags['gradient-checkpointing']) config.gradientCheckpointing = true;
    set('lossChunkTokens', integer('loss-chunk-size', s('loss-chunk-size')));

    const method: Record<string, unknown> = { method: s('method') ?? 'full' };
    for (const key of Object.keys(METHOD_FLAGS)) if (flags[key] !== undefined) method[key] = flags[key];

    try {
      const result = await fineTune({
        model: s('model')!, data: s('data')!, evalData: s('eval-data') ?? null, images: s('images') ?? null, task: task ?? null,
        method: method as { method: string }, dtype: dtype ?? 'fp32', device: (device as Device | undefined) ?? 'cpu',
        arch: s('arch') ?? null, numLabels: integer('num-labels', s('num-labels')) ?? null, tokenizer: s('tokenizer') ?? null,
        split: s('split') ?? null, evalSplit: s('eval-split') ?? null,
        resume: s('resume') ?? null, config,
      });
      const first = result.losses[0];
      const last = result.losses.at(-1);
      const ran = result.losses.length;
      const resumedNote = ran !== result.steps ? ` (resumed after step ${result.steps - ran}, now at step ${result.steps})` : '';
      console.log(`done: ${ran} steps${resumedNote}${first !== undefined ? `, loss ${first.toFixed(4)} -> ${last!.toFixed(4)}` : ''}`);
      console.log(`saved ${result.weightFiles.join(', ')} in ${result.out}`);
      return 0;
    } catch (err) {
      // bad settings, the tuning method's included, are usage errors (exit 2)
      if (err instanceof TrainConfigError || err instanceof MethodError || err instanceof LoraTargetError || err instanceof PatternError) throw new UsageError(err.message);
      throw err;
    }
  },
};
