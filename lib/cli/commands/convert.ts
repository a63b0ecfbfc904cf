// `medtune convert IN.pth --out DIR`: the weights of a torch.save checkpoint as safetensors, read
// without executing its pickle, with a report of what was found and what was left out, and a
// config.json where the architecture is known (timm ViTs, BLIP), so the directory loads as a model.
import { parseArgs } from 'node:util';
import type { TorchCheckpointReport } from '../../io/torch-checkpoint.ts';
import { convertCheckpoint, type ModelConvertResult } from '../../models/convert.ts';
import { UsageError, type Command } from '../command.ts';

function formatCount(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}K` : String(n);
}

function printSummary(r: TorchCheckpointReport, out: string, reportFile: string): void {
  const where = r.stateDict.path === '' ? 'the top level' : `'${r.stateDict.path}'`;
  const dtypes = Object.entries(r.dtypes).map(([d, n]) => `${n} ${d}`).join(', ');
  console.log(`${r.tensors.length} tensors (${formatCount(r.numel)} parameters; ${dtypes}) from ${where} of ${r.file} (${r.format} format)`);
  if (r.strippedPrefix) console.log(`  removed key prefix '${r.strippedPrefix}'`);
  const others = r.stateDict.candidates.filter((c) => c.path !== r.stateDict.path);
  if (others.length) console.log(`  other tensor dicts (choose with --key): ${others.map((c) => `'${c.path}' (${c.tensors})`).join(', ')}`);
  if (r.layout) console.log(`  layout: ${r.layout.name} ${JSON.stringify(r.layout.facts)}`);
  for (const s of r.skipped.slice(0, 10)) console.log(`  skipped ${s.name}: ${s.reason}`);
  if (r.skipped.length > 10) console.log(`  ... ${r.skipped.length - 10} more skipped (see the report)`);
  for (const o of r.other) console.log(`  not converted: ${o.path} (${o.description})`);
  for (const p of r.placeholders) console.log(`  not constructed: ${p.name} at ${p.paths.join(', ') || '?'}`);
  console.log(`wrote ${out}\nreport ${reportFile}`);
}

function printModel(r: ModelConvertResult): void {
  if (r.config) console.log(`config ${r.config} (${r.architecture}, ${r.format === 'hf' ? "transformers' layout" : "the checkpoint's own layout"})`);
  for (const n of r.notes) console.log(`  ${n}`);
}

export const convert: Command = {
  name: 'convert',
  summary: 'convert a PyTorch .pth/.pt/.bin checkpoint to safetensors, safely (no pickle code runs)',
  usage: 'medtune convert IN.pth --out DIR [--format auto|source|hf] [--config PRESET|config.json] [--key PATH] [--keep-prefix] [--force] [--no-verify] [--json]',
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string', short: 'o' },
        key: { type: 'string' },
        'keep-prefix': { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
        'no-verify': { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
        format: { type: 'string', default: 'auto' },
        config: { type: 'string' },
      },
    });
    if (positionals.length !== 1) throw new UsageError(positionals.length ? 'expected one input checkpoint' : 'missing the input checkpoint');
    if (!values.out) throw new UsageError('missing --out DIR');
    const format = values.format;
    if (format !== 'auto' && format !== 'source' && format !== 'hf') throw new UsageError(`--format must be auto, source or hf, got '${format}'`);
    const result = await convertCheckpoint(positionals[0]!, values.out, {
      stateDictKey: values.key,
      stripPrefixes: !values['keep-prefix'],
      verifyChecksums: !values['no-verify'],
      overwrite: values.force,
      format,
      ...(values.config !== undefined ? { config: values.config } : {}),
    });
    if (values.json) {
      console.log(JSON.stringify({ ...result.report, output: result.safetensors, reportFile: result.reportFile, config: result.config, format: result.format,
        architecture: result.architecture, notes: result.notes }, null, 2));
    } else {
      printSummary(result.report, result.safetensors, result.reportFile);
      printModel(result);
    }
    return 0;
  },
};
