// From a config.json (and, when loading, the checkpoint's key names) to the typed spec the native
// model is built from. One entry per supported model_type; anything else is an Error that lists
// what is supported.
import type { CheckpointKeys } from '../checkpoint.ts';
import { type ConfigObject, ModelConfigError } from '../config.ts';
import { CLIP_TEXT_PREFIXES, type ClipVisionSpec, clipVisionModelSpec } from './clip.ts';
import { type LlamaSpec, causalLmSpec } from './llama.ts';
import { type LlavaSpec, isOriginalLlava, llavaHfSpec, llavaOriginalSpec } from './llava.ts';
import { type VitSpec, isTimmVitConfig, vitSpecFromHf, vitSpecFromTimm } from './vit.ts';

export type ModelSpec = VitSpec | LlamaSpec | ClipVisionSpec | LlavaSpec;

export interface CheckpointSource {
  path: string;
  /** Prepended to every key of this file (a separate CLIP directory inside a LLaVA-Med model). */
  prefix: string;
}

export interface ResolveContext {
  /** The model directory (null for createModel). */
  dir: string | null;
  /** The checkpoint's keys (null for createModel: the family's default layout is used). */
  keys: CheckpointKeys | null;
  /** A CLIP directory given by the caller for original-layout LLaVA checkpoints. */
  visionTower: string | null;
}

export interface ResolvedModel {
  spec: ModelSpec;
  /** The HF architecture (or timm architecture) the model follows. */
  architecture: string;
  /** Extra weight files beyond the model directory's own. */
  extraSources: CheckpointSource[];
  /** Checkpoint keys that belong to parts medtune does not build (CLIP's text tower ...). */
  ignoredPrefixes: string[];
  /**
   * Files the model directory relies on beyond config.json and the weights (an original LLaVA's
   * local CLIP config named by mm_vision_tower): save() copies them to the same relative place.
   */
  companions?: { relativePath: string; source: string }[];
}

interface FamilyEntry {
  modelTypes: string[];
  resolve(config: ConfigObject, where: string, ctx: ResolveContext): ResolvedModel;
}

const FAMILIES: FamilyEntry[] = [
  {
    modelTypes: ['vit'],
    resolve(config, where, ctx) {
      const spec = vitSpecFromHf(config, where, ctx.keys);
      return {
        spec,
        architecture: spec.numLabels > 0 ? 'ViTForImageClassification' : 'ViTModel',
        extraSources: [],
        ignoredPrefixes: [],
      };
    },
  },
  {
    modelTypes: ['clip_vision_model', 'clip'],
    resolve(config, where, ctx) {
      const spec = clipVisionModelSpec(config, where, ctx.keys);
      // A CLIPModel checkpoint loads its vision half; the text half is skipped, not unexpected.
      return { spec, architecture: 'CLIPVisionModel', extraSources: [], ignoredPrefixes: config['model_type'] === 'clip' ? CLIP_TEXT_PREFIXES : [] };
    },
  },
  {
    modelTypes: ['llava', 'llava_llama', 'llava_mistral'],
    resolve(config, where, ctx) {
      return isOriginalLlava(config) ? llavaOriginalSpec(config, where, ctx) : llavaHfSpec(config, where, ctx);
    },
  },
  {
    modelTypes: ['llama', 'mistral'],
    resolve(config, where, ctx) {
      const spec = causalLmSpec(config, where, ctx.keys);
      return { spec, architecture: spec.modelType === 'mistral' ? 'MistralForCausalLM' : 'LlamaForCausalLM', extraSources: [], ignoredPrefixes: [] };
    },
  },
];

export function supportedModelTypes(): string[] {
  return [...FAMILIES.flatMap((f) => f.modelTypes), "timm 'vit_*' architectures"];
}

export function resolveModel(config: ConfigObject, where: string, ctx: ResolveContext): ResolvedModel {
  if (isTimmVitConfig(config) && config['model_type'] === undefined) {
    return { spec: vitSpecFromTimm(config, where), architecture: String(config['architecture']), extraSources: [], ignoredPrefixes: [] };
  }
  const modelType = config['model_type'];
  if (typeof modelType !== 'string') {
    throw new ModelConfigError(`${where}: no "model_type" (and no timm "architecture"); supported: ${supportedModelTypes().join(', ')}`, 'MEDTUNE_UNSUPPORTED_MODEL');
  }
  const family = FAMILIES.find((f) => f.modelTypes.includes(modelType));
  if (!family) {
    throw new ModelConfigError(`${where}: model_type '${modelType}' is not supported; supported: ${supportedModelTypes().join(', ')}`, 'MEDTUNE_UNSUPPORTED_MODEL');
  }
  return family.resolve(config, where, ctx);
}
