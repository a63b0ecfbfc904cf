// The tuning presets on the BLIP (MISS-style) VQA model: ln, ffn, attn, lora (query/value, and the
// q/v thirds of the vision qkv), full, each under the scopes all / vision / text / decoder, give
// the trainable counts that transformers + peft give for the same model
// (scripts/python/blip_param_counts.py counts nn.LayerNorm, the FFN and attention projections
// and peft's LoRA on the HF model).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadModel, type Model } from '../../lib/models/index.ts';
import { applyMethod, resolveMethod, trainableReport } from '../../lib/peft/index.ts';
import { cachedFixture, runPythonJson } from '../helpers/python.ts';

type Counts = Record<string, Record<string, number>>;

let fixture: string;
let expected: { counts: Counts; total: number };

async function fresh(): Promise<Model> {
  return loadModel(join(fixture, 'hf_vqa'));
}

describe('tuning presets on BLIP', () => {
  before(() => {
    fixture = cachedFixture('blip', 'make_blip_fixtures.py', [], { dependsOn: ['blip_reference_fix.py'] });
    expected = runPythonJson<{ counts: Counts; total: number }>('blip_param_counts.py', [join(fixture, 'config_original.json')]);
  });

  for (const method of ['ln', 'ffn', 'attn', 'full', 'lora']) {
    it(`${method}: trainable counts per scope equal transformers + peft`, async () => {
      for (const scope of ['all', 'vision', 'text', 'decoder']) {
        const model = await fresh();
        try {
          const applied = await applyMethod(model, resolveMethod({ method, scope, ...(method === 'lora' ? { lora: { r: 8, alpha: 8 } } : {}) }));
          const report = trainableReport(model, applied);
          assert.equal(report.trainable, expected.counts[method]![scope], `${method} --scope ${scope}`);
          if (method !== 'lora') assert.equal(report.total, expected.total, 'total parameters');
          if (method === 'lora' && scope === 'vision') {
            assert.ok(applied.adapters.every((a) => a.path.endsWith('attn.qkv') && a.sliceNames?.join() === 'q,v'), 'vision LoRA on the q and v thirds of qkv');
          }
          if (method === 'lora' && scope === 'decoder') {
            assert.deepEqual([...new Set(applied.adapters.map((a) => a.path.replace(/^.*\.(attention|crossattention)\.self\./, '$1.')))].sort(),
              ['attention.query', 'attention.value', 'crossattention.query', 'crossattention.value'], 'self- and cross-attention query/value');
          }
        } finally {
          model.dispose();
        }
      }
    });
  }
});
