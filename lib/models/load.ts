// loadModel(dir) and createModel(config): config.json -> typed spec -> native model, built and
// filled on the compute queue (off the main thread), straight into the target dtype and device.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadTorchCheckpoint } from '../io/torch-checkpoint.ts';
import { type Device, isDevice } from '../torch/device.ts';
import type { DType } from '../torch/dtype.ts';
import { nativePart } from '../torch/native.ts';
import type { Tensor } from '../torch/tensor.ts';
import { CheckpointKeys, findCheckpointFiles } from './checkpoint.ts';
import { type ConfigObject, ModelConfigError, readConfigFile } from './config.ts';
import { inferConfigFromKeys } from './infer-config.ts';
import { resolveModel, type ResolvedModel } from './families/index.ts';
import { Model, type LoadReport } from './model.ts';
import type { ModelsAddon } from './native-types.ts';
import { mergeConfig, PRESETS, resolveConfigArgument } from './presets.ts';
import { readSafetensorsHeader } from '../io/safetensors.ts';

const addon = (): ModelsAddon => nativePart<ModelsAddon>();

/** Model dtypes, with the CLI's short spellings. */
export type ModelDType = 'float32' | 'bfloat16' | 'float16' | 'fp32' | 'bf16' | 'fp16';

export interface ModelOptions {
  dtype?: ModelDType;
  device?: Device;
  /** Seed for parameters that are initialised (createModel; heads a checkpoint lacks). */
  seed?: number;
  /** Standard deviation of that initialisation (default: the config's initializer_range, else 0.02). */
  initStd?: number;
  /** Activation checkpointing per transformer layer (Model.setMemoryOptions). Default false. */
  gradientCheckpointing?: boolean;
  /** Tokens per chunk of a language model's chunked training loss, 0 = whole logits (Model.setMemoryOptions). Default 1024. */
  lossChunkTokens?: number;
}

/** Applies the memory options given at load / create time. */
function withMemoryOptions(model: Model, opts: ModelOptions): Model {
  if (opts.gradientCheckpointing === undefined && opts.lossChunkTokens === undefined) return model;
  try {
    model.setMemoryOptions({
      ...(opts.gradientCheckpointing !== undefined ? { gradientCheckpointing: opts.gradientCheckpointing } : {}),
      ...(opts.lossChunkTokens !== undefined ? { lossChunkTokens: opts.lossChunkTokens } : {}),
    });
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

export interface LoadOptions extends ModelOptions {
  /**
   * Keep CPU parameters whose dtype matches the file as copy-on-write views of the memory-mapped
   * safetensors instead of copying them (as transformers 5 does): loading takes no time and the
   * frozen weights share the page cache. The files must then not be overwritten in place (cp onto
   * them) while the model lives; medtune's own writes replace files by rename and are safe.
   * Default false: every tensor is copied once into the model's own memory.
   */
  mmap?: boolean;
  /** Original LLaVA / LLaVA-Med: the CLIP directory to take the vision tower from. */
  visionTower?: string;
  /**
   * For a weights file (.pth / .pt / .bin / .ckpt / .safetensors) without a directory: the
   * architecture, as a preset name ('vit-base-patch16', 'blip-vqa-base'; see PRESETS), a
   * config.json path, or a config object. Inferred from the keys when the layout tells enough
   * (timm ViTs of the standard widths, BLIP). A directory's own config.json is used otherwise.
   */
  config?: string | ConfigObject;
  /** Merged into the configuration before the model is built: { num_classes: 14 }, { vision_config: { image_size: 480 } }. */
  configOverrides?: ConfigObject;
  /** torch.save files: the dot path of the state dict ('model', 'state_dict'); found automatically when omitted. */
  stateDictKey?: string;
  /** A classifier with this many labels (a fresh head when the checkpoint's differs or lacks one). */
  numLabels?: number;
}

/** The config with `n` labels, in its own vocabulary: timm's num_classes, transformers' num_labels. */
export function withNumLabels(config: ConfigObject, n: number): ConfigObject {
  if (!Number.isInteger(n) || n < 1) throw new ModelConfigError(`numLabels must be a positive integer, got ${n}`);
  if (config['model_type'] === undefined && typeof config['architecture'] === 'string') return mergeConfig(config, { num_classes: n });
  if (config['model_type'] === 'vit') {
    const { id2label: _i, label2id: _l, ...rest } = config;
    const archs = (config['architectures'] as string[] | undefined) ?? [];
    return { ...rest, num_labels: n, architectures: archs.map((a) => (a === 'ViTModel' ? 'ViTForImageClassification' : a)).concat(archs.length ? [] : ['ViTForImageClassification']) };
  }
  throw new ModelConfigError(`numLabels: a ${String(config['model_type'] ?? config['architecture'])} model has no classification head to size`);
}

function finalConfig(base: ConfigObject, opts: LoadOptions): ConfigObject {
  const merged = mergeConfig(base, opts.configOverrides);
  return opts.numLabels !== undefined ? withNumLabels(merged, opts.numLabels) : merged;
}

const TORCH_SAVE_FILE = /\.(pth|pt|bin|ckpt|tar)$/i;

export function normalizeDType(dtype: ModelDType | undefined): DType {
  switch (dtype ?? 'float32') {
    case 'float32':
    case 'fp32':
      return 'float32';
    case 'bfloat16':
    case 'bf16':
      return 'bfloat16';
    case 'float16':
    case 'fp16':
      return 'float16';
    default:
      throw new TypeError(`dtype must be one of float32, bfloat16, float16 (fp32, bf16, fp16), got '${String(dtype)}'`);
  }
}

function nativeOptions(config: ConfigObject, opts: ModelOptions) {
  if (opts.device !== undefined && !isDevice(opts.device)) throw new TypeError(`device must be 'cpu', 'cuda' or 'cuda:N', got '${String(opts.device)}'`);
  const range = config['initializer_range'];
  return {
    dtype: normalizeDType(opts.dtype),
    device: opts.device ?? 'cpu',
    seed: opts.seed ?? 0,
    initStd: opts.initStd ?? (typeof range === 'number' ? range : 0.02),
  };
}

// Buffers older transformers versions saved with the weights (recomputed, never loaded): CLIP's
// embeddings.position_ids, LLaMA's rotary_emb.inv_freq. They are not worth reporting.
function isKnownBuffer(name: string): boolean {
  return name.endsWith('.embeddings.position_ids') || name.endsWith('.rotary_emb.inv_freq');
}

function loadReport(out: { unexpected: string[]; initialized: string[]; adapted: string[] }, resolved: ResolvedModel): LoadReport {
  const ignored = out.unexpected.filter((name) => resolved.ignoredPrefixes.some((p) => name.startsWith(p)));
  const unexpected = out.unexpected.filter((name) => !resolved.ignoredPrefixes.some((p) => name.startsWith(p)) && !isKnownBuffer(name));
  return {
    unexpected,
    initialized: out.initialized,
    ...(out.adapted.length ? { adapted: out.adapted } : {}),
    ...(ignored.length ? { ignored } : {}),
  };
}

/**
 * Loads a model from a Hugging Face model directory (config.json + model.safetensors or sharded
 * with model.safetensors.index.json; timm hub directories too), or from a single weights file:
 * a torch.save checkpoint (.pth, .pt, .bin, .ckpt; read safely by lib/io, nothing in it runs) or
 * a .safetensors file, with the architecture from `opts.config`. Every tensor is converted once
 * into `dtype` on `device`. Corrupt or mismatched files are Errors naming the file and the tensor.
 */
export async function loadModel(path: string, opts: LoadOptions = {}): Promise<Model> {
  if (!existsSync(path)) throw new ModelConfigError(`${path}: no such model directory or weights file`);
  if (!statSync(path).isDirectory()) return loadWeightsFile(path, opts);
  const dir = path;
  const configPath = join(dir, 'config.json');
  const config = finalConfig(opts.config !== undefined ? resolveConfigArgument(opts.config).config : readConfigFile(configPath), opts);
  const checkpoint = findCheckpointFiles(dir);
  const resolved = resolveModel(config, configPath, { dir, keys: checkpoint.keys, visionTower: opts.visionTower ?? null });
  const sources = [...checkpoint.files.map((p) => ({ path: p, prefix: '' })), ...resolved.extraSources];
  const out = await addon().modelLoadAsync(resolved.spec, sources, { ...nativeOptions(config, opts), mmap: opts.mmap ?? false });
  const generationPath = join(dir, 'generation_config.json');
  return withMemoryOptions(new Model({
    handle: out.model,
    config,
    generationConfig: existsSync(generationPath) ? readConfigFile(generationPath) : null,
    companions: resolved.companions ?? [],
    spec: resolved.spec,
    architecture: resolved.architecture,
    loadReport: loadReport(out, resolved),
  }), opts);
}

async function loadWeightsFile(file: string, opts: LoadOptions): Promise<Model> {
  let keys: CheckpointKeys;
  let tensors: Map<string, Tensor> | null = null;
  if (/\.safetensors$/i.test(file)) {
    keys = CheckpointKeys.fromHeaders([readSafetensorsHeader(file)]);
  } else if (TORCH_SAVE_FILE.test(file)) {
    tensors = (await loadTorchCheckpoint(file, opts.stateDictKey !== undefined ? { stateDictKey: opts.stateDictKey } : {})).tensors;
    keys = new CheckpointKeys();
    for (const [name, t] of tensors) keys.add(name, t.shape, file);
  } else {
    throw new ModelConfigError(`${file}: not a model directory, a torch.save file (.pth, .pt, .bin, .ckpt) or a .safetensors file`);
  }
  try {
    let base: { config: ConfigObject; source: string };
    if (opts.config !== undefined) base = resolveConfigArgument(opts.config);
    else {
      const inferred = inferConfigFromKeys(keys);
      if (!inferred) {
        throw new ModelConfigError(`${file}: the architecture cannot be read off the weights; pass config (a preset: ${Object.keys(PRESETS).join(', ')}; or a config.json)`);
      }
      base = { config: inferred, source: `inferred from the keys of ${file}` };
    }
    const config = finalConfig(base.config, opts);
    const resolved = resolveModel(config, base.source, { dir: null, keys, visionTower: null });
    const source = tensors
      ? { path: file, prefix: '', names: [...tensors.keys()], tensors: [...tensors.values()].map((t) => t.handle) }
      : { path: file, prefix: '' };
    const out = await addon().modelLoadAsync(resolved.spec, [source], { ...nativeOptions(config, opts), mmap: !tensors && (opts.mmap ?? false) });
    return withMemoryOptions(new Model({ handle: out.model, config, spec: resolved.spec, architecture: resolved.architecture, loadReport: loadReport(out, resolved) }), opts);
  } finally {
    if (tensors) for (const t of tensors.values()) t.dispose();
  }
}

/**
 * A model with random weights from a config object (as config.json holds it), in the family's
 * default checkpoint layout, so that `model.save(dir)` writes a directory transformers loads.
 * Tests, benchmarks and the embedded tiny default make their checkpoints this way.
 */
export async function createModel(config: ConfigObject, opts: ModelOptions = {}): Promise<Model> {
  if (typeof config !== 'object' || config === null) throw new ModelConfigError('createModel(): config must be an object like config.json');
  const resolved = resolveModel(config, 'createModel() config', { dir: null, keys: null, visionTower: null });
  const handle = await addon().modelCreateAsync(resolved.spec, nativeOptions(config, opts));
  return withMemoryOptions(new Model({ handle, config: { ...config }, spec: resolved.spec, architecture: resolved.architecture, loadReport: { unexpected: [], initialized: [] } }), opts);
}
