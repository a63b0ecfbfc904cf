// A native model as TypeScript sees it. Parameters are addressed by the checkpoint's own key
// names; forward takes HF-named batch tensors and resolves on the compute queue. Native memory is
// released by dispose() (or `using`, or the enclosing tidy() scope).
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Device } from '../torch/device.ts';
import type { DType } from '../torch/dtype.ts';
import { nativePart } from '../torch/native.ts';
import { type Scope, type Tracked, trackInCurrentScope } from '../torch/scope.ts';
import { Tensor } from '../torch/tensor.ts';
import { writeFileAtomicSync } from '../io/atomic-write.ts';
import { parseByteSize } from './shard-size.ts';
import { WEIGHTS_INDEX_NAME, WEIGHTS_NAME } from './checkpoint.ts';
import { type ConfigObject, stringifyConfig } from './config.ts';
import type { ModelSpec } from './families/index.ts';
import type { ModelHandle, ModelPart, ModelsAddon, ModuleKind, NativeParameterInfo } from './native-types.ts';

const addon = (): ModelsAddon => nativePart<ModelsAddon>();

export interface ParameterInfo {
  /** The checkpoint's own key name (adapter parameters: the Linear's path + the adapter's name). */
  name: string;
  shape: number[];
  dtype: DType;
  device: Device;
  numel: number;
  kind: ModuleKind;
  part: ModelPart;
  /** The native module type owning it ('Linear', 'LayerNorm', 'RMSNorm', 'Embedding' ...). */
  module: string;
  requiresGrad: boolean;
  /** False for adapter parameters, which are not part of the base checkpoint. */
  persistent: boolean;
}

export interface ModuleInfo {
  path: string;
  type: string;
  kind: ModuleKind;
  part: ModelPart;
}

export interface LoadReport {
  /** Checkpoint tensors the model has no place for. */
  unexpected: string[];
  /** Head parameters the checkpoint lacked, freshly initialised (as transformers does). */
  initialized: string[];
  /** Tensors changed to fit: 'pos_embed: 14x14 -> 30x30 patch grid (bicubic)'. Present when any were. */
  adapted?: string[];
  /** Known parts of the checkpoint the model does not build (an MAE decoder, CLIP's text tower), left unloaded. Present when any. */
  ignored?: string[];
}

export interface SaveOptions {
  /** Largest shard ('5GB' default, as transformers); bigger models are sharded with an index. */
  maxShardSize?: number | string;
  /** Convert floating-point tensors while writing (default: as held). */
  dtype?: DType;
}

export interface SavedCheckpoint {
  dir: string;
  files: string[];
  index: string | null;
  totalBytes: number;
}

export interface ForwardOptions {
  /** Also return hidden_states.0 (embeddings) .. hidden_states.N (after each layer). */
  outputHiddenStates?: boolean;
  /** Record the autograd graph (default: the grad mode in force at the call). */
  grad?: boolean;
  /**
   * false: only the loss is wanted (a training or evaluation step), so a language model computes
   * it in chunks of tokens without materialising the logits (see setMemoryOptions) and returns no
   * `logits`. Default true.
   */
  logits?: boolean;
}

/** Memory-saving settings of a model (setMemoryOptions). */
export interface MemoryOptions {
  /**
   * Activation (gradient) checkpointing per transformer layer (LLaMA/Mistral decoder layers,
   * CLIP / ViT / BLIP vision blocks): a layer keeps only its input in the forward pass and is
   * recomputed in the backward pass. Same losses and gradients, about one extra forward pass of
   * compute, activation memory of one layer instead of all. BERT text layers (BLIP) are not
   * checkpointed.
   */
  gradientCheckpointing?: boolean;
  /**
   * Language models: tokens per chunk of the chunked cross-entropy used when only the loss is
   * wanted (training steps, `forward(..., { logits: false })`); 0 computes whole logits. Default
   * 1024: the [tokens, vocab] float32 logits never exist whole.
   */
  lossChunkTokens?: number;
}

/** Batch tensors by HF forward argument name: input_ids, attention_mask, pixel_values, labels ... */
export type Batch = Record<string, Tensor | null | undefined>;

export interface GenerateOptions {
  /** New tokens at most (default: generation_config.json's max_new_tokens, else 20). */
  maxNewTokens?: number;
  /** Sample instead of greedy argmax (default: generation_config.json's do_sample, else false). */
  doSample?: boolean;
  temperature?: number;
  /** 0 disables top-k (default 50, as transformers). */
  topK?: number;
  topP?: number;
  /** Stop ids (default: generation_config.json's, else config.json's eos_token_id). */
  eosTokenId?: number | number[];
  /** Written after a row has finished (default: pad_token_id, else the first EOS id, as transformers). */
  padTokenId?: number;
  /** Seeds sampling; the same seed gives the same tokens. */
  seed?: number;
}

export interface GenerateOutput {
  /** input_ids followed by the new tokens (B, S + n); just the new tokens when there were no input_ids. */
  sequences: Tensor;
  /** The new tokens (B, n); rows that finished early continue with padTokenId. */
  tokens: Tensor;
}

export interface ModelInit {
  handle: ModelHandle;
  config: ConfigObject;
  /** generation_config.json, when the directory has one. */
  generationConfig?: ConfigObject | null;
  /** Files save() copies along (relative path in the directory -> source file). */
  companions?: { relativePath: string; source: string }[];
  spec: ModelSpec;
  architecture: string;
  loadReport: LoadReport;
}

export class Model implements Tracked {
  readonly #handle: ModelHandle;
  #disposed = false;
  /** @internal */
  scope: Scope | null = null;
  /** The Hugging Face config (as in config.json); save() writes it back. */
  readonly config: ConfigObject;
  /** The typed options the native model was built from. */
  readonly spec: ModelSpec;
  readonly architecture: string;
  readonly loadReport: LoadReport;
  /** generation_config.json (null when absent): the defaults generate() uses, as transformers does. */
  readonly generationConfig: ConfigObject | null;
  readonly #companions: { relativePath: string; source: string }[];

  /** @internal models come from loadModel() and createModel(). */
  constructor(init: ModelInit) {
    this.#handle = init.handle;
    this.#companions = init.companions ?? [];
    this.config = init.config;
    this.generationConfig = init.generationConfig ?? null;
    this.spec = init.spec;
    this.architecture = init.architecture;
    this.loadReport = init.loadReport;
    trackInCurrentScope(this);
  }

  /** The native handle, for other medtune layers (trainers, PEFT). */
  get handle(): ModelHandle {
    if (this.#disposed) throw Object.assign(new Error('the model was disposed'), { code: 'MEDTUNE_DISPOSED' });
    return this.#handle;
  }

  get family(): ModelSpec['family'] {
    return this.spec.family;
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.scope?.untrack(this);
    addon().disposeHandle(this.#handle);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Every parameter, in module order, with checkpoint names, kind and part (what masks select on). */
  parameters(): ParameterInfo[] {
    return addon().modelParameters(this.handle).map((p: NativeParameterInfo) => ({
      ...p,
      device: p.device as Device,
      numel: p.shape.reduce((a, b) => a * b, 1),
    }));
  }

  /** Every module with its checkpoint path, type, kind and part. */
  modules(): ModuleInfo[] {
    return addon().modelModules(this.handle);
  }

  /** The parameter itself (same storage and autograd leaf as the model uses); dispose the handle when done. */
  parameter(name: string): Tensor {
    return Tensor.fromHandle(addon().modelParameter(this.handle, name));
  }

  /** Sets requires_grad on the named parameters (or all); returns how many changed. */
  setRequiresGrad(names: readonly string[] | 'all', flag: boolean): number {
    return addon().modelSetRequiresGrad(this.handle, names === 'all' ? null : [...names], flag);
  }

  /** Counts of all and trainable parameter elements. */
  parameterCount(): { total: number; trainable: number } {
    let total = 0;
    let trainable = 0;
    for (const p of this.parameters()) {
      total += p.numel;
      if (p.requiresGrad) trainable += p.numel;
    }
    return { total, trainable };
  }

  get dtype(): DType {
    const p = addon().modelParameters(this.handle)[0];
    return p ? p.dtype : 'float32';
  }

  get device(): Device {
    const p = addon().modelParameters(this.handle)[0];
    return (p ? p.device : 'cpu') as Device;
  }

  /**
   * One forward pass on the compute queue. Always returns `logits` (classifiers and LMs), `loss`
   * when `labels` are given (HF semantics), and family-specific outputs (last_hidden_state,
   * pooler_output, image_features; hidden_states.N with outputHiddenStates). Records the autograd
   * graph when grad mode is on at the call, unless `grad` says otherwise (`grad: false` for
   * inference, like torch.no_grad()).
   */
  async forward(batch: Batch, opts: ForwardOptions = {}): Promise<Record<string, Tensor>> {
    const nativeBatch: Record<string, Tensor['handle']> = {};
    for (const [k, t] of Object.entries(batch)) if (t) nativeBatch[k] = t.handle;
    const out = await addon().modelForwardAsync(this.handle, nativeBatch, opts);
    const result: Record<string, Tensor> = {};
    for (const [k, h] of Object.entries(out)) result[k] = Tensor.fromHandle(h);
    return result;
  }

  /**
   * Greedy or sampled decoding with a KV cache, following transformers' generate(): batches are
   * left-padded (attention_mask 0 on the left), positions come from the mask, finished rows
   * continue with the pad token, and decoding stops when every row has produced an EOS id.
   * Batch: input_ids, attention_mask, and pixel_values for LLaVA.
   */
  async generate(batch: Batch, opts: GenerateOptions = {}): Promise<GenerateOutput> {
    if (this.spec.family === 'blip') {
      throw new TypeError('generate(): BLIP models decode from the image / question with decode(model, batch, { numBeams, maxLength }) (lib/models/decode.ts)');
    }
    const g = this.generationConfig ?? {};
    const pick = <T>(value: T | undefined, key: string, fallback: T): T => value ?? ((g[key] as T | undefined) ?? fallback);
    const spec = this.spec as { eosTokenIds?: number[]; padTokenId?: number | null };
    const eosDefault = g['eos_token_id'] ?? spec.eosTokenIds ?? [];
    const eos = opts.eosTokenId ?? (eosDefault as number | number[]);
    const eosIds = Array.isArray(eos) ? eos : [eos];
    const pad = opts.padTokenId ?? (typeof g['pad_token_id'] === 'number' ? g['pad_token_id'] : spec.padTokenId ?? eosIds[0] ?? 0);
    const nativeBatch: Record<string, Tensor['handle']> = {};
    for (const [k, t] of Object.entries(batch)) if (t) nativeBatch[k] = t.handle;
    const out = await addon().modelGenerateAsync(this.handle, nativeBatch, {
      maxNewTokens: pick(opts.maxNewTokens, 'max_new_tokens', 20),
      doSample: pick(opts.doSample, 'do_sample', false),
      temperature: pick(opts.temperature, 'temperature', 1),
      topK: pick(opts.topK, 'top_k', 50),
      topP: pick(opts.topP, 'top_p', 1),
      eosTokenIds: eosIds,
      padTokenId: pad,
      seed: opts.seed ?? null,
    });
    return { sequences: Tensor.fromHandle(out.sequences), tokens: Tensor.fromHandle(out.tokens) };
  }

  /**
   * Sets memory options (see MemoryOptions); returns what is in force: how many layers are
   * checkpointed and the loss chunk size (null for models without a language-model head).
   */
  setMemoryOptions(opts: MemoryOptions): { checkpointedLayers: number; lossChunkTokens: number | null } {
    if (opts.lossChunkTokens !== undefined && !(Number.isSafeInteger(opts.lossChunkTokens) && opts.lossChunkTokens >= 0)) {
      throw new TypeError(`lossChunkTokens must be a whole number >= 0 (0: whole logits), got ${opts.lossChunkTokens}`);
    }
    return addon().modelSetMemoryOptions(this.handle, opts);
  }

  /** Dropout (and drop-path) on (true) or off. Models load in eval mode, as from_pretrained does. */
  train(flag = true): this {
    addon().modelSetTraining(this.handle, flag);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  get training(): boolean {
    return addon().modelTraining(this.handle);
  }

  /**
   * Attaches an adapter of a registered kind to the Linear at `path` (its checkpoint path, with or
   * without '.weight'). Its parameters then appear among parameters() under that path.
   * `options.slices` ([[start, length], ...]) restricts it to some output rows of a fused
   * projection (timm's qkv: the q and v thirds), as loralib's MergedLinear does.
   */
  attachAdapter(path: string, kind: string, options: Record<string, unknown> = {}): void {
    addon().modelAttachAdapter(this.handle, path, kind, options);
  }

  detachAdapter(path: string): boolean {
    return addon().modelDetachAdapter(this.handle, path);
  }

  /** Folds the adapter at `path` into the base weight (forward unchanged, adapter inactive). */
  mergeAdapter(path: string): void {
    addon().modelMergeAdapter(this.handle, path, true);
  }

  unmergeAdapter(path: string): void {
    addon().modelMergeAdapter(this.handle, path, false);
  }

  /** Adapter kinds the native layer knows ('delta', and those the PEFT layer registers). */
  static adapterKinds(): string[] {
    return addon().adapterKinds();
  }

  /**
   * Writes a Hugging Face directory: config.json and model.safetensors, or shards of at most
   * maxShardSize with model.safetensors.index.json. Tensor names are the checkpoint's; adapter
   * parameters are not included. Each file is written atomically; stale weight files of the
   * other form (single vs sharded) are removed after the new ones are in place.
   */
  async save(dir: string, opts: SaveOptions = {}): Promise<SavedCheckpoint> {
    mkdirSync(dir, { recursive: true });
    const maxShard = parseByteSize(opts.maxShardSize ?? '5GB');
    const shards = await addon().modelSaveAsync(this.handle, dir, maxShard, opts.dtype ?? null, null);
    const files = shards.map((s) => join(dir, s.file));
    const totalBytes = shards.reduce((a, s) => a + s.bytes, 0);
    let index: string | null = null;
    if (shards.length > 1) {
      const weightMap: Record<string, string> = {};
      const entries: [string, string][] = shards.flatMap((s) => s.names.map((n): [string, string] => [n, s.file]));
      entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      for (const [n, f] of entries) weightMap[n] = f;
      index = join(dir, WEIGHTS_INDEX_NAME);
      writeFileAtomicSync(index, `${JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: weightMap }, null, 2)}\n`);
    }
    const config: ConfigObject = { ...this.config };
    // HF configs record the weights' dtype (transformers 5 as "dtype", 4.x as "torch_dtype").
    if (opts.dtype && typeof config['model_type'] === 'string') {
      if ('torch_dtype' in config && !('dtype' in config)) config['torch_dtype'] = opts.dtype;
      else config['dtype'] = opts.dtype;
    }
    writeFileAtomicSync(join(dir, 'config.json'), stringifyConfig(config));
    if (this.generationConfig) writeFileAtomicSync(join(dir, 'generation_config.json'), stringifyConfig(this.generationConfig));
    for (const c of this.#companions) {
      const target = join(dir, c.relativePath);
      if (resolve(target) === resolve(c.source)) continue;
      mkdirSync(dirname(target), { recursive: true });
      writeFileAtomicSync(target, readFileSync(c.source));
    }
    const written = new Set(shards.map((s) => s.file));
    for (const name of readdirSync(dir)) {
      const stale = (name === WEIGHTS_NAME || /^model-\d{5}-of-\d{5}\.safetensors$/.test(name)) && !written.has(name);
      if (stale) rmSync(join(dir, name), { force: true });
    }
    if (!index && existsSync(join(dir, WEIGHTS_INDEX_NAME))) rmSync(join(dir, WEIGHTS_INDEX_NAME), { force: true });
    return { dir, files, index, totalBytes };
  }
}
