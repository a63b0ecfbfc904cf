// Parameter names under transformers 5. medtune names parameters by the checkpoint's own keys
// (what safetensors files on the hub hold, transformers 4.x module names); transformers 5 renamed
// modules of several architectures and converts keys while loading (its conversion_mapping), so
// `model.named_parameters()` in PyTorch, and the adapters peft 0.21 writes there, use other names:
//   ViT       vit.encoder.layer.0.attention.attention.query  -> vit.layers.0.attention.q_proj
//   LLaVA     language_model.model.layers.0...               -> model.language_model.layers.0...
//             vision_tower.vision_model.encoder...           -> model.vision_tower.encoder...
// The rules below are transformers 5.18's renamings for the families medtune builds, applied in
// order to a checkpoint name; test/peft/hf-names.test.ts checks them against transformers itself.
// They leave a name that is already in the transformers-5 form unchanged, so any key, old or new,
// can be compared through canonicalName().
import type { Model } from '../models/model.ts';

export interface RenameRule {
  from: RegExp;
  to: string;
}

const VIT_RULES: RenameRule[] = [
  { from: /encoder\.layer\./g, to: 'layers.' },
  { from: /attention\.attention\.query(?=\.|$)/g, to: 'attention.q_proj' },
  { from: /attention\.attention\.key(?=\.|$)/g, to: 'attention.k_proj' },
  { from: /attention\.attention\.value(?=\.|$)/g, to: 'attention.v_proj' },
  { from: /attention\.output\.dense(?=\.|$)/g, to: 'attention.o_proj' },
  { from: /intermediate\.dense(?=\.|$)/g, to: 'mlp.fc1' },
  { from: /(?<!attention\.)output\.dense(?=\.|$)/g, to: 'mlp.fc2' },
];

const LLAVA_RULES: RenameRule[] = [
  { from: /^language_model\.lm_head\./, to: 'lm_head.' },
  { from: /^language_model\.model\./, to: 'model.language_model.' },
  { from: /^language_model\./, to: 'model.language_model.' },
  { from: /^vision_tower\.vision_model\./, to: 'model.vision_tower.' },
  { from: /^model\.vision_tower\.vision_model\./, to: 'model.vision_tower.' },
  { from: /^vision_tower\./, to: 'model.vision_tower.' },
  { from: /^multi_modal_projector\./, to: 'model.multi_modal_projector.' },
];

// CLIPVisionModel lost its vision_model. level in transformers 5.
const CLIP_VISION_RULES: RenameRule[] = [{ from: /^vision_model\./, to: '' }];

/** Renaming rules by transformers model_type (timm models and original LLaVA layouts: none). */
const RULES: Record<string, RenameRule[]> = {
  vit: VIT_RULES,
  llava: LLAVA_RULES,
  clip_vision_model: CLIP_VISION_RULES,
};

/** The rules for a model: by its config's model_type, only for transformers layouts. */
export function renameRules(model: Pick<Model, 'config' | 'spec'>): RenameRule[] {
  const spec = model.spec as { layout?: string };
  if (spec.layout !== undefined && spec.layout !== 'hf') return [];
  const modelType = model.config['model_type'];
  return typeof modelType === 'string' ? RULES[modelType] ?? [] : [];
}

export function applyRules(name: string, rules: readonly RenameRule[]): string {
  let out = name;
  for (const r of rules) out = out.replace(r.from, r.to);
  return out;
}

/**
 * Both spellings of a model's names: checkpoint name -> transformers-5 name, and back.
 */
export class HfNames {
  readonly #rules: RenameRule[];
  readonly #toCheckpoint = new Map<string, string>();

  constructor(model: Pick<Model, 'config' | 'spec'>, checkpointNames: Iterable<string>) {
    this.#rules = renameRules(model);
    for (const name of checkpointNames) this.#toCheckpoint.set(this.toTransformers5(name), name);
  }

  get renames(): boolean {
    return this.#rules.length > 0;
  }

  /** The transformers-5 module name of a checkpoint name (identity where nothing was renamed). */
  toTransformers5(name: string): string {
    return applyRules(name, this.#rules);
  }

  /** The transformers-5 path of a module (rules are written for parameter names: one is appended). */
  moduleToTransformers5(path: string): string {
    if (path === '') return path;
    return this.toTransformers5(`${path}.weight`).slice(0, -'.weight'.length);
  }

  /**
   * The model's own (checkpoint) name for a name in any spelling: the checkpoint's, another
   * checkpoint's of the same architecture (a hub LLaVA with vision_model.), or transformers 5's.
   */
  toCheckpoint(name: string): string | undefined {
    return this.#toCheckpoint.get(this.toTransformers5(name));
  }
}
