// The architecture of a bare state dict, read off its keys and shapes where they tell enough: a
// timm VisionTransformer of one of timm's standard widths (the number of heads is not in the
// weights; timm's sizes fix it), or a BLIP model in Salesforce BLIP's layout (BLIP-base).
import { detectLayout } from '../io/checkpoint-layout.ts';
import type { CheckpointKeys } from './checkpoint.ts';
import type { ConfigObject } from './config.ts';
import { mergeConfig, PRESETS } from './presets.ts';

const TIMM_WIDTHS: Record<number, { size: string; heads: number }> = {
  192: { size: 'tiny', heads: 3 },
  384: { size: 'small', heads: 6 },
  768: { size: 'base', heads: 12 },
  1024: { size: 'large', heads: 16 },
  1280: { size: 'huge', heads: 16 },
};

export function inferConfigFromKeys(keys: CheckpointKeys): ConfigObject | null {
  const tensors = [...keys.shapes].map(([name, shape]) => ({ name, shape }));
  const layout = detectLayout(tensors);
  if (!layout) return null;
  const f = layout.facts;
  if (layout.name === 'timm-vit' && !f['keyPrefix']) {
    const width = TIMM_WIDTHS[Number(f['embedDim'])];
    const patch = f['patchSize'];
    if (!width || typeof patch !== 'number' || typeof f['imageSize'] !== 'number') return null;
    const img = f['imageSize'];
    return {
      architecture: `vit_${width.size}_patch${patch}_${img}`,
      num_classes: typeof f['numClasses'] === 'number' ? f['numClasses'] : 0,
      global_pool: keys.has('fc_norm.weight') ? 'avg' : 'token',
      model_args: {
        img_size: img, patch_size: patch, embed_dim: f['embedDim'], depth: f['depth'], num_heads: width.heads,
        mlp_ratio: typeof f['mlpHidden'] === 'number' ? f['mlpHidden'] / Number(f['embedDim']) : 4,
        qkv_bias: Boolean(f['qkvBias']), class_token: Boolean(f['clsToken']), in_chans: f['inChans'],
      },
    };
  }
  if (layout.name === 'blip') {
    const pos = keys.shape('visual_encoder.pos_embed');
    const patch = keys.shape('visual_encoder.patch_embed.proj.weight');
    const words = keys.shape('text_decoder.bert.embeddings.word_embeddings.weight');
    if (!pos || !patch || !words || patch[0] !== 768) return null;
    const grid = Math.round(Math.sqrt(pos[1]! - 1));
    const preset = keys.hasPrefix('text_encoder.') ? PRESETS['blip-vqa-base']! : PRESETS['blip-caption-base']!;
    return mergeConfig(preset.config, { vision_config: { image_size: grid * patch[2]! }, text_config: { vocab_size: words[0]! } });
  }
  return null;
}
