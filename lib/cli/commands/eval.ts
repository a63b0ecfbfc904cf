// `medtune eval`: run a model (and its adapter) on a test set, write the predictions file
// `medtune score` reads, and print its scores. Every decision lives in lib/eval/run/evaluate.ts.
import { parseArgs } from 'node:util';
import { DATASET_FORMATS, type DatasetFormat, type TaskKind } from '../../data/detect.ts';
import type { UncertainPolicy } from '../../data/formats/classification.ts';
import type { ReportSection } from '../../data/formats/report.ts';
import { PRESETS } from '../../models/presets.ts';
import { evaluate, evaluationJson, DEFAULT_REPORT_PROMPT, METRICS_FILE, PREDICTIONS_FILE, type EvaluateOptions } from '../../eval/run/evaluate.ts';
import { PROMPT_STYLES, type PromptStyle } from '../../eval/run/llava.ts';
import { isDevice, type Device } from '../../torch/device.ts';
import { UsageError, type Command } from '../command.ts';
import { printHuman } from './score.ts';

const USAGE = `medtune eval --model DIR|FILE --data FILE [options]

  --model DIR|FILE       model directory (config.json + safetensors), or a weights file (.pth/.pt/.bin
                         read safely, or .safetensors) with --arch
  --arch A               architecture of a weights file: a preset (${Object.keys(PRESETS).join(', ')})
                         or a config.json
  --num-labels N         classifier size for a backbone whose head the adapter holds (default: the
                         dataset's label count for weights files)
  --adapter DIR          what medtune train wrote (a LoRA/DoRA PEFT adapter or trainable.safetensors;
                         the output directory or a checkpoint-<step>), or a peft adapter directory
  --tokenizer DIR        tokenizer when the model's directory has none (BLIP .pth files)
  --data FILE            test set: conversation JSON/JSONL, VQA-RAD, SLAKE, PathVQA, annotation.json
                         (reports), NIH / CheXpert / RSNA / label CSV
  --images DIR           image folder (default: images/ beside --data, else its folder)
  --split S              split of --data (VQA-RAD train|test, annotation.json train|val|test)
  --task T               vqa | report | classify (default: the dataset's; a mismatch is an error)
  --format F             dataset format (${DATASET_FORMATS.join(', ')}; default: detected)
  --section S            reports: full | findings | impression | findings+impression
  --uncertain P          CheXpert: ones | zeros | ignore
  --split-list FILE      classification: only the images listed (NIH test_list.txt)
  --skip-bad             leave malformed records out (counted) instead of failing
  --batch-size N         examples per forward / generate call (default: LLaVA 8, BLIP 16, ViT 32)
  --max-new-tokens N     LLaVA: new tokens at most (default 1024, as LLaVA-Med); BLIP: replaces MISS's max_length 10
  --num-beams N          BLIP: beams (default 3, as MISS)
  --prompt P             LLaVA prompt format: ${PROMPT_STYLES.join(' | ')} (default: the checkpoint's chat
                         template for llava-hf, LLaVA-Med's template for the original layout)
  --report-prompt TEXT   LLaVA on report data: the instruction (default '${DEFAULT_REPORT_PROMPT}')
  --preprocessor FILE    ViT: a preprocessor_config.json instead of the model's
  --dtype D              fp32 | bf16 | fp16 (default fp32)
  --device D             cpu | cuda | cuda:N (default cpu)
  --out DIR              where ${PREDICTIONS_FILE} and ${METRICS_FILE} go (default eval/)
  --json                 print one JSON object (metrics as medtune score --json prints them)`;

function positiveInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${flag} must be a positive whole number, got '${v}'`);
  return n;
}

function oneOf<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}

/** Progress on stderr: one line redrawn on a terminal, else about 10 lines per run. */
function progressPrinter(): { update: (done: number, total: number) => void; end: () => void } {
  const tty = process.stderr.isTTY;
  const start = Date.now();
  let lastDecile = -1;
  let drawn = false;
  return {
    update(done, total) {
      const rate = done / Math.max((Date.now() - start) / 1000, 1e-3);
      const line = `eval ${done}/${total}  ${rate.toFixed(1)} examples/s`;
      if (tty) {
        process.stderr.write(`\r${line}\x1b[K`);
        drawn = true;
      } else {
        const decile = Math.floor((10 * done) / total);
        if (decile !== lastDecile) {
          lastDecile = decile;
          process.stderr.write(`${line}\n`);
        }
      }
    },
    end() {
      if (drawn) process.stderr.write('\n');
    },
  };
}

export const evalCommand: Command = {
  name: 'eval',
  summary: 'Run a model (+ adapter) on a test set, write its predictions and score them',
  usage: USAGE,
  async run(argv) {
    const { values: v } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, arch: { type: 'string' }, 'num-labels': { type: 'string' }, adapter: { type: 'string' }, tokenizer: { type: 'string' },
        data: { type: 'string' }, images: { type: 'string' }, split: { type: 'string' }, task: { type: 'string' }, format: { type: 'string' },
        section: { type: 'string' }, uncertain: { type: 'string' }, 'split-list': { type: 'string' }, 'skip-bad': { type: 'boolean' },
        'batch-size': { type: 'string' }, 'max-new-tokens': { type: 'string' }, 'num-beams': { type: 'string' }, prompt: { type: 'string' },
        'report-prompt': { type: 'string' }, preprocessor: { type: 'string' }, dtype: { type: 'string' }, device: { type: 'string' },
        out: { type: 'string' }, json: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    });
    if (!v.model) throw new UsageError('--model DIR|FILE is required');
    if (!v.data) throw new UsageError('--data FILE is required (the test set)');
    if (v.device !== undefined && !isDevice(v.device)) throw new UsageError(`--device must be cpu, cuda or cuda:N, got '${v.device}'`);
    const opts: EvaluateOptions = {
      model: v.model, data: v.data, out: v.out ?? 'eval',
      arch: v.arch ?? null, adapter: v.adapter ?? null, tokenizer: v.tokenizer ?? null, images: v.images ?? null,
      numLabels: positiveInt('num-labels', v['num-labels']) ?? null,
      task: oneOf<TaskKind>('task', v.task, ['vqa', 'report', 'classify']) ?? null,
      maxNewTokens: positiveInt('max-new-tokens', v['max-new-tokens']) ?? null,
      numBeams: positiveInt('num-beams', v['num-beams']) ?? null,
      prompt: oneOf<PromptStyle>('prompt', v.prompt, PROMPT_STYLES) ?? null,
      reportPrompt: v['report-prompt'] ?? null, preprocessor: v.preprocessor ?? null,
      dtype: oneOf('dtype', v.dtype, ['fp32', 'bf16', 'fp16'] as const) ?? 'fp32',
      device: (v.device as Device | undefined) ?? 'cpu',
      skipBad: v['skip-bad'] ?? false,
    };
    const batchSize = positiveInt('batch-size', v['batch-size']);
    if (batchSize !== undefined) opts.batchSize = batchSize;
    const format = oneOf<DatasetFormat>('format', v.format, DATASET_FORMATS);
    if (format) opts.format = format;
    if (v.split) opts.split = v.split;
    const section = oneOf<ReportSection>('section', v.section, ['full', 'findings', 'impression', 'findings+impression']);
    if (section) opts.section = section;
    const uncertain = oneOf<UncertainPolicy>('uncertain', v.uncertain, ['ones', 'zeros', 'ignore']);
    if (uncertain) opts.uncertain = uncertain;
    if (v['split-list']) opts.splitList = v['split-list'];

    const progress = progressPrinter();
    opts.onProgress = progress.update;
    opts.log = (line) => process.stderr.write(`${line}\n`);
    let result;
    try {
      result = await evaluate(opts);
    } finally {
      progress.end();
    }
    if (v.json) {
      console.log(JSON.stringify(evaluationJson(result)));
      return 0;
    }
    printHuman(result.metrics);
    if (result.miss) {
      const pct = (x: number | null) => (x === null ? 'n/a' : (100 * x).toFixed(2));
      const row = (k: string, s: string) => console.log(`${k.padEnd(30)} ${s}`);
      row('MISS exact match: closed', pct(result.miss.closed));
      row('MISS exact match: open', pct(result.miss.open));
      row('MISS exact match: overall', pct(result.miss.overall));
    }
    console.log(`predictions: ${result.predictionsFile}`);
    return 0;
  },
};
