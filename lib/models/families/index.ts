// From a config.json (and, when loading, the checkpoint's key names) to the typed spec the native
// model is built from. One entry per supported model_type; anything else is an Error that lists
// what is supported.
import type { CheckpointKeys } from '../checkpoint.ts';
import { type ConfigObject, ModelConfigError } from '../config.ts';
import { type VitSpec, isTimmVitConfig, vitSpecFromHf, vitSpecFromTimm } from './vit.ts';

export type ModelSpec = VitSpec;

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
