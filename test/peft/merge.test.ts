// `medtune merge`: a PEFT adapter (peft-written, LoRA + modules_to_save and DoRA) or a medtune
// LN-tuning output folded into the base model, written as a directory transformers loads; its
// logits equal peft's merge_and_unload() logits (transformers loads it: peft_reference.py hf).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { main } from '../../lib/cli/main.ts';
import { loadModel, loadSafetensors } from '../../lib/models/index.ts';
import { applyMethod, saveTrainedOutput } from '../../lib/peft/index.ts';
import { noGrad, randn } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture, runPython } from '../helpers/python.ts';

let dir: string;
const tmp = mkdtempSync(join(tmpdir(), 'medtune-merge-'));

before(() => {
  dir = cachedFixture('peft', 'make_peft_fixtures.py', [], { dependsOn: ['peft_reference.py', 'timm_vit_reference.py'] });
});

async function quiet<T>(fn: () => Promise<T>): Promise<T> {
  const log = console.log;
  console.log = () => {};
  try {
    return await fn();
  } finally {
    console.log = log;
  }
}

describe('medtune merge', () => {
  it('writes checkpoints transformers loads with peft merge_and_unload logits (LoRA + classifier, DoRA) and trained LN tensors', async () => {
    const jobs: [string, string][] = [];
    for (const name of ['vit_lora', 'vit_dora']) {
      const out = join(tmp, `${name}-merged`);
      assert.equal(await quiet(() => main(['merge', '--model', join(dir, 'vit'), '--adapter', join(dir, name), '--out', out])), 0);
      assert.deepEqual(readdirSync(out).sort(), ['config.json', 'model.safetensors']);
      jobs.push([name, out]);
    }
    // an LN-tuning output of medtune's own
    const model = await loadModel(join(dir, 'vit'));
    const applied = await applyMethod(model, { method: 'ln' });
    noGrad(() => {
      for (const n of applied.trainable) {
        const p = model.parameter(n);
        p.add_(randn(p.shape).mul(0.1));
        p.dispose();
      }
    });
    const inputs = (await loadSafetensors(join(dir, 'inputs.safetensors'))).tensors;
    const lnLogits = (await model.forward({ pixel_values: inputs['pixel_values']! }, { grad: false }))['logits']!.toTypedArray();
    await saveTrainedOutput(model, applied, join(tmp, 'ln-out'));
    const lnMerged = join(tmp, 'ln-merged');
    assert.equal(await quiet(() => main(['merge', '--model', join(dir, 'vit'), '--adapter', join(tmp, 'ln-out'), '--out', lnMerged])), 0);

    const hfJobs = [...jobs, ['ln', lnMerged] as [string, string]].map(([name, out]) => ({ model: out, inputs: join(dir, 'inputs.safetensors'), out: join(tmp, `${name}.logits.safetensors`) }));
    const file = join(tmp, 'hf.json');
    writeFileSync(file, JSON.stringify(hfJobs));
    runPython('peft_reference.py', ['hf', file]);
    for (const [i, [name]] of jobs.entries()) {
      const got = (await loadSafetensors(hfJobs[i]!.out)).tensors['logits']!;
      const ref = (await loadSafetensors(join(dir, `${name}.reference.safetensors`))).tensors['merged_logits']!;
      assertClose(got.toTypedArray(), ref.toTypedArray(), { atol: 1e-5, rtol: 1e-5, message: `${name}: transformers on the merged checkpoint vs peft merge_and_unload` });
    }
    const ln = (await loadSafetensors(hfJobs[2]!.out)).tensors['logits']!;
    assertClose(ln.toTypedArray(), lnLogits, { atol: 1e-5, rtol: 1e-5, message: 'LN-tuned, merged' });
    model.dispose();
  });

  it('refuses to replace a directory unless --overwrite, and names a bad adapter', async () => {
    const out = join(tmp, 'existing');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'keep.txt'), 'precious');
    const errors: string[] = [];
    const err = console.error;
    console.error = (s: string) => errors.push(s);
    try {
      assert.equal(await main(['merge', '--model', join(dir, 'vit'), '--adapter', join(dir, 'vit_lora'), '--out', out]), 2);
      assert.match(errors.join('\n'), /exists and is not empty \(--overwrite replaces it\)/);
      assert.equal(await main(['merge', '--model', join(dir, 'vit'), '--adapter', join(dir, 'timm'), '--out', join(tmp, 'x')]), 1);
      assert.match(errors.join('\n'), /timm\/trainable\.safetensors: no such file \(and no adapter_config\.json: not a medtune or PEFT output directory\)/);
    } finally {
      console.error = err;
    }
    assert.deepEqual(readdirSync(out), ['keep.txt'], 'nothing already on disk is lost');
    assert.equal(await quiet(() => main(['merge', '--model', join(dir, 'vit'), '--adapter', join(dir, 'vit_lora'), '--out', out, '--overwrite'])), 0);
    assert.deepEqual(readdirSync(out).sort(), ['config.json', 'model.safetensors']);
  });
});
