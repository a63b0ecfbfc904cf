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
import { DATASET_FORMATS, type DatasetFormat } from '../../data/detect.ts';
import { CONV_TEMPLATE_CHOICES, type ConvTemplateChoice } from '../../train/llava-inputs.ts';
import { fineTune, type FineTuneOptions } from '../../train/run.ts';
import { SCHEDULES, type ScheduleName } from '../../train/schedule.ts';
import { type Command, UsageError } from '../command.ts';

/** `medtune train`'s flags (parseArgs options); `medtune compare` takes the same. */
export const TRAIN_FLAGS = {
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
  format: { type: 'string' },
  'conv-template': { type: 'string' },
  'skip-bad': { type: 'boolean' },
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
  'log-every': { type: 'string' },
  'no-mixed-precision': { type: 'boolean' },
} as const;

export function number(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${flag} must be a number, got '${v}'`);
  return n;
}

export function integer(flag: string, v: string | undefined): number | undefined {
  const n = number(flag, v);
  if (n !== undefined && !Number.isSafeInteger(n)) throw new UsageError(`--${flag} must be a whole number, got '${v}'`);
  return n;
}

export function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

/** Help lines of the flags that describe a run (model, data, method, optimisation), shared with `medtune compare`. */
export const RUN_FLAGS_HELP = `  --model DIR|FILE       Hugging Face model directory (config.json + safetensors), or a weights
                         file (.pth/.pt/.bin read safely, or .safetensors)
  --arch A               architecture of a weights file: a preset (${Object.keys(PRESETS).join(', ')})
                         or a config.json (default: read off the keys where they tell it)
  --num-labels N         classifier with N labels (a fresh multi-label head for MAE / MRM backbones)
  --tokenizer DIR        tokenizer for text data, when the model's directory has none
  --split S, --eval-split S   split of --data / --eval-data (VQA-RAD train|test, annotation.json
                         train|val|test; for classification files a list of image names, e.g. NIH's
                         train_val_list.txt)
  --data FILE            training data: a dataset file, prepared for the model on the fly:
                           LLaVA   conversation JSON, VQA-RAD, SLAKE, PathVQA
                           BLIP    the same, and annotation.json report files
                           ViT     NIH Data_Entry_2017.csv, CheXpert, RSNA, path,label1,... CSV
                         or a .safetensors of pre-processed tensors (pixel_values/input_ids/labels ...)
  --images DIR           image folder of the dataset (default: images/ beside --data, else its folder)
  --task T               vqa | report | classify (default: inferred from the data)
  --format F             ${DATASET_FORMATS.join(' | ')} (default: detected)
  --conv-template T      LLaVA prompts: chat (the tokenizer's chat template; default for llava-hf
                         checkpoints that have one) | vicuna_v1 | mistral_instruct (LLaVA-Med's; default
                         for original LLaVA-Med checkpoints, by language model)
  --skip-bad             leave out malformed records and examples whose image is missing or does not
                         decode (counted and reported); default: such an example is an error
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
  --dtype D              fp32 | bf16 | fp16 (default fp32). bf16 / fp16: frozen weights in that dtype,
                         trainable tensors as float32 masters with float32 optimizer state, compute
                         under autocast; fp16 adds dynamic loss scaling (torch.amp.GradScaler's rules)
  --no-mixed-precision   with --dtype bf16|fp16: train the half-precision weights directly instead
  --device D             cpu | cuda | cuda:N (default cpu)
  --gradient-checkpointing  recompute each transformer layer in the backward pass instead of
                         keeping its activations (less memory for ~1/3 more compute; same results)
  --loss-chunk-size N    language models: compute the LM head + cross-entropy N tokens at a time,
                         never the whole [tokens, vocab] logits (default 1024; 0 = whole logits)
  --no-shuffle           batches follow file order
  --drop-last            skip an epoch's last incomplete batch`;

const USAGE = `medtune train --model DIR --data FILE --out DIR [options]

${RUN_FLAGS_HELP}
  --eval-data FILE       validation data, evaluated at the end and every --eval-every N steps
                         (batches of --eval-batch-size, default --batch-size)
  --save-every N         checkpoint every N steps (kept: --keep-checkpoints, default 2)
  --resume DIR|latest    continue from a checkpoint-<step> directory
  --out DIR              output directory (trained weights, trainer state, resolved config)
  --log FILE             JSONL log, one line per optimizer step (default OUT/train_log.jsonl)
  --log-every N          read loss and gradient norm from the device every N steps (default 1); the
                         steps between do not wait for the device, their lines are written then`;

export type TrainFlagValues = Record<string, string | boolean | undefined>;

/** The method flags (--scope, --lora-r ...) as parseArgs options. */
export function methodFlagOptions(): Record<string, { type: 'string' | 'boolean' }> {
  return Object.fromEntries(Object.entries(METHOD_FLAGS).map(([k, v]) => [k, { type: v.type }]));
}

/**
 * Parses `medtune train`'s flags (plus `extra` options a command adds) into fineTune()'s options.
 * `medtune compare` describes its run with the same flags through this function.
 */
export function parseTrainArgs(argv: string[], extra: Record<string, { type: 'string' | 'boolean'; default?: string }> = {}): { options: FineTuneOptions; flags: TrainFlagValues } {
  const { values: v } = parseArgs({ args: argv, options: { ...TRAIN_FLAGS, ...methodFlagOptions(), ...extra }, strict: true, allowPositionals: false });
  const flags = v as TrainFlagValues;
  const s = (k: string) => flags[k] as string | undefined;
  if (!s('model')) throw new UsageError('--model DIR is required');
  if (!s('data')) throw new UsageError('--data FILE is required');
  if (!s('out')) throw new UsageError('--out DIR is required');
  if (s('steps') !== undefined && s('epochs') !== undefined) throw new UsageError('give --steps or --epochs, not both');
  const device = s('device');
  if (device !== undefined && !isDevice(device)) throw new UsageError(`--device must be cpu, cuda or cuda:N, got '${device}'`);
  const dtype = oneOf('dtype', s('dtype'), ['fp32', 'bf16', 'fp16'] as const);
  const task = oneOf<TaskName>('task', s('task'), ['vqa', 'report', 'classify']);
  const format = oneOf<DatasetFormat>('format', s('format'), DATASET_FORMATS);
  const convTemplate = oneOf<ConvTemplateChoice>('conv-template', s('conv-template'), CONV_TEMPLATE_CHOICES);

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
  set('logEvery', integer('log-every', s('log-every')));
  if (flags['no-mixed-precision']) config.mixedPrecision = false;
  if (flags['gradient-checkpointing']) config.gradientCheckpointing = true;
  set('lossChunkTokens', integer('loss-chunk-size', s('loss-chunk-size')));

  const method: Record<string, unknown> = { method: s('method') ?? 'full' };
  for (const key of Object.keys(METHOD_FLAGS)) if (flags[key] !== undefined) method[key] = flags[key];

  return {
    flags,
    options: {
      model: s('model')!, data: s('data')!, evalData: s('eval-data') ?? null, images: s('images') ?? null, task: task ?? null,
      method: method as { method: string }, dtype: dtype ?? 'fp32', device: (device as Device | undefined) ?? 'cpu',
      arch: s('arch') ?? null, numLabels: integer('num-labels', s('num-labels')) ?? null, tokenizer: s('tokenizer') ?? null,
      split: s('split') ?? null, evalSplit: s('eval-split') ?? null,
      format: format ?? null, convTemplate: convTemplate ?? null, skipBad: Boolean(flags['skip-bad']),
      resume: s('resume') ?? null, config,
    },
  };
}

/** Bad settings, the tuning method's included, are usage errors (exit 2). */
export function asUsageError(err: unknown): unknown {
  if (err instanceof TrainConfigError || err instanceof MethodError || err instanceof LoraTargetError || err instanceof PatternError) return new UsageError(err.message);
  return err;
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'Fine-tune a model (full or parameter-efficient) on a dataset',
  usage: USAGE,
  async run(argv) {
    const { options } = parseTrainArgs(argv);
    try {
      const result = await fineTune(options);
      const first = result.losses[0];
      const last = result.losses.at(-1);
      const ran = result.losses.length;
      const resumedNote = ran !== result.steps ? ` (resumed after step ${result.steps - ran}, now at step ${result.steps})` : '';
      console.log(`done: ${ran} steps${resumedNote}${first !== undefined ? `, loss ${first.toFixed(4)} -> ${last!.toFixed(4)}` : ''}`);
      console.log(`saved ${result.weightFiles.join(', ')} in ${result.out}`);
      return 0;
    } catch (err) {
      throw asUsageError(err);
    }
  },
};
