// Tokenizers and VLM training examples against transformers (AutoTokenizer, apply_chat_template)
// on tiny tokenizers made by scripts/python/make_tokenizers.py: a tokenizers-library BPE and
// Unigram (tokenizer.json), and a SentencePiece BPE model (tokenizer.model only) converted here.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadTokenizer } from '../../lib/data/text/tokenizer.ts';
import { applyChatTemplate } from '../../lib/data/text/chat-template.ts';
import { renderConversation } from '../../lib/data/text/conversation-templates.ts';
import { VlmExampleBuilder, imageTokensFromConfig, LLAVA_IMAGE_TOKEN_INDEX } from '../../lib/data/text/vlm-examples.ts';
import { readSentencePieceModel } from '../../lib/data/text/sentencepiece.ts';
import { collateTokens } from '../../lib/data/collate.ts';
import type { ConversationExample, ConversationTurn } from '../../lib/data/types.ts';
import { tidy } from '../../lib/torch/index.ts';
import { cachedFixture } from '../helpers/python.ts';

const dir = cachedFixture('tokenizers', 'make_tokenizers.py');
interface Example { input_ids: number[]; labels: number[]; text?: string }
const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as {
  strings: string[];
  conversations: ConversationTurn[][];
  tokenizers: Record<string, { class?: string; with_special: number[][]; without_special: number[][]; decoded: string[]; vocab_size: number; chat_examples?: Example[]; conv_examples?: Record<string, Example[]> }>;
};
const asExample = (conversations: ConversationTurn[], i: number): ConversationExample => ({ id: `c${i}`, image: 'x.png', conversations, source: { file: 'mem', line: i + 1 } });

describe('tokenizers give transformers\' ids', () => {
  for (const name of ['bpe', 'unigram', 'spm', 'spm-legacy']) {
    it(`${name}: encode with/without special tokens, decode, vocabulary size`, async () => {
      const t = loadTokenizer(join(dir, name));
      const r = ref.tokenizers[name]!;
      assert.equal(t.source, name.startsWith('spm') ? 'tokenizer.model' : 'tokenizer.json');
      assert.equal(t.vocabSize, r.vocab_size);
      for (let i = 0; i < ref.strings.length; i++) {
        assert.deepEqual(await t.encode(ref.strings[i]!), r.with_special[i], `${name} with special: ${JSON.stringify(ref.strings[i])}`);
        const ids = await t.encode(ref.strings[i]!, { addSpecialTokens: false });
        assert.deepEqual(ids, r.without_special[i], `${name} without special: ${JSON.stringify(ref.strings[i])}`);
        assert.equal(await t.decode(ids), r.decoded[i]);
      }
    });
  }
  it('reads the SentencePiece protobuf (types, ids, byte fallback)', () => {
    const m = readSentencePieceModel(join(dir, 'spm', 'tokenizer.model'));
    assert.equal(m.modelType, 2);
    assert.equal(m.byteFallback, true);
    assert.deepEqual(m.pieces.slice(0, 3).map((p) => [p.piece, p.type]), [['<unk>', 2], ['<s>', 3], ['</s>', 3]]);
    assert.equal(m.pieces.filter((p) => p.type === 6).length, 256);
  });
});

describe('VLM training examples equal transformers\' apply_chat_template + tokenizer', () => {
  for (const name of ['bpe', 'unigram', 'bpe-llava15']) {
    it(`${name}: prompt tokens and image tokens are -100, every assistant turn supervised`, async () => {
      const t = loadTokenizer(join(dir, name));
      const config = JSON.parse(readFileSync(join(dir, name, 'config.json'), 'utf8')) as Record<string, unknown>;
      const imageTokens = imageTokensFromConfig(config, t);
      assert.equal(imageTokens.kind, 'expand');
      const b = new VlmExampleBuilder(t, { kind: 'chat-template' }, imageTokens);
      for (const [i, conv] of ref.conversations.entries()) {
        const ex = await b.build(asExample(conv, i));
        const expected = ref.tokenizers[name]!.chat_examples![i]!;
        assert.deepEqual(ex.inputIds, expected.input_ids, `${name} conversation ${i} ids`);
        assert.deepEqual(ex.labels, expected.labels, `${name} conversation ${i} labels`);
        const imageId: number = imageTokens.kind === "expand" ? imageTokens.tokenId : -1;
        assert.equal(ex.inputIds.filter((x) => x === imageId).length, config['image_seq_length']);
        assert.ok(ex.inputIds.every((x, j) => x !== imageId || ex.labels[j] === -100));
      }
    });
  }
  for (const template of ['vicuna_v1', 'mistral_instruct'] as const) {
    it(`tokenizer.model checkpoint with LLaVA-Med's ${template} template and the -200 image placeholder`, async () => {
      const t = loadTokenizer(join(dir, 'spm'));
      const b = new VlmExampleBuilder(t, { kind: 'conversation', template }, imageTokensFromConfig({ mm_vision_tower: 'openai/clip-vit-large-patch14-336' }, t));
      for (const [i, conv] of ref.conversations.entries()) {
        const expected = ref.tokenizers['spm']!.conv_examples![template]![i]!;
        const ex = await b.build(asExample(conv, i));
        assert.deepEqual(ex.inputIds, expected.input_ids, `${template} conversation ${i} ids`);
        assert.deepEqual(ex.labels, expected.labels, `${template} conversation ${i} labels`);
        assert.equal(ex.inputIds.filter((x) => x === LLAVA_IMAGE_TOKEN_INDEX).length, 1);
      }
    });
  }
  it('renders LLaVA-Med templates as llava/conversation.py does (by hand)', () => {
    assert.equal(renderConversation('mistral_instruct', [['USER', '<image>\nQ?'], ['ASSISTANT', 'A.'], ['USER', 'Q2'], ['ASSISTANT', null]]), '[INST] <image>\nQ? [/INST] A. </s>[INST] Q2 [/INST]');
    assert.match(renderConversation('vicuna_v1', [['USER', 'Q'], ['ASSISTANT', null]]), /questions\. USER: Q ASSISTANT:$/);
  });
  it('chat template with generation prompt (by hand)', () => {
    const t = loadTokenizer(join(dir, 'unigram'));
    assert.equal(applyChatTemplate(t, [{ role: 'user', content: '<image>\nHi' }], { addGenerationPrompt: true }), '<|im_start|>user\n<image>\nHi<|im_end|>\n<|im_start|>assistant\n');
  });
  it('batches are right-padded int64 maps keyed like HF forward arguments', () => tidy(() => {
    const batch = collateTokens([{ inputIds: [5, 6, 7], labels: [-100, 6, 7] }, { inputIds: [8], labels: [8] }], 0);
    assert.deepEqual(Object.keys(batch).sort(), ['attention_mask', 'input_ids', 'labels']);
    assert.equal(batch['input_ids']!.dtype, 'int64');
    assert.deepEqual(batch['input_ids']!.toArray(), [[5, 6, 7], [8, 0, 0]]);
    assert.deepEqual(batch['attention_mask']!.toArray(), [[1, 1, 1], [1, 0, 0]]);
    assert.deepEqual(batch['labels']!.toArray(), [[-100, 6, 7], [8, -100, -100]]);
  }));
  it('a conversation without a gpt turn is an error naming the record', async () => {
    const t = loadTokenizer(join(dir, 'bpe'));
    const b = new VlmExampleBuilder(t, { kind: 'chat-template' }, { kind: 'none' });
    await assert.rejects(b.build({ id: 'q', conversations: [{ from: 'human', value: 'hi' }], source: { file: 'train.json', line: 12 } }), /train\.json, line 12, field 'conversations': no assistant/);
  });
});
