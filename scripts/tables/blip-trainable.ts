// The trainable-parameter table (count and %) of the tuning methods on the full-size BLIP-base
// VQA model (the 'blip-vqa-base' preset: BLIP / MISS at 480 px), built with random weights
// (nothing downloaded), next to what transformers + peft count for the same configuration
// (scripts/python/blip_param_counts.py on the meta device).
//
//   node --import tsx scripts/tables/blip-trainable.ts [--r 8]
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createModel, PRESETS, type Model } from '../../lib/models/index.ts';
import { applyMethod, resolveMethod, trainableReport } from '../../lib/peft/index.ts';
import { runPythonJson } from '../../test/helpers/python.ts';

const { values } = parseArgs({ options: { r: { type: 'string', default: '8' } } });
const r = Number(values.r);
const config = PRESETS['blip-vqa-base']!.config;
const METHODS = ['ln', 'ffn', 'attn', 'lora', 'full'];
const SCOPES = ['all', 'vision', 'text', 'decoder'];

const tmp = mkdtempSync(join(tmpdir(), 'medtune-blip-table-'));
writeFileSync(join(tmp, 'config.json'), JSON.stringify(config));
const reference = runPythonJson<{ counts: Record<string, Record<string, number>>; total: number }>('blip_param_counts.py', [join(tmp, 'config.json'), String(r)]);
rmSync(tmp, { recursive: true, force: true });

const model: Model = await createModel(config, { dtype: 'bf16' });
const total = model.parameterCount().total;
const rows: string[][] = [];
for (const method of METHODS) {
  for (const scope of SCOPES) {
    model.setRequiresGrad('all', false);
    const applied = await applyMethod(model, resolveMethod({ method, scope, ...(method === 'lora' ? { lora: { r, alpha: r } } : {}) }));
    const report = trainableReport(model, applied);
    const ref = reference.counts[method]![scope]!;
    rows.push([method, scope, report.trainable.toLocaleString('en-US'), ((100 * report.trainable) / report.total).toFixed(4), report.trainable === ref ? 'same' : `differs: ${ref}`]);
    for (const a of applied.adapters) model.detachAdapter(a.path);
  }
}
model.dispose();

console.log(`BLIP-base VQA ('blip-vqa-base' preset, 480 px): ${total.toLocaleString('en-US')} parameters (transformers counts ${reference.total.toLocaleString('en-US')}); LoRA r = alpha = ${r}`);
console.log('| method | scope | trainable | % of model | transformers + peft |');
console.log('|---|---|---:|---:|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
