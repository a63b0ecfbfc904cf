// `medtune compare`: the run `medtune train` would do (same flags), done here and in PyTorch
// (transformers + peft) from the same initial weights and batches; writes report.json,
// report.md and loss.png, and exits 1 when the losses diverge. The work is lib/compare's.
import { runCompare } from '../../compare/run.ts';
import { type Command, UsageError } from '../command.ts';
import { asUsageError, number, parseTrainArgs, RUN_FLAGS_HELP } from './train.ts';

const COMPARE_FLAGS = {
  python: { type: 'string' },
  tolerance: { type: 'string' },
  // Tests only (not in --help): the PyTorch side trains with this learning rate, so the two runs
  // must diverge; it proves the exit code.
  'test-reference-lr': { type: 'string' },
} as const;

// train's flags that describe no part of a compared run
const NOT_COMPARED = ['eval-data', 'eval-split', 'eval-every', 'eval-batch-size', 'save-every', 'keep-checkpoints', 'resume', 'log'];

const USAGE = `medtune compare --model DIR --data FILE --out DIR [options]

Runs the training job here and in PyTorch (transformers + peft) with the same initial trainable
weights (written here before step 1, loaded there), the same batches (medtune's, in its order,
written to OUT/batches.safetensors) and the same optimizer, schedule, clipping and accumulation;
reports per-step loss and gradient norm of both sides, trainable-parameter counts, step time,
samples/s (tokens/s) and peak memory. Exit code 1 when a step's losses differ by more than the
tolerance (or the trainable counts differ), 2 for bad flags.

${RUN_FLAGS_HELP}
  --out DIR              report.json, report.md, loss.png; init/, batches.safetensors, medtune/, pytorch/
  --python PATH          Python with torch, transformers and peft (default MEDTUNE_PYTHON, else .venv,
                         which \`node scripts/setup/python-env.mjs\` creates)
  --tolerance X          largest relative loss difference accepted at any step
                         (default 1e-4 in fp32, 2e-2 in bf16/fp16)`;

export const compareCommand: Command = {
  name: 'compare',
  summary: 'Train here and in PyTorch (transformers + peft) from the same weights and batches; compare',
  usage: USAGE,
  async run(argv) {
    const { options, flags } = parseTrainArgs(argv, COMPARE_FLAGS);
    const given = NOT_COMPARED.filter((f) => flags[f] !== undefined);
    if (given.length) throw new UsageError(`compare runs no ${given.map((f) => `--${f}`).join(', ')} (they belong to medtune train)`);
    const tolerance = number('tolerance', flags['tolerance'] as string | undefined);
    if (tolerance !== undefined && tolerance < 0) throw new UsageError(`--tolerance must be >= 0, got ${tolerance}`);
    const referenceLr = number('test-reference-lr', flags['test-reference-lr'] as string | undefined);
    let result;
    try {
      result = await runCompare({
        ...options, python: (flags['python'] as string | undefined) ?? null, tolerance: tolerance ?? null, referenceLr: referenceLr ?? null,
      });
    } catch (err) {
      throw asUsageError(err);
    }
    const r = result.report;
    console.log(`loss: max difference ${r.loss.max_abs_diff.toExponential(2)} absolute, ${r.loss.max_rel_diff.toExponential(2)} relative (tolerance ${r.tolerance.loss_relative}); ` +
      `grad norm: ${r.grad_norm.max_rel_diff.toExponential(2)} relative`);
    console.log(`trainable: medtune ${r.trainable.medtune.toLocaleString('en-US')}, PyTorch ${r.trainable.pytorch.toLocaleString('en-US')}`);
    console.log(`median step: medtune ${r.medtune.median_step_ms.toFixed(2)} ms, PyTorch ${r.pytorch.median_step_ms.toFixed(2)} ms (${r.ratios.median_step_time.toFixed(2)}x); ` +
      `peak RSS ${(r.medtune.peak_rss_bytes / 2 ** 20).toFixed(0)} vs ${(r.pytorch.peak_rss_bytes / 2 ** 20).toFixed(0)} MiB (${r.ratios.peak_rss.toFixed(2)}x)` +
      (r.ratios.cuda_peak_allocated !== null ? `; CUDA peak ${r.ratios.cuda_peak_allocated.toFixed(2)}x` : ''));
    console.log(`wrote ${result.files.json}, ${result.files.markdown}, ${result.files.chart}`);
    if (!r.ok) {
      console.error(`medtune compare: ${r.failures.join('; ')}`);
      return 1;
    }
    return 0;
  },
};
