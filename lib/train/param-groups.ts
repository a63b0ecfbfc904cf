// Parameter groups for the optimizer: which trainable tensors get weight decay, and layer-wise
// learning-rate decay as MAE / BEiT fine-tuning does it (util/lr_decay.py, param_groups_lrd).
import type { Tensor } from '../torch/tensor.ts';
import type { ParamGroup } from './optimizer.ts';

/** A trainable parameter as the model reports it (HF name, module kind when known). */
export interface TrainableParam {
  name: string;
  tensor: Tensor;
  /** The model's module kind for it ('norm', 'bias', 'embedding', ...), when the model says. */
  kind?: string;
}

/**
 * Which parameters are exempt from weight decay:
 * - 'norm-bias': the HF Trainer's rule (get_decay_parameter_names): parameters of normalization
 *   layers and every name containing bias / layernorm / rmsnorm / norm;
 * - 'mae': MAE fine-tuning's rule: every 1-d parameter plus the cls token and position embeddings;
 * - 'none': everything decays (plain torch.optim).
 */
export const NO_DECAY_RULES = ['norm-bias', 'mae', 'none'] as const;
export type NoDecayRule = (typeof NO_DECAY_RULES)[number];

export interface GroupingOptions {
  lr: number;
  weightDecay: number;
  noDecay?: NoDecayRule;
  /** Layer-wise lr decay factor (MAE's --layer_decay, e.g. 0.75); 1 or absent = off. */
  layerDecay?: number;
  /** Transformer blocks of the model; default: counted from the names given (max index + 1). */
  numLayers?: number;
}

// transformers' Trainer.get_decay_parameter_names, matched against the lower-cased full name.
const HF_NO_DECAY = [/bias/, /layernorm/, /rmsnorm/, /(?:^|\.)norm(?:$|\.)/, /_norm(?:$|\.)/];
// MAE's no_weight_decay(): {'pos_embed', 'cls_token', 'dist_token'}, with the HF ViT spellings.
const MAE_NO_DECAY = /(?:^|\.)(?:cls_token|pos_embed|dist_token|position_embeddings)$/;

export function isNoDecay(p: TrainableParam, rule: NoDecayRule): boolean {
  if (rule === 'none') return false;
  if (rule === 'mae') return p.tensor.ndim <= 1 || MAE_NO_DECAY.test(p.name);
  const lower = p.name.toLowerCase();
  return p.kind === 'norm' || HF_NO_DECAY.some((re) => re.test(lower));
}

// The transformer block a name belongs to: timm (blocks.N), HF ViT/BERT (encoder.layer.N),
// LLaMA/Mistral and CLIP (layers.N), GPT-2 style (h.N).
const BLOCK = /(?:^|\.)(?:blocks|layer|layers|h)\.(\d+)\./;
// Embeddings sit below block 0 (MAE: cls_token, pos_embed, patch_embed -> layer 0).
const EMBEDDING = /(?:^|\.)(?:cls_token|pos_embed|dist_token|patch_embed|embeddings|embed_tokens)(?:$|\.)/;

/** MAE's get_layer_id_for_vit on HF or timm names: 0 for embeddings, N + 1 for block N, numLayers + 1 above. */
export function layerId(name: string, numLayers: number): number {
  if (EMBEDDING.test(name)) return 0;
  const m = BLOCK.exec(name);
  if (m) return Number(m[1]) + 1;
  return numLayers + 1;
}

export function countLayers(names: readonly string[]): number {
  let max = -1;
  for (const n of names) {
    const m = BLOCK.exec(n);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

export interface ResolvedGroup extends ParamGroup {
  name: string;
  lr: number;
  weightDecay: number;
  /** The layer-wise lr multiplier applied to this group's lr (1 without layer decay). */
  lrScale: number;
}

/**
 * Splits the trainable parameters into groups, in order of first appearance (as torch.optim and
 * MAE's param_groups_lrd build them). Without exemptions or layer decay this is one group.
 */
export function buildParamGroups(params: readonly TrainableParam[], opts: GroupingOptions): ResolvedGroup[] {
  const rule = opts.noDecay ?? 'norm-bias';
  const decay = opts.layerDecay ?? 1;
  if (!(decay > 0 && decay <= 1)) throw new RangeError(`layer decay must be in (0, 1], got ${decay}`);
  const numLayers = opts.numLayers ?? countLayers(params.map((p) => p.name));
  const groups = new Map<string, ResolvedGroup & { params: { name: string; tensor: Tensor }[] }>();
  for (const p of params) {
    const exempt = isNoDecay(p, rule);
    const id = decay === 1 ? null : layerId(p.name, numLayers);
    const key = `${id === null ? '' : `layer_${id}_`}${exempt ? 'no_decay' : 'decay'}`;
    let g = groups.get(key);
    if (!g) {
      // MAE: layer_scales[i] = layer_decay ** (num_layers + 1 - i), num_layers counting blocks.
      const lrScale = id === null ? 1 : decay ** (numLayers + 1 - id);
      g = { name: key, lr: opts.lr * lrScale, weightDecay: exempt ? 0 : opts.weightDecay, lrScale, params: [] };
      groups.set(key, g);
    }
    g.params.push({ name: p.name, tensor: p.tensor });
  }
  return [...groups.values()];
}
