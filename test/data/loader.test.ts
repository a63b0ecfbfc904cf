// The prefetching loader (order, bounded queue, no waiting in steady state, no leaks on early
// exit), augmentation (off by default, seeded) and the ready-made classification / VLM loaders.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { PrefetchLoader, permutation } from '../../lib/data/loader.ts';
import { classificationLoader, vlmLoader } from '../../lib/data/pipelines.ts';
import { decodeImage } from '../../lib/data/image/decode.ts';
import { preprocessorFromConfig, preprocessImage } from '../../lib/data/image/preprocess.ts';
import { randomResizedCropBox, Rng } from '../../lib/data/image/augment.ts';
import { loadTokenizer } from '../../lib/data/text/tokenizer.ts';
import { VlmExampleBuilder, imageTokensFromConfig } from '../../lib/data/text/vlm-examples.ts';
import { liveTensors, tensor } from '../../lib/torch/index.ts';
import type { ClassificationExample } from '../../lib/data/types.ts';
import { cachedFixture } from '../helpers/python.ts';
import { readFileSync } from 'node:fs';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PrefetchLoader', () => {
  it('file order without shuffle; seeded shuffles differ per epoch and cover every item', async () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const plain = new PrefetchLoader(items, async (x) => x, (xs) => xs, { batchSize: 4 });
    const seen: number[][] = [];
    for await (const b of plain.epoch(0)) seen.push(b);
    assert.deepEqual(seen, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    assert.equal(plain.length, 3);
    const shuffled = new PrefetchLoader(items, async (x) => x, (xs) => xs, { batchSize: 4, shuffle: true, seed: 3, dropLast: true });
    assert.equal(shuffled.length, 2);
    assert.notDeepEqual(shuffled.order(0), shuffled.order(1));
    assert.deepEqual([...shuffled.order(0)].sort((a, b) => a - b), items);
    assert.deepEqual(permutation(10, 5), permutation(10, 5));
  });
  it('keeps at most `prefetch` batches ahead of a slow consumer, and the consumer never waits in steady state', async () => {
    let loaded = 0;
    let consumed = 0;
    let maxAhead = 0;
    const loader = new PrefetchLoader(Array.from({ length: 40 }, (_, i) => i), async (x) => { await sleep(1); loaded++; return x; }, (xs) => xs, { batchSize: 4, prefetch: 3, concurrency: 4 });
    for await (const _ of loader.epoch(0)) {
      consumed++;
      maxAhead = Math.max(maxAhead, Math.ceil(loaded / 4) - consumed);
      await sleep(15); // a training step much slower than loading
    }
    assert.equal(consumed, 10);
    assert.ok(maxAhead <= 3, `ran ${maxAhead} batches ahead`);
    assert.equal(loader.stats.waits, 1, 'only the first batch is waited for');
  });
  it('disposes prepared batches when the consumer stops early', async () => {
    const before = liveTensors();
    const loader = new PrefetchLoader(Array.from({ length: 20 }, (_, i) => i), async (x) => x, (xs) => ({ x: tensor(xs) }), { batchSize: 2, prefetch: 4 });
    for await (const b of loader.epoch(0)) {
      b['x']!.dispose();
      break;
    }
    await sleep(10);
    assert.equal(liveTensors(), before);
  });
  it('load errors reach the consumer', async () => {
    const loader = new PrefetchLoader([1, 2, 3], async (x) => { if (x === 3) throw new Error('bad item 3'); return x; }, (xs) => xs, { batchSize: 1 });
    await assert.rejects(async () => { for await (const _ of loader.epoch(0)) { /* consume */ } }, /bad item 3/);
  });
});

describe('image loaders', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medtune-loader-'));
  const pre = preprocessorFromConfig({ image_processor_type: 'ViTImageProcessor', size: { height: 32, width: 32 }, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] });
  const examples: ClassificationExample[] = [];
  it('classification batches: pixel_values equal the single-image pipeline; augmentation is off by default', async () => {
    for (let i = 0; i < 5; i++) {
      const raw = Buffer.alloc(40 * 30 * 3);
      for (let j = 0; j < raw.length; j++) raw[j] = (j * (i + 3)) % 251;
      await sharp(raw, { raw: { width: 40, height: 30, channels: 3 } }).png().toFile(join(dir, `img${i}.png`));
      examples.push({ id: `img${i}.png`, image: `img${i}.png`, labels: [i % 2, Number.NaN], source: { file: 'labels.csv', line: i + 2 } });
    }
    const loader = classificationLoader(examples, { imageRoot: dir, preprocessor: pre, batchSize: 2 });
    const batches = [];
    for await (const b of loader.epoch(0)) batches.push(b);
    assert.equal(batches.length, 3);
    assert.deepEqual(batches[0]!['pixel_values']!.shape, [2, 3, 32, 32]);
    const direct = preprocessImage(await decodeImage(join(dir, 'img1.png')), pre);
    assert.deepEqual(batches[0]!['pixel_values']!.select(0, 1).toNumbers(), Array.from(direct.data));
    const labels = batches[0]!['labels']!.toNumbers();
    assert.equal(labels[0], 0);
    assert.ok(Number.isNaN(labels[1]!));
    for (const b of batches) for (const t of Object.values(b)) t.dispose();
  });
  it('augmentation: seeded random resized crop and flip change pixels, reproducibly', async () => {
    const run = async (seed: number) => {
      const loader = classificationLoader(examples, { imageRoot: dir, preprocessor: pre, batchSize: 5, seed, augment: { randomResizedCrop: { size: { height: 32, width: 32 } }, horizontalFlip: true } });
      for await (const b of loader.epoch(0)) {
        const v = b['pixel_values']!.toNumbers();
        for (const t of Object.values(b)) t.dispose();
        return v;
      }
      return [];
    };
    const a = await run(1);
    assert.deepEqual(a, await run(1));
    assert.notDeepEqual(a, await run(2));
    const box = randomResizedCropBox(100, 50, new Rng(4));
    assert.ok(box.width <= 100 && box.height <= 50 && box.top + box.height <= 50 && box.left + box.width <= 100);
  });
  it('a missing image names the record and the file', async () => {
    const loader = classificationLoader([{ id: 'x', image: 'absent.png', labels: [1], source: { file: 'labels.csv', line: 9 } }], { imageRoot: dir, preprocessor: pre, batchSize: 1 });
    await assert.rejects(async () => { for await (const _ of loader.epoch(0)) { /* */ } }, /labels\.csv, line 9, field 'image': .*absent\.png: image file not found/);
  });
  it('VLM batches carry input_ids, attention_mask, labels and pixel_values', async () => {
    const tokDir = cachedFixture('tokenizers', 'make_tokenizers.py');
    const t = loadTokenizer(join(tokDir, 'bpe'));
    const config = JSON.parse(readFileSync(join(tokDir, 'bpe', 'config.json'), 'utf8')) as Record<string, unknown>;
    const builder = new VlmExampleBuilder(t, { kind: 'chat-template' }, imageTokensFromConfig(config, t));
    const convs = [0, 1].map((i) => ({
      id: `q${i}`, image: `img${i}.png`, source: { file: 'train.json', line: i + 1 },
      conversations: [{ from: 'human' as const, value: '<image>\nIs there an effusion?' }, { from: 'gpt' as const, value: i ? 'No.' : 'Yes, a small one on the left.' }],
    }));
    const loader = vlmLoader(convs, builder, { imageRoot: dir, preprocessor: pre, batchSize: 2, padId: t.idOf('pad')! });
    for await (const b of loader.epoch(0)) {
      assert.deepEqual(Object.keys(b).sort(), ['attention_mask', 'input_ids', 'labels', 'pixel_values']);
      const [bs, len] = b['input_ids']!.shape;
      assert.equal(bs, 2);
      const mask = b['attention_mask']!.toArray() as number[][];
      const longer = (await builder.build(convs[0]!)).inputIds.length;
      assert.equal(len, longer);
      assert.equal(mask[1]!.filter((x) => x === 1).length, (await builder.build(convs[1]!)).inputIds.length);
      for (const v of Object.values(b)) v.dispose();
    }
  });
});
