// loadModel(dir) and createModel(config): config.json -> typed spec -> native model, built and
// filled on the compute queue (off the main thread), straight into the target dtype and device.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Device, isDevice } from '../torch/device.ts';
import type { DType } from '../torch/dtype.ts';
import { nativePart } from '../torch/native.ts';
import { findCheckpointFiles } from './checkpoint.ts';
import { type ConfigObject, ModelConfigError, readConfigFile } from './config.ts';
import { resolveModel } from './families/index.ts';
import { Model } from './model.ts';
import type { ModelsAddon } from './native-types.ts';

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
}

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

/**
 * Loads a Hugging Face model directory (config.json + model.safetensors or sharded with
 * model.safetensors.index.json; timm hub directories too). Every tensor is converted once into
 * `dtype` on `device`. Corrupt or mismatched files are Errors naming the file and the tensor.
 */
export async function loadModel(dir: string, opts: LoadOptions = {}): Promise<Model> {
  if (!existsSync(dir)) throw new ModelConfigError(`${dir}: no such model directory`);
  const configPath = join(dir, 'config.json');
  const config = readConfigFile(configPath);
  const checkpoint = findCheckpointFiles(dir);
  const resolved = resolveModel(config, configPath, { dir, keys: checkpoint.keys, visionTower: opts.visionTower ?? null });
  const sources = [...checkpoint.files.map((path) => ({ path, prefix: '' })), ...resolved.extraSources];
  const out = await addon().modelLoadAsync(resolved.spec, sources, { ...nativeOptions(config, opts), mmap: opts.mmap ?? false });
  const unexpected = out.unexpected.filter((name) => !resolved.ignoredPrefixes.some((p) => name.startsWith(p)) && !isKnownBuffer(name));
  const generationPath = join(dir, 'generation_config.json');
  return new Model({
    handle: out.model,
    config,
    generationConfig: existsSync(generationPath) ? readConfigFile(generationPath) : null,
    companions: resolved.companions ?? [],
    spec: resolved.spec,
    architecture: resolved.architecture,
    loadReport: { unexpected, initialized: out.initialized },
  });
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
  return new Model({ handle, config: { ...config }, spec: resolved.spec, architecture: resolved.architecture, loadReport: { unexpected: [], initialized: [] } });
}
