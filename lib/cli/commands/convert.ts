// `medtune convert IN.pth --out DIR`: the weights of a torch.save checkpoint as safetensors, read
// without executing its pickle, with a report of what was found and what was left out.
import { parseArgs } from 'node:util';
import { convertTorchCheckpoint } from '../../io/convert.ts';
import type { TorchCheckpointReport } from '../../io/torch-checkpoint.ts';
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

export const convert: Command = {
  name: 'convert',
  summary: 'convert a PyTorch .pth/.pt/.bin checkpoint to safetensors, safely (no pickle code runs)',
  usage: 'medtune convert IN.pth --out DIR [--key PATH] [--keep-prefix] [--force] [--no-verify] [--json]',
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
      },
    });
    if (positionals.length !== 1) throw new UsageError(positionals.length ? 'expected one input checkpoint' : 'missing the input checkpoint');
    if (!values.out) throw new UsageError('missing --out DIR');
    const result = await convertTorchCheckpoint(positionals[0]!, values.out, {
      stateDictKey: values.key,
      stripPrefixes: !values['keep-prefix'],
      verifyChecksums: !values['no-verify'],
      overwrite: values.force,
    });
    if (values.json) console.log(JSON.stringify({ ...result.report, output: result.safetensors, reportFile: result.reportFile }, null, 2));
    else printSummary(result.report, result.safetensors, result.reportFile);
    return 0;
  },
};
