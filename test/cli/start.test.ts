// `npm start` (scripts/start.ts), the README's main command: LN-tuning of the embedded tiny LLaVA
// on the bundled VQA-style set, through the same fineTune() and dataset wiring as `medtune
// train`. It prints the trainable-parameter report (only norms train), a falling loss, held-out
// answers that became right, and the saved file, which loads back onto the model.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel, loadSafetensors } from '../../lib/models/index.ts';
import { loadAdapter } from '../../lib/peft/index.ts';
import { REPO_ROOT } from '../helpers/fixtures.ts';

const work = mkdtempSync(join(tmpdir(), 'medtune-start-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('npm start', () => {
  it('LN-tunes the embedded tiny LLaVA on the bundled VQA set: report, falling loss, a saved file that loads', async (t) => {
    const out = join(work, 'run');
    const cache = join(work, 'cache');
    const stdout = execFileSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'start.ts'), '--out', out, '--cache', cache],
      { encoding: 'utf8', cwd: REPO_ROOT, timeout: 300_000 });
    assert.match(stdout, /LN-tuning .*tiny-llava/);
    assert.match(stdout, /trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: 0\.\d+/);
    const m = /loss (\d+\.\d+) -> (\d+\.\d+) over (\d+) steps/.exec(stdout);
    assert.ok(m, stdout);
    const log = readFileSync(join(out, 'train_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; loss: number }).filter((r) => r.type === 'train');
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const head = mean(log.slice(0, 10).map((r) => r.loss));
    const tail = mean(log.slice(-10).map((r) => r.loss));
    t.diagnostic(`mean loss of the first 10 steps ${head.toFixed(4)}, of the last 10 ${tail.toFixed(4)} (${log.length} steps)`);
    assert.ok(tail < 0.5 * head, `the loss falls clearly: ${head} -> ${tail}`);
    assert.match(stdout, /saved: .*trainable\.safetensors/);
    // Greedy answers to the held-out questions (yes / no / left / right / none), before and after.
    const held = /answered exactly: (\d+)\/(\d+) before, (\d+)\/(\d+) after/.exec(stdout);
    assert.ok(held, stdout);
    const [before, total, after] = [Number(held[1]), Number(held[2]), Number(held[3])];
    t.diagnostic(`held-out answers: ${before}/${total} before, ${after}/${total} after`);
    assert.ok(total >= 20 && after >= 0.75 * total && after > before, `LN-tuning taught the answers: ${before} -> ${after} of ${total}`);

    // The saved LayerNorm tensors load back onto the base model.
    const modelDir = readdirSync(cache).map((v) => join(cache, v, 'tiny-llava')).find((d) => existsSync(join(d, 'config.json')))!;
    const model = await loadModel(modelDir);
    const applied = await loadAdapter(model, out);
    const saved = await loadSafetensors(join(out, 'trainable.safetensors'));
    const names = Object.keys(saved.tensors);
    assert.ok(names.length > 0 && names.every((n) => /norm|layrnorm/.test(n)), names.join(', '));
    assert.deepEqual([...applied.trainable].sort(), [...names].sort());
    for (const n of names) {
      const p = model.parameter(n);
      assert.deepEqual(Array.from(p.toTypedArray() as Float32Array), Array.from(saved.tensors[n]!.toTypedArray() as Float32Array), n);
      p.dispose();
      saved.tensors[n]!.dispose();
    }
    model.dispose();
  });
});
