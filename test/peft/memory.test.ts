// Native memory: applying methods, reporting, saving and loading adapters (sliced ones too) and
// merging dispose every tensor they make. Alone in its file, so no other test's garbage (freed
// whenever the collector runs) moves the live-tensor count.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadModel } from '../../lib/models/index.ts';
import { applyMethod, loadAdapter, mergeAdapters, saveTrainedOutput, unmergeAdapters } from '../../lib/peft/index.ts';
import { cachedFixture } from '../helpers/python.ts';

let dir: string;
const tmp = mkdtempSync(join(tmpdir(), 'medtune-peft-memory-'));

before(() => {
  dir = cachedFixture('peft', 'make_peft_fixtures.py', [], { dependsOn: ['peft_reference.py', 'timm_vit_reference.py'] });
});

describe('native memory', () => {
  it('applying, reporting, saving, loading and merging adapters leaves no tensor behind', async () => {
    const { liveTensors } = await import('../../lib/torch/index.ts');
    const model = await loadModel(join(dir, 'vit'));
    const start = liveTensors();
    const applied = await applyMethod(model, { method: 'lora', lora: { r: 2, dora: true }, trainExtra: 'classifier' });
    await saveTrainedOutput(model, applied, join(tmp, 'leak'));
    const other = await loadModel(join(dir, 'vit'));
    const loaded = await loadAdapter(other, join(dir, 'vit_dora'));
    mergeAdapters(other, loaded);
    unmergeAdapters(other, loaded);
    other.dispose();
    const timm = await loadModel(join(dir, 'timm'));
    const sliced = await applyMethod(timm, { method: 'lora' });
    await saveTrainedOutput(timm, sliced, join(tmp, 'leak-timm'));
    timm.dispose();
    const back = await loadModel(join(dir, 'timm'));
    await loadAdapter(back, join(tmp, 'leak-timm'));
    back.dispose();
    assert.equal(liveTensors(), start);
    model.dispose();
  });
});
