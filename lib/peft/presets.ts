// Tuning-method presets and scopes, as data. A preset names what a method trains (a selector over
// module kinds, parts and names, never over one family's parameter names) and, for LoRA-style
// methods, which Linear layers get adapters; a scope restricts both to a part of the model. So
// the same `ln` covers ViT (HF and timm), CLIP, LLaMA/Mistral, LLaVA and BLIP, and a user adds a
// method with definePreset() in a few lines:
//
//   definePreset({ name: 'ln+head', description: 'norms and the classifier',
//                  train: select.kind('norm').or(select.kind('head')) });
import type { Selector, SelectorBuilder } from './selector.ts';
import { toSelector } from './selector.ts';

export interface AdapterPreset {
  kind: 'lora';
  /** Target Linear layers when the user names none (see lora-targets.ts for the syntax). */
  targets: readonly string[];
}

export interface MethodPreset {
  name: string;
  description: string;
  /** Base-model parameters the method trains (before the scope is applied). */
  train: Selector;
  adapter?: AdapterPreset;
}

export interface ScopeDefinition {
  name: string;
  description: string;
  selector: Selector;
}

/**
 * Default LoRA targets: the query and value projections, whatever the family calls them (peft's
 * defaults for ViT and LLaMA/LLaVA; on a fused qkv, the q and v thirds as loralib's MergedLinear).
 */
export const DEFAULT_LORA_TARGETS = ['q_proj', 'v_proj', 'query', 'value', 'qkv[q,v]'] as const;

const PRESETS = new Map<string, MethodPreset>();
const SCOPES = new Map<string, ScopeDefinition>();

export function definePreset(preset: { name: string; description: string; train: Selector | SelectorBuilder; adapter?: AdapterPreset }): MethodPreset {
  if (!/^[a-z][a-z0-9_+-]*$/i.test(preset.name)) throw new TypeError(`preset name '${preset.name}' must be a word (letters, digits, _ + -)`);
  const p: MethodPreset = { name: preset.name, description: preset.description, train: toSelector(preset.train), ...(preset.adapter ? { adapter: preset.adapter } : {}) };
  PRESETS.set(p.name, p);
  return p;
}

export function defineScope(scope: { name: string; description: string; selector: Selector | SelectorBuilder }): ScopeDefinition {
  const s: ScopeDefinition = { name: scope.name, description: scope.description, selector: toSelector(scope.selector) };
  SCOPES.set(s.name, s);
  return s;
}

export function getPreset(name: string): MethodPreset | undefined {
  return PRESETS.get(name);
}

export function getScope(name: string): ScopeDefinition | undefined {
  return SCOPES.get(name);
}

export function presetNames(): string[] {
  return [...PRESETS.keys()];
}

export function scopeNames(): string[] {
  return [...SCOPES.keys()];
}

// ---- the built-in presets ----------------------------------------------------------------------

definePreset({
  name: 'ln',
  description: 'LayerNorm / RMSNorm weights and biases (every block, embeddings and final norms)',
  train: { kind: 'norm' },
});
definePreset({ name: 'ffn', description: 'MLP (feed-forward) projections, weights and biases', train: { kind: 'mlp' } });
definePreset({
  name: 'attn',
  description: 'attention projections q, k, v, o (fused qkv included), weights and biases',
  train: { kind: 'attention' },
});
definePreset({ name: 'bitfit', description: 'every bias', train: { leaf: 'bias' } });
definePreset({ name: 'full', description: 'every parameter', train: 'all' });
definePreset({
  name: 'lora',
  description: 'LoRA adapters on the attention q and v projections (--lora-targets), base frozen',
  train: 'none',
  adapter: { kind: 'lora', targets: DEFAULT_LORA_TARGETS },
});

// ---- scopes ---------------------------------------------------------------------------------------

defineScope({ name: 'all', description: 'the whole model', selector: 'all' });
defineScope({ name: 'vision', description: 'the vision tower / encoder', selector: { part: 'vision' } });
defineScope({ name: 'language', description: 'the language model', selector: { part: 'language' } });
defineScope({ name: 'projector', description: "the vision-language projector (LLaVA's multi_modal_projector)", selector: { part: 'projector' } });
// BLIP-style models (transformers' BlipForQuestionAnswering and the original BLIP/MISS layout
// both name their text towers text_encoder.* and text_decoder.*).
defineScope({ name: 'text', description: 'the text encoder (BLIP)', selector: { name: ['text_encoder', 'text_model'] } });
defineScope({ name: 'decoder', description: 'the text decoder (BLIP)', selector: { name: 'text_decoder' } });
