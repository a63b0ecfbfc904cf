// torch.save checkpoints to model directories: lib/io's safe conversion to safetensors, plus the
// config.json that makes the directory load (here, and in the reference library where it can
// represent the model). Two output layouts:
//   'source'  the checkpoint's own keys. timm ViTs get timm's hub config.json ("architecture" +
//             "model_args"), which loads here and in timm; BLIP's own layout gets a BlipConfig
//             that loads here.
//   'hf'      transformers' keys and config: BLIP -> BlipForQuestionAnswering /
//             BlipForConditionalGeneration; timm ViT -> ViTModel / ViTForImageClassification (only
//             for what HF ViT can express: class-token pooling after a final norm, no LayerScale).
// The default is 'hf' for BLIP (transformers represents it exactly) and 'source' for timm ViTs
// (MAE-style fine-tuning pools patch tokens through fc_norm, which HF ViT cannot).
import { mkdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { convertTorchCheckpoint, type ConvertOptions } from '../io/convert.ts';
import { saveSafetensors } from '../io/safetensors.ts';
import { inspectTorchCheckpoint, loadTorchCheckpoint, type TorchCheckpointReport } from '../io/torch-checkpoint.ts';
import { writeTextAtomic } from '../io/atomic-write.ts';
import { tidy } from '../torch/scope.ts';
import type { Tensor } from '../torch/tensor.ts';
import { CheckpointKeys } from './checkpoint.ts';
import { type ConfigObject, ModelConfigError, stringifyConfig } from './config.ts';
import { BLIP_LABEL_SMOOTHING } from './families/blip.ts';
import { resolveModel } from './families/index.ts';
import type { VitSpec } from './families/vit.ts';
import { inferConfigFromKeys } from './infer-config.ts';
import { mergeConfig, resolveConfigArgument } from './presets.ts';

export type ConvertFormat = 'auto' | 'source' | 'hf';

export interface ModelConvertOptions extends ConvertOptions {
  format?: ConvertFormat;
  /** The architecture when the keys do not tell it (a preset name, a config.json, an object). */
  config?: string | ConfigObject;
  configOverrides?: ConfigObject;
}

export interface ModelConvertResult {
  safetensors: string;
  reportFile: string;
  report: TorchCheckpointReport;
  /** config.json, when one was written. */
  config: string | null;
  format: 'source' | 'hf' | null;
  architecture: string | null;
  /** Why no config.json was written, or what the conversion changed. */
  notes: string[];
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}

function keysOf(report: TorchCheckpointReport): CheckpointKeys {
  const keys = new CheckpointKeys();
  for (const t of report.tensors) keys.add(t.name, t.shape, report.file);
  return keys;
}

// ---- BLIP: Salesforce's layout -> transformers' ---------------------------------------------------

const BLIP_VISION_RENAMES: [RegExp, string][] = [
  [/^visual_encoder\.cls_token$/, 'vision_model.embeddings.class_embedding'],
  [/^visual_encoder\.pos_embed$/, 'vision_model.embeddings.position_embedding'],
  [/^visual_encoder\.patch_embed\.proj\./, 'vision_model.embeddings.patch_embedding.'],
  [/^visual_encoder\.norm\./, 'vision_model.post_layernorm.'],
  [/^visual_encoder\.blocks\.(\d+)\.norm1\./, 'vision_model.encoder.layers.$1.layer_norm1.'],
  [/^visual_encoder\.blocks\.(\d+)\.norm2\./, 'vision_model.encoder.layers.$1.layer_norm2.'],
  [/^visual_encoder\.blocks\.(\d+)\.attn\.qkv\./, 'vision_model.encoder.layers.$1.self_attn.qkv.'],
  [/^visual_encoder\.blocks\.(\d+)\.attn\.proj\./, 'vision_model.encoder.layers.$1.self_attn.projection.'],
  [/^visual_encoder\.blocks\.(\d+)\.mlp\./, 'vision_model.encoder.layers.$1.mlp.'],
];

/** transformers' name for a BLIP checkpoint key, or null for keys it does not store (buffers, tied copies). */
export function blipKeyToHf(name: string, tied: boolean): string | null {
  if (name.endsWith('.embeddings.position_ids')) return null;
  if (name === 'text_decoder.cls.predictions.decoder.bias') return null;
  if (tied && name === 'text_decoder.cls.predictions.decoder.weight') return null;
  if (!name.startsWith('visual_encoder.')) return name;
  for (const [re, to] of BLIP_VISION_RENAMES) if (re.test(name)) return name.replace(re, to);
  throw new ModelConfigError(`BLIP key '${name}' has no transformers equivalent`);
}

// ---- timm ViT -> transformers' ViT ------------------------------------------------------------------

function hfVitUnsupported(spec: VitSpec): string | null {
  if (spec.pooling !== 'cls' || spec.finalNorm !== 'norm') return `it pools '${spec.pooling}' with ${spec.finalNorm}; transformers' ViT takes the class token after a final norm`;
  if (spec.layerScale) return "it has LayerScale (ls1/ls2), which transformers' ViT lacks";
  if (spec.preNorm || spec.noEmbedClass || !spec.classToken) return "its embeddings differ from transformers' ViT (pre-norm, no class token or no_embed_class)";
  return null;
}

function vitToHf(spec: VitSpec, tensors: Map<string, Tensor>): Map<string, Tensor> {
  const prefix = spec.numLabels > 0 ? 'vit.' : '';
  const out = new Map<string, Tensor>();
  const D = spec.hiddenSize;
  for (const [name, t] of tensors) {
    let m: RegExpExecArray | null;
    if (name === 'cls_token') out.set(`${prefix}embeddings.cls_token`, t);
    else if (name === 'pos_embed') out.set(`${prefix}embeddings.position_embeddings`, t);
    else if ((m = /^patch_embed\.proj\.(weight|bias)$/.exec(name))) out.set(`${prefix}embeddings.patch_embeddings.projection.${m[1]}`, t);
    else if ((m = /^norm\.(weight|bias)$/.exec(name))) out.set(`${prefix}layernorm.${m[1]}`, t);
    else if ((m = /^head\.(weight|bias)$/.exec(name))) out.set(`classifier.${m[1]}`, t);
    else if ((m = /^blocks\.(\d+)\.(.+)$/.exec(name))) {
      const layer = `${prefix}encoder.layer.${m[1]}.`;
      const rest = m[2]!;
      let r: RegExpExecArray | null;
      if ((r = /^attn\.qkv\.(weight|bias)$/.exec(rest))) {
        // timm's fused rows are q | k | v.
        ['query', 'key', 'value'].forEach((which, i) => out.set(`${layer}attention.attention.${which}.${r![1]}`, t.narrow(0, i * D, D)));
      } else {
        const map: Record<string, string> = {
          'norm1.': 'layernorm_before.', 'norm2.': 'layernorm_after.', 'attn.proj.': 'attention.output.dense.', 'mlp.fc1.': 'intermediate.dense.', 'mlp.fc2.': 'output.dense.',
        };
        const from = Object.keys(map).find((k) => rest.startsWith(k));
        if (!from) throw new ModelConfigError(`timm ViT key '${name}' has no transformers equivalent`);
        out.set(layer + map[from] + rest.slice(from.length), t);
      }
    }
  }
  return out;
}

function hfVitConfig(spec: VitSpec): ConfigObject {
  return {
    model_type: 'vit',
    architectures: [spec.numLabels > 0 ? 'ViTForImageClassification' : 'ViTModel'],
    hidden_size: spec.hiddenSize, num_hidden_layers: spec.numLayers, num_attention_heads: spec.numHeads, intermediate_size: spec.intermediateSize,
    hidden_act: spec.hiddenAct, layer_norm_eps: spec.layerNormEps, image_size: spec.imageSize, patch_size: spec.patchSize, num_channels: spec.numChannels,
    qkv_bias: spec.qkvBias, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0,
    ...(spec.numLabels > 0 ? { num_labels: spec.numLabels, ...(spec.problemType ? { problem_type: spec.problemType } : {}) } : {}),
  };
}

/**
 * Converts a torch.save checkpoint into `outDir`: model.safetensors, convert-report.json and,
 * when the architecture is known (from the keys or `config`), config.json.
 */
export async function convertCheckpoint(input: string, outDir: string, opts: ModelConvertOptions = {}): Promise<ModelConvertResult> {
  const configFile = join(outDir, 'config.json');
  if (!opts.overwrite && (await exists(configFile))) throw new Error(`${configFile} already exists (pass overwrite / --force to replace it)`);
  const inspected = await inspectTorchCheckpoint(input, opts);
  const keys = keysOf(inspected);
  const notes: string[] = [];
  let config: ConfigObject | null = null;
  if (opts.config !== undefined) config = resolveConfigArgument(opts.config).config;
  else config = inferConfigFromKeys(keys);
  if (config) config = mergeConfig(config, opts.configOverrides);
  const resolved = config ? resolveModel(config, 'the converted configuration', { dir: null, keys, visionTower: null }) : null;
  const family = resolved?.spec.family ?? null;
  let format: 'source' | 'hf' = opts.format === 'hf' || (opts.format !== 'source' && family === 'blip') ? 'hf' : 'source';
  if (format === 'hf') {
    if (!resolved) throw new ModelConfigError(`${input}: --format hf needs the architecture (pass --config)`);
    if (resolved.spec.family === 'vit') {
      const why = resolved.spec.layout === 'timm' ? hfVitUnsupported(resolved.spec) : 'it is already in transformers\' layout';
      if (why) throw new ModelConfigError(`${input}: transformers cannot represent this ViT as ViTModel: ${why}; convert with --format source`);
    } else if (resolved.spec.family !== 'blip') {
      throw new ModelConfigError(`${input}: --format hf is supported for BLIP and timm ViT checkpoints`);
    }
  }

  if (format === 'source' || !resolved) {
    const result = await convertTorchCheckpoint(input, outDir, opts);
    if (!config || !resolved) {
      notes.push(`no config.json: the architecture of ${result.report.layout ? `this ${result.report.layout.name} layout` : 'these keys'} is not known; pass --config (a preset or a config.json)`);
      return { ...result, config: null, format: null, architecture: null, notes };
    }
    await writeTextAtomic(configFile, stringifyConfig(config));
    return { ...result, config: configFile, format: 'source', architecture: resolved.architecture, notes };
  }

  // transformers' layout: load, rename, write.
  const safetensors = join(outDir, opts.fileName ?? 'model.safetensors');
  const reportFile = join(outDir, 'convert-report.json');
  if (!opts.overwrite) for (const f of [safetensors, reportFile]) if (await exists(f)) throw new Error(`${f} already exists (pass overwrite / --force to replace it)`);
  await mkdir(outDir, { recursive: true });
  return tidy(async () => {
    const { tensors, report } = await loadTorchCheckpoint(input, opts);
    const spec = resolved.spec;
    let out: Map<string, Tensor>;
    let hfConfig: ConfigObject;
    if (spec.family === 'blip') {
      out = new Map();
      for (const [name, t] of tensors) {
        const hf = blipKeyToHf(name, spec.tieWordEmbeddings);
        if (hf !== null) out.set(hf, t);
      }
      // Keep BLIP's loss semantics: medtune reads decoder_loss; transformers' own loss gets the smoothing.
      hfConfig = mergeConfig(config!, {
        decoder_loss: spec.decoderLoss,
        text_config: { label_smoothing: spec.decoderLoss === 'blip' ? BLIP_LABEL_SMOOTHING : spec.labelSmoothing },
      });
      notes.push(`renamed to transformers' ${resolved.architecture === 'BLIP_VQA' ? 'BlipForQuestionAnswering' : 'BlipForConditionalGeneration'} keys (vision_model.*); position_ids buffers and tied copies dropped`);
    } else {
      out = vitToHf(spec as VitSpec, tensors);
      hfConfig = hfVitConfig(spec as VitSpec);
      const dropped = [...tensors.keys()].filter((k) => /^(decoder_|mask_token)/.test(k));
      if (dropped.length) notes.push(`left out ${dropped.length} MAE decoder tensors`);
      notes.push("split each fused qkv into query / key / value (transformers' ViT keys)");
    }
    await saveSafetensors(safetensors, out, { format: 'pt', source: basename(input) });
    await writeTextAtomic(reportFile, `${JSON.stringify({ ...report, output: safetensors, format: 'hf', renamed: out.size }, null, 2)}\n`);
    await writeTextAtomic(configFile, stringifyConfig(hfConfig));
    const architecture = (hfConfig['architectures'] as string[])[0]!;
    return { safetensors, reportFile, report, config: configFile, format: 'hf' as const, architecture, notes };
  });
}
