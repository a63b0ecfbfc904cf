// The suite's models and batches: seeded createModel configs written once under .cache/bench/
// (transformers loads the same directories), with tensor files both sides read.
//   vit-tiny    the tests' tiny ViT classifier (hidden 32, 2 layers, 16 px): dispatch-bound
//   vit-small   ViT-Ti width (hidden 192, 3 heads) with 6 layers at 96 px (36 patches), 14 labels,
//               batch 8
//   llava-tiny  the trainer parity test's LLaVA (CLIP hidden 16 + LLaMA hidden 32, GQA)
//   llava-small CLIP hidden 128 x 2 layers at 64 px (16 image tokens) + LLaMA hidden 256 x 4
//               layers (GQA 4/2, SwiGLU 688, vocab 4096), sequences of 64 tokens, batch 4
// Sizes are what a shared 2-core machine runs the whole suite with in about 10 minutes.
// Directories are named with a digest of the config, so a changed size makes new files.
import { Generator, randint, randn, tensor, type Tensor } from '../../../lib/torch/index.ts';
import { digest, ensureData, ensureModel } from './common.ts';

export interface BenchModel {
  name: string;
  family: 'vit' | 'llava';
  modelDir: string;
  dataFile: string;
  /** Train-step and forward batch size. */
  batch: number;
}

function vitConfig(hidden: number, layers: number, image: number, patch: number) {
  return {
    model_type: 'vit', architectures: ['ViTForImageClassification'], hidden_size: hidden, num_hidden_layers: layers,
    num_attention_heads: hidden < 64 ? 4 : Math.round(hidden / 64),
    intermediate_size: 4 * hidden, image_size: image, patch_size: patch, num_labels: 14, problem_type: 'multi_label_classification',
  };
}

async function vit(name: string, hidden: number, layers: number, image: number, patch: number, batch: number): Promise<BenchModel> {
  const config = vitConfig(hidden, layers, image, patch);
  const dirName = `${name}-${digest([config, batch])}`;
  const modelDir = await ensureModel(dirName, config);
  const dataFile = await ensureData(dirName, 'data.safetensors', () => {
    const g = new Generator(1);
    return { pixel_values: randn([4 * batch, 3, image, image], { generator: g }), labels: randn([4 * batch, 14], { generator: g }).gt(1).float() };
  });
  return { name, family: 'vit', modelDir, dataFile, batch };
}

interface LlavaShape {
  vision: { hidden: number; layers: number; heads: number; image: number; patch: number };
  text: { vocab: number; hidden: number; inter: number; layers: number; heads: number; kv: number };
  seq: number;
}

async function llava(name: string, s: LlavaShape, batch: number): Promise<BenchModel> {
  const imageToken = s.text.vocab - 1;
  const imageTokens = (s.vision.image / s.vision.patch) ** 2;
  const config = {
    model_type: 'llava', architectures: ['LlavaForConditionalGeneration'], image_token_index: imageToken, image_seq_length: imageTokens,
    vision_config: {
      model_type: 'clip_vision_model', hidden_size: s.vision.hidden, intermediate_size: 4 * s.vision.hidden, num_hidden_layers: s.vision.layers,
      num_attention_heads: s.vision.heads, image_size: s.vision.image, patch_size: s.vision.patch,
    },
    text_config: {
      model_type: 'llama', vocab_size: s.text.vocab, hidden_size: s.text.hidden, intermediate_size: s.text.inter, num_hidden_layers: s.text.layers,
      num_attention_heads: s.text.heads, num_key_value_heads: s.text.kv, max_position_embeddings: 4 * s.seq, pad_token_id: 0,
    },
  };
  const dirName = `${name}-${digest([config, s.seq, batch])}`;
  const modelDir = await ensureModel(dirName, config);
  // Rows: BOS, the image tokens, a question, an answer (supervised) and EOS, right-padded.
  const n = 4 * batch;
  const dataFile = await ensureData(dirName, 'data.safetensors', () => {
    const g = new Generator(1);
    const ids = new Array<number>(n * s.seq).fill(0);
    const mask = new Array<number>(n * s.seq).fill(0);
    const labels = new Array<number>(n * s.seq).fill(-100);
    const words = randint(3, imageToken, [n, s.seq], { generator: g }).toNumbers();
    for (let i = 0; i < n; i++) {
      const prompt = 1 + imageTokens + Math.floor((s.seq - imageTokens) / 2);
      const length = s.seq - (i % 3); // a little padding on some rows
      for (let t = 0; t < length; t++) {
        const id = t === 0 ? 1 : t <= imageTokens ? imageToken : t === length - 1 ? 2 : words[i * s.seq + t]!;
        ids[i * s.seq + t] = id;
        mask[i * s.seq + t] = 1;
        if (t >= prompt) labels[i * s.seq + t] = id;
      }
    }
    const shape = [n, s.seq];
    const data: Record<string, Tensor> = {
      input_ids: tensor(ids, { shape, dtype: 'int64' }), attention_mask: tensor(mask, { shape, dtype: 'int64' }),
      labels: tensor(labels, { shape, dtype: 'int64' }), pixel_values: randn([n, 3, s.vision.image, s.vision.image], { generator: g }),
    };
    return data;
  }, { loss_scaling: 'tokens' });
  return { name, family: 'llava', modelDir, dataFile, batch };
}

export const vitTiny = () => vit('vit-tiny', 32, 2, 16, 8, 4);
export const vitSmall = () => vit('vit-small', 192, 6, 96, 16, 8);
export const llavaTiny = () => llava('llava-tiny', {
  vision: { hidden: 16, layers: 2, heads: 2, image: 8, patch: 4 },
  text: { vocab: 96, hidden: 32, inter: 64, layers: 2, heads: 4, kv: 2 }, seq: 16,
}, 4);
export const llavaSmall = () => llava('llava-small', {
  vision: { hidden: 128, layers: 2, heads: 2, image: 64, patch: 16 },
  text: { vocab: 4096, hidden: 256, inter: 688, layers: 4, heads: 4, kv: 2 }, seq: 64,
}, 4);
