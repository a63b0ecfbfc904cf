// `medtune compare` as a library call: one run described as `medtune train` describes it, done
// here and in PyTorch from the same initial weights and batches, then compared.
//
//   <out>/init/                  the trainable weights before step 1 (PEFT adapter or trainable.safetensors)
//   <out>/batches.safetensors    every micro-batch of the run, in medtune's order
//   <out>/medtune/               medtune's run (train_log.jsonl, trained weights, result.json)
//   <out>/pytorch/               PyTorch's run (job.json, result.json, trained weights)
//   <out>/report.json, report.md, loss.png
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomicSync } from '../io/atomic-write.ts';
import { getNumThreads } from '../torch/runtime.ts';
import type { ModelDType } from '../models/load.ts';
import { resolveTrainConfig, type TrainDType } from '../train/config.ts';
import type { FineTuneOptions } from '../train/run.ts';
import { methodSpecFromOptions } from '../train/method.ts';
import { splitList } from '../peft/patterns.ts';
import { lossChartPng } from './chart.ts';
import { prepareCompare } from './prepare.ts';
import { runProcess, stderrTail } from './process.ts';
import { referencePython, runPythonSide } from './python-side.ts';
import { buildReport, type CompareReport, defaultTolerance, describeRun, renderMarkdown } from './report.ts';
import type { MedtuneJob, SideResult } from './types.ts';

export interface CompareOptions extends Pick<FineTuneOptions, 'model' | 'data' | 'images' | 'task' | 'method' | 'arch' | 'numLabels' | 'tokenizer' | 'split' | 'dtype' | 'device' | 'config'> {
  /** The interpreter of the PyTorch side (default MEDTUNE_PYTHON, else the project's .venv). */
  python?: string | null;
  /** Largest relative loss difference accepted at any step (default: 1e-4 in fp32, 2e-2 in bf16/fp16). */
  tolerance?: number | null;
  /** Tests only: the PyTorch side trains with this learning rate instead. */
  referenceLr?: number | null;
  print?: (line: string) => void;
}

export interface CompareResult {
  report: CompareReport;
  files: { json: string; markdown: string; chart: string };
}

const SHORT_DTYPE: Record<ModelDType, TrainDType> = { fp32: 'fp32', float32: 'fp32', bf16: 'bf16', bfloat16: 'bf16', fp16: 'fp16', float16: 'fp16' };

const WORKER = fileURLToPath(new URL('./medtune-worker.ts', import.meta.url));

async function runMedtuneWorker(job: MedtuneJob, jobFile: string, onLine: (line: string) => void): Promise<SideResult> {
  writeFileSync(jobFile, `${JSON.stringify(job, null, 1)}\n`);
  // tsx's loader, resolved from this package, so the worker runs wherever the CLI was started.
  const r = await runProcess(process.execPath, ['--import', import.meta.resolve('tsx'), WORKER, jobFile], { onLine });
  if (r.code !== 0) throw new Error(`the medtune side failed (${r.signal ? `signal ${r.signal}` : `exit ${r.code}`}):\n${stderrTail(r.stderr)}`);
  return JSON.parse(readFileSync(job.result, 'utf8')) as SideResult;
}

export async function runCompare(opts: CompareOptions): Promise<CompareResult> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const out = resolve(opts.config.out);
  const dtype = SHORT_DTYPE[opts.dtype ?? 'fp32'];
  const device = opts.device ?? 'cpu';
  const tolerance = opts.tolerance ?? defaultTolerance(dtype);
  if (!(tolerance >= 0)) throw new Error(`compare: the tolerance must be a non-negative number, got ${tolerance}`);
  const python = referencePython(opts.python); // before any work: a missing interpreter is found at once
  const config = resolveTrainConfig({ ...opts.config, out: join(out, 'medtune') });

  const dirs = { init: join(out, 'init'), medtune: join(out, 'medtune'), pytorch: join(out, 'pytorch'), batches: join(out, 'batches.safetensors') };
  for (const d of [dirs.init, dirs.medtune, dirs.pytorch]) rmSync(d, { recursive: true, force: true });
  for (const d of [dirs.init, dirs.medtune, dirs.pytorch]) mkdirSync(d, { recursive: true });

  print(`compare: preparing the initial weights and the batches in ${out}`);
  const prep = await prepareCompare({
    model: opts.model, data: opts.data, images: opts.images ?? null, task: opts.task ?? null, tokenizer: opts.tokenizer ?? null, split: opts.split ?? null,
    arch: opts.arch ?? null, numLabels: opts.numLabels ?? null, dtype, device, method: opts.method, config,
  }, dirs);
  print(prep.report);
  const steps = prep.config.steps!;
  const micro = prep.batches.windows.reduce((n, w) => n + w.length, 0);
  print(`compare: ${steps} steps (${micro} micro-batches of ${config.batchSize} of ${prep.batches.examples} examples) written to ${dirs.batches}`);

  print('compare: training with medtune ...');
  const medtune = await runMedtuneWorker({
    model: opts.model, arch: opts.arch ?? null, numLabels: opts.numLabels ?? null, dtype, device, method: opts.method,
    config: prep.config, init: prep.initDir, batches: dirs.batches, baseModel: resolve(opts.model), result: join(dirs.medtune, 'result.json'),
  }, join(dirs.medtune, 'job.json'), (line) => print(`  medtune  ${line}`));

  print(`compare: training with PyTorch (${python}) ...`);
  const spec = methodSpecFromOptions(opts.method);
  const extra = spec.trainExtra === undefined ? [] : typeof spec.trainExtra === 'string' ? splitList(spec.trainExtra) : [...spec.trainExtra];
  const pytorch = await runPythonSide(python, {
    model: resolve(opts.model), dtype, device, method: spec.method, scope: spec.scope ?? 'all', train_extra: extra,
    init: prep.init, batches: dirs.batches, config: prep.config, lr: opts.referenceLr ?? null, threads: medtune.threads || getNumThreads(), out: dirs.pytorch,
  }, join(dirs.pytorch, 'job.json'), (line) => print(`  PyTorch  ${line}`));

  const report = buildReport(medtune, pytorch, {
    tolerance,
    run: describeRun({ model: resolve(opts.model), data: resolve(opts.data), method: { ...opts.method }, dtype, device, config: prep.config, examples: prep.batches.examples }),
  });
  const files = { json: join(out, 'report.json'), markdown: join(out, 'report.md'), chart: join(out, 'loss.png') };
  writeFileAtomicSync(files.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileAtomicSync(files.markdown, renderMarkdown(report));
  writeFileAtomicSync(files.chart, await lossChartPng(report));
  return { report, files };
}
