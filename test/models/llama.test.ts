// LLaMA and Mistral against transformers: logits and the causal-LM loss (right-padded batch, -100
// labels) for every supported RoPE type, grouped-query attention with a sliding window, and
// generation token for token (greedy 20 tokens, EOS with pad continuation, seeded sampling).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { loadModel, loadSafetensors, type LlamaSpec } from '../../lib/models/index.ts';
import { cuda, type Tensor } from '../../lib/torch/index.ts';
import { assertClose } from '../helpers/close.ts';
import { cachedFixture } from '../helpers/python.ts';

let dir: string;

async function reference(name: string): Promise<Record<string, Tensor>> {
  return (await loadSafetensors(join(dir, `${name}.reference.safetensors`))).tensors;
}

/** Logits at real (unpadded) positions only: transformers' values at padding are arbitrary. */
function realLogits(logits: Tensor, mask: Tensor): number[] {
  const [B, S, V] = logits.shape as [number, number, number];
  const flat = logits.toNumbers();
  const m = mask.toNumbers();
  const out: number[] = [];
  for (let b = 0; b < B; b++) for (let s = 0; s < S; s++) if (m[b * S + s]) out.push(...flat.slice((b * S + s) * V, (b * S + s + 1) * V));
  return out;
}

async function checkForward(name: string, check: (spec: LlamaSpec) => void): Promise<void> {
  const ref = await reference(name);
  const model = await loadModel(join(dir, name));
  check(model.spec as LlamaSpec);
  const out = await model.forward({ input_ids: ref['input_ids']!, attention_mask: ref['attention_mask']!, labels: ref['labels']! }, { grad: false, outputHiddenStates: true });
  assertClose(realLogits(out['logits']!, ref['attention_mask']!), realLogits(ref['logits']!, ref['attention_mask']!), { atol: 1e-4, rtol: 0, message: `${name} logits` });
  for (let i = 0; ref[`hidden_states.${i}`]; i++) {
    assertClose(realLogits(out[`hidden_states.${i}`]!, ref['attention_mask']!), realLogits(ref[`hidden_states.${i}`]!, ref['attention_mask']!), { atol: 1e-4, rtol: 0, message: `${name} hidden_states.${i}` });
  }
  assert.equal(out['hidden_states.3'], undefined);
  assertClose(out['loss']!.item(), ref['loss']!.item(), { atol: 1e-5, rtol: 0, message: `${name} loss` });
  model.dispose();
}

describe('LLaMA / Mistral parity with transformers', () => {
  before(() => {
    dir = cachedFixture('lm', 'make_lm_fixtures.py');
  });

  it('LLaMA (linear RoPE scaling, untied head): logits within 1e-4 and the HF loss', async () => {
    await checkForward('llama', (s) => assert.deepEqual([s.rope.type, s.rope.factor, s.tieWordEmbeddings], ['linear', 2, false]));
  });

  it('LLaMA with llama3 RoPE, tied embeddings and attention biases', async () => {
    await checkForward('llama_tied', (s) => assert.deepEqual([s.rope.type, s.tieWordEmbeddings, s.attentionBias, s.numKeyValueHeads], ['llama3', true, true, 2]));
  });

  it('LLaMA with dynamic NTK RoPE past max_position_embeddings', async () => {
    await checkForward('llama_dynamic', (s) => assert.deepEqual([s.rope.type, s.maxPositionEmbeddings], ['dynamic', 8]));
  });

  it('LLaMA with yarn RoPE', async () => {
    await checkForward('llama_yarn', (s) => assert.deepEqual([s.rope.type, s.rope.theta], ['yarn', 500]));
  });

  it('Mistral with grouped-query attention and a sliding window shorter than the sequence', async () => {
    await checkForward('mistral', (s) => assert.deepEqual([s.modelType, s.numHeads, s.numKeyValueHeads, s.slidingWindow], ['mistral', 4, 2, 4]));
  });

  it('parameters carry checkpoint names, kinds and parts; the tied head is one parameter', async () => {
    const model = await loadModel(join(dir, 'llama_tied'));
    const by = new Map(model.parameters().map((p) => [p.name, p]));
    assert.equal(by.get('model.layers.0.self_attn.k_proj.weight')?.kind, 'attention');
    assert.deepEqual(by.get('model.layers.0.self_attn.k_proj.weight')?.shape, [16, 32]);
    assert.equal(by.get('model.layers.1.mlp.gate_proj.weight')?.kind, 'mlp');
    assert.equal(by.get('model.layers.1.post_attention_layernorm.weight')?.module, 'RMSNorm');
    assert.equal(by.get('model.norm.weight')?.kind, 'norm');
    assert.equal(by.get('model.embed_tokens.weight')?.kind, 'embedding');
    assert.equal(by.has('lm_head.weight'), false);
    assert.ok([...by.values()].every((p) => p.part === 'language'));
    model.dispose();
  });

  it('on CUDA: fp32 logits match, bf16 stays within half-precision noise, greedy tokens are the same', { skip: !cuda.isAvailable() && 'no CUDA device' }, async () => {
    const ref = await reference('mistral');
    const batch = { input_ids: ref['input_ids']!, attention_mask: ref['attention_mask']! };
    const fp32 = await loadModel(join(dir, 'mistral'), { device: 'cuda' });
    const out = await fp32.forward(batch, { grad: false });
    assert.equal(out['logits']!.device, 'cuda:0');
    assertClose(realLogits(out['logits']!.cpu(), ref['attention_mask']!), realLogits(ref['logits']!, ref['attention_mask']!), { atol: 1e-3, rtol: 0 });
    const gen = await fp32.generate({ input_ids: ref['gen_input_ids']!, attention_mask: ref['gen_attention_mask']! }, { maxNewTokens: 20, eosTokenId: [], padTokenId: 0 });
    assert.deepEqual(gen.sequences.cpu().toArray(), ref['greedy']!.toArray());
    const bf16 = await loadModel(join(dir, 'mistral'), { device: 'cuda', dtype: 'bf16' });
    const outBf16 = await bf16.forward(batch, { grad: false });
    assertClose(realLogits(outBf16['logits']!.cpu(), ref['attention_mask']!), realLogits(ref['logits_bf16']!, ref['attention_mask']!), { atol: 6e-2, rtol: 0 });
    fp32.dispose();
    bf16.dispose();
  });

  for (const name of ['llama', 'mistral']) {
    it(`${name}: loaded as bf16 and fp16 it matches transformers running in those dtypes`, async () => {
      const ref = await reference(name);
      // The same kernels in the same order as transformers: equal to well inside one half-precision step.
      for (const [dtype, key, atol] of [['bf16', 'logits_bf16', 2e-3], ['fp16', 'logits_fp16', 1e-3]] as const) {
        const model = await loadModel(join(dir, name), { dtype });
        const out = await model.forward({ input_ids: ref['input_ids']!, attention_mask: ref['attention_mask']! }, { grad: false });
        assert.equal(out['logits']!.dtype, dtype === 'bf16' ? 'bfloat16' : 'float16');
        const ours = realLogits(out['logits']!, ref['attention_mask']!);
        const theirs = realLogits(ref[key]!, ref['attention_mask']!);
        assertClose(ours, theirs, { atol, rtol: 0, message: `${name} ${dtype}` });
        model.dispose();
      }
    });

    it(`${name}: greedy generation of 20 tokens with left padding is token-identical to transformers`, async () => {
      const ref = await reference(name);
      const model = await loadModel(join(dir, name));
      const batch = { input_ids: ref['gen_input_ids']!, attention_mask: ref['gen_attention_mask']! };
      const greedy = await model.generate(batch, { maxNewTokens: 20, eosTokenId: [], padTokenId: 0 });
      assert.deepEqual(greedy.sequences.toArray(), ref['greedy']!.toArray());
      assert.deepEqual(greedy.tokens.shape, [2, 20]);

      const eos = ref['eos_id']!.item();
      const stopped = await model.generate(batch, { maxNewTokens: 20, eosTokenId: eos, padTokenId: 0 });
      assert.deepEqual(stopped.sequences.toArray(), ref['greedy_eos']!.toArray(), 'EOS stops a row, pads follow, decoding ends when all rows are done');

      const sampled = await model.generate(batch, { maxNewTokens: 20, doSample: true, temperature: 0.8, topK: 10, topP: 0.9, seed: 123, eosTokenId: [] });
      assert.deepEqual(sampled.sequences.toArray(), ref['sampled']!.toArray(), 'seeded sampling draws the same tokens as torch.manual_seed(123)');
      model.dispose();
    });
  }
});
