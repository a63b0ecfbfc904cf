// Trained results on disk.
//  - LoRA / DoRA: a PEFT adapter directory that `PeftModel.from_pretrained` loads:
//      adapter_config.json          peft's LoraConfig fields
//      adapter_model.safetensors    base_model.model.<module>.lora_A.weight / .lora_B.weight
//                                   (.lora_magnitude_vector for DoRA) and the modules_to_save
//                                   tensors as base_model.model.<module>.<param>
//    Names are transformers 5's module names by default (what peft 0.21 writes under transformers
//    5, and the only form it loads for renamed architectures such as ViT); keyStyle 'checkpoint'
//    writes the checkpoint's names (what transformers 4.x stacks and hub adapters use). Both, and
//    any mix, are read. A LoRA on some slices of a fused qkv (loralib's MergedLinear) is written as
//    the equivalent plain LoRA of rank k*r on the whole projection (A stacked, B block-structured
//    with zeros, rank_pattern / alpha_pattern keeping alpha / r), so peft computes the same
//    outputs; medtune_method.json records the slices so medtune reads it back compact.
//  - Other methods: trainable.safetensors with the trained tensors under the checkpoint's names.
//  - Both: medtune_method.json naming the method, its plan and the base model.
// Every file is written atomically (temporary file, then rename).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../io/atomic-write.ts';
import type { Model, ParameterInfo } from '../models/model.ts';
import { loadSafetensors, readSafetensorsHeader, saveSafetensors } from '../io/safetensors.ts';
import { noGrad } from '../torch/autograd.ts';
import { zeros } from '../torch/creation.ts';
import { cat, equal } from '../torch/functional.ts';
import { tidy } from '../torch/scope.ts';
import type { Tensor } from '../torch/tensor.ts';
import { HfNames } from './hf-names.ts';
import {
  ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, AdapterFormatError, patternValue, peftConfigJson, type PeftLoraConfig, readPeftConfig,
} from './peft-config.ts';
import type { QkvSlice } from './lora-targets.ts';

export const METHOD_FILE = 'medtune_method.json';
export const TRAINED_WEIGHTS_NAME = 'trainable.safetensors';
const METHOD_FORMAT = 'medtune.method/1';

export interface AdapterInfo {
  /** The Linear's checkpoint path. */
  path: string;
  dora: boolean;
  r: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  /** Output rows [start, length] for a sliced (MergedLinear) adapter; null for all rows. */
  slices: [number, number][] | null;
  sliceNames: QkvSlice[] | null;
}

export type KeyStyle = 'transformers5' | 'checkpoint';

export function attachAdapters(model: Model, adapters: readonly AdapterInfo[], init: 'kaiming' | 'gaussian' | 'zeros' = 'kaiming'): void {
  for (const a of adapters) {
    model.attachAdapter(a.path, a.dora ? 'dora' : 'lora', {
      r: a.r, alpha: a.alpha, dropout: a.dropout, rslora: a.rslora, init, ...(a.slices ? { slices: a.slices } : {}),
    });
  }
}

// ---- reading ---------------------------------------------------------------------------------------

interface MethodFile {
  format: string;
  method: string;
  base_model: string | null;
  plan?: unknown;
  adapters?: AdapterInfo[];
  modules_to_save?: string[];
  key_style?: KeyStyle;
}

function readMethodFile(dir: string): MethodFile | null {
  const path = join(dir, METHOD_FILE);
  if (!existsSync(path)) return null;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new AdapterFormatError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  const m = v as MethodFile;
  if (typeof v !== 'object' || v === null || m.format !== METHOD_FORMAT || typeof m.method !== 'string') {
    throw new AdapterFormatError(`${path}: not a medtune method file (expected "format": "${METHOD_FORMAT}" and a "method")`);
  }
  return m;
}

/** A PEFT adapter directory read against a model: what to attach, and the tensors (model names). */
export interface AdapterDir {
  dir: string;
  config: PeftLoraConfig;
  adapters: AdapterInfo[];
  modulesToSave: string[];
  /** Model parameter name -> tensor (adapter and modules_to_save parameters). */
  tensors: Map<string, Tensor>;
  dispose(): void;
}

const PREFIXES = ['base_model.model.', 'base_model.'];

export async function readAdapterDir(model: Model, dir: string): Promise<AdapterDir> {
  const config = readPeftConfig(dir);
  const file = join(dir, ADAPTER_WEIGHTS_NAME);
  if (!existsSync(file)) {
    const pickle = existsSync(join(dir, 'adapter_model.bin')) ? ' (it has adapter_model.bin, a pickle: convert it with `medtune convert` or save with safe_serialization)' : '';
    throw new AdapterFormatError(`${file}: no such file${pickle}`);
  }
  const sidecar = readMethodFile(dir);
  const params = model.parameters().filter((p) => p.persistent);
  const names = new HfNames(model, params.map((p) => p.name));
  const byName = new Map(params.map((p) => [p.name, p]));
  const linears = new Set(model.modules().filter((m) => m.type === 'Linear').map((m) => m.path));
  const header = readSafetensorsHeader(file);

  interface Group { key: string; a?: number[]; b?: number[]; m?: number[]; keys: Record<string, string> }
  const groups = new Map<string, Group>();
  const extra = new Map<string, string>(); // file key -> model param name
  for (const t of header.tensors) {
    const prefix = PREFIXES.find((p) => t.name.startsWith(p));
    const name = prefix ? t.name.slice(prefix.length) : t.name;
    const lora = /^(.*)\.(lora_A\.weight|lora_B\.weight|lora_magnitude_vector)$/.exec(name);
    if (lora) {
      const g = groups.get(lora[1]!) ?? { key: lora[1]!, keys: {} };
      const part = lora[2]!;
      if (part === 'lora_A.weight') g.a = t.shape;
      else if (part === 'lora_B.weight') g.b = t.shape;
      else g.m = t.shape;
      g.keys[part] = t.name;
      groups.set(lora[1]!, g);
      continue;
    }
    if (/\.lora_(embedding_)?[AB]\b|\.lora_E\b|\.default\./.test(name)) {
      throw new AdapterFormatError(`${file}: tensor '${t.name}' is not a LoRA-on-Linear weight medtune reads (lora_A.weight, lora_B.weight, lora_magnitude_vector)`);
    }
    const target = names.toCheckpoint(name);
    if (!target || !byName.has(target)) {
      throw new AdapterFormatError(`${file}: tensor '${t.name}' names parameter '${name}', which this ${model.architecture} model does not have`);
    }
    if (byName.get(target)!.shape.join(',') !== t.shape.join(',')) {
      throw new AdapterFormatError(`${file}: '${t.name}' has shape [${t.shape}] but the model's '${target}' is [${byName.get(target)!.shape}]`);
    }
    extra.set(t.name, target);
  }

  const adapters: AdapterInfo[] = [];
  const plan: { info: AdapterInfo; group: Group; expandedRank: number }[] = [];
  for (const g of groups.values()) {
    if (!g.a || !g.b) throw new AdapterFormatError(`${file}: module '${g.key}' has ${g.a ? 'lora_A but no lora_B' : 'lora_B but no lora_A'}`);
    const weight = names.toCheckpoint(`${g.key}.weight`);
    const path = weight?.slice(0, -'.weight'.length);
    if (!path || !linears.has(path)) {
      throw new AdapterFormatError(`${file}: LoRA weights for module '${g.key}', which is not a Linear layer of this ${model.architecture} model`);
    }
    const w = byName.get(`${path}.weight`)!;
    const [out, inF] = w.shape as [number, number];
    const rank = g.a[0]!;
    if (g.a.length !== 2 || g.a[1] !== inF || g.b.length !== 2 || g.b[0] !== out || g.b[1] !== rank) {
      throw new AdapterFormatError(`${file}: '${g.key}': lora_A [${g.a}] and lora_B [${g.b}] do not fit the layer's weight [${w.shape}] (expected [r, ${inF}] and [${out}, r])`);
    }
    const alias = names.moduleToTransformers5(path);
    const alpha = patternValue(config.alphaPattern, g.key) ?? patternValue(config.alphaPattern, alias) ?? config.loraAlpha;
    const dora = Boolean(g.m);
    if (config.useDora && !dora) throw new AdapterFormatError(`${file}: use_dora is set but '${g.key}' has no lora_magnitude_vector`);
    if (g.m && (g.m.length !== 1 || g.m[0] !== out)) throw new AdapterFormatError(`${file}: '${g.key}.lora_magnitude_vector' has shape [${g.m}], expected [${out}]`);
    const recorded = sidecar?.adapters?.find((a) => a.path === path && a.slices);
    if (recorded && recorded.slices && rank === recorded.r * recorded.slices.length && !dora) {
      const info: AdapterInfo = { ...recorded, dropout: config.loraDropout };
      plan.push({ info, group: g, expandedRank: rank });
      adapters.push(info);
    } else {
      const info: AdapterInfo = { path, dora, r: rank, alpha, dropout: config.loraDropout, rslora: config.useRslora, slices: null, sliceNames: null };
      plan.push({ info, group: g, expandedRank: rank });
      adapters.push(info);
    }
  }
  if (adapters.length === 0) throw new AdapterFormatError(`${file}: holds no LoRA weights (no *.lora_A.weight / *.lora_B.weight tensors)`);

  const loaded = await loadSafetensors(file);
  const tensors = new Map<string, Tensor>();
  const dispose = () => {
    for (const t of Object.values(loaded.tensors)) if (!t.isDisposed) t.dispose();
    for (const t of tensors.values()) if (!t.isDisposed) t.dispose();
  };
  try {
    for (const { info, group } of plan) {
      const a = loaded.tensors[group.keys['lora_A.weight']!]!;
      const b = loaded.tensors[group.keys['lora_B.weight']!]!;
      tensors.set(`${info.path}.lora_A.weight`, a);
      tensors.set(`${info.path}.lora_B.weight`, info.slices ? compactB(b, info, file, group.key) : b);
      if (group.keys['lora_magnitude_vector']) tensors.set(`${info.path}.lora_magnitude_vector`, loaded.tensors[group.keys['lora_magnitude_vector']]!);
    }
    for (const [key, target] of extra) tensors.set(target, loaded.tensors[key]!);
  } catch (err) {
    dispose();
    throw err;
  }
  const modulesToSave = [...new Set([...extra.values()].map((n) => n.slice(0, n.lastIndexOf('.'))))];
  return { dir, config, adapters, modulesToSave, tensors, dispose };
}

/** B of a sliced adapter back from its expanded block form; the blocks outside must be zero. */
function compactB(expanded: Tensor, info: AdapterInfo, file: string, key: string): Tensor {
  const r = info.r;
  const compact = tidy(() => cat(info.slices!.map(([start, length], i) => expanded.narrow(0, start, length).narrow(1, i * r, r)), 0));
  const rebuilt = expandB(compact, info, expanded.shape[0]!);
  const same = equal(rebuilt, expanded);
  rebuilt.dispose();
  if (!same) {
    compact.dispose();
    throw new AdapterFormatError(`${file}: '${key}.lora_B.weight' is not the block form of a sliced LoRA (medtune_method.json says slices ${JSON.stringify(info.sliceNames)}); it was changed outside medtune`);
  }
  return compact;
}

/** Copies an adapter directory's tensors into the (attached) adapters and modules of a model. */
export async function loadAdapterTensors(model: Model, dir: AdapterDir): Promise<void> {
  const params = new Map(model.parameters().map((p) => [p.name, p]));
  for (const a of dir.adapters) {
    for (const suffix of ['lora_A.weight', 'lora_B.weight', ...(a.dora ? ['lora_magnitude_vector'] : [])]) {
      const name = `${a.path}.${suffix}`;
      if (!dir.tensors.has(name)) throw new AdapterFormatError(`${join(dir.dir, ADAPTER_WEIGHTS_NAME)}: no tensor for '${name}'`);
    }
  }
  noGrad(() => {
    for (const [name, t] of dir.tensors) {
      const p = params.get(name);
      if (!p) throw new AdapterFormatError(`${join(dir.dir, ADAPTER_WEIGHTS_NAME)}: '${name}' is not a parameter of the model with its adapters attached`);
      if (p.shape.join(',') !== t.shape.join(',')) throw new AdapterFormatError(`${join(dir.dir, ADAPTER_WEIGHTS_NAME)}: '${name}' has shape [${t.shape}], the model's is [${p.shape}]`);
      const target = model.parameter(name);
      try {
        target.copy_(t);
      } finally {
        target.dispose();
      }
    }
  });
}

// ---- writing ---------------------------------------------------------------------------------------

export interface SaveOutputOptions {
  /** Recorded as base_model_name_or_path / base_model (the model directory or hub id). */
  baseModel?: string | null;
  /** Adapter key names: transformers 5's module names (default) or the checkpoint's. */
  keyStyle?: KeyStyle;
}

interface AppliedLike {
  plan: { method: string; lora: { r: number; alpha: number; dropout: number; rslora: boolean; dora: boolean } | null };
  adapters: readonly AdapterInfo[];
  modulesToSave: readonly string[];
  trainable: readonly string[];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * peft's target_modules for exactly these modules: the list of their last names when that list
 * selects nothing else (peft's suffix matching), else a regex over their full names.
 */
export function targetModulesFor(allModules: readonly string[], targeted: readonly string[], excluded: readonly string[]): string[] | string {
  const set = new Set(targeted);
  const isExcluded = (m: string) => excluded.some((e) => new RegExp(`(^|.*\\.)${escapeRegExp(e)}($|\\..*)`).test(m));
  const leaves = [...new Set(targeted.map((t) => t.slice(t.lastIndexOf('.') + 1)))].sort();
  const byLeaves = allModules.filter((m) => !isExcluded(m) && leaves.some((l) => m === l || m.endsWith(`.${l}`)));
  if (byLeaves.length === set.size && byLeaves.every((m) => set.has(m))) return leaves;
  // A compact regex (layer numbers generalised), checked to select exactly the targets.
  const generalised = [...new Set(targeted.map((t) => escapeRegExp(t).replace(/\\\.\d+\\\./g, '\\.\\d+\\.')))];
  const compact = generalised.length === 1 ? generalised[0]! : `(?:${generalised.join('|')})`;
  const re = new RegExp(`^${compact}$`);
  const hits = allModules.filter((m) => re.test(m));
  if (hits.length === set.size && hits.every((m) => set.has(m))) return compact;
  return `(?:${targeted.map(escapeRegExp).join('|')})`;
}

/** Writes a PEFT adapter directory for the adapters (and modules_to_save) of `applied`. */
export async function saveAdapter(model: Model, applied: AppliedLike, dir: string, opts: SaveOutputOptions = {}): Promise<string[]> {
  const lora = applied.plan.lora;
  if (!lora || applied.adapters.length === 0) throw new AdapterFormatError(`saveAdapter(): method '${applied.plan.method}' has no adapters; use saveTrainedOutput()`);
  mkdirSync(dir, { recursive: true });
  const keyStyle = opts.keyStyle ?? 'transformers5';
  const params = model.parameters();
  const persistent = params.filter((p) => p.persistent);
  const names = new HfNames(model, persistent.map((p) => p.name));
  const key = (n: string) => (keyStyle === 'checkpoint' ? n : names.toTransformers5(n));
  const moduleKey = (m: string) => (keyStyle === 'checkpoint' ? m : names.moduleToTransformers5(m));
  const tensors = new Map<string, Tensor>();
  const owned: Tensor[] = [];
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  try {
    for (const a of applied.adapters) {
      const k = `base_model.model.${moduleKey(a.path)}`;
      const A = model.parameter(`${a.path}.lora_A.weight`);
      const B = model.parameter(`${a.path}.lora_B.weight`);
      owned.push(A, B);
      tensors.set(`${k}.lora_A.weight`, A);
      let r = a.r;
      let alpha = a.alpha;
      if (a.slices) {
        const expanded = expandB(B, a, persistent.find((p) => p.name === `${a.path}.weight`)!.shape[0]!);
        owned.push(expanded);
        tensors.set(`${k}.lora_B.weight`, expanded);
        const n = a.slices.length;
        r = a.r * n;
        // keep the scaling alpha / r (rsLoRA: alpha / sqrt(r)) of each slice
        alpha = a.rslora ? a.alpha * Math.sqrt(n) : a.alpha * n;
      } else {
        tensors.set(`${k}.lora_B.weight`, B);
      }
      if (a.dora) {
        const m = model.parameter(`${a.path}.lora_magnitude_vector`);
        owned.push(m);
        tensors.set(`${k}.lora_magnitude_vector`, m);
      }
      const patternKey = escapeRegExp(moduleKey(a.path));
      if (r !== lora.r) rankPattern[patternKey] = r;
      if (alpha !== lora.alpha) alphaPattern[patternKey] = alpha;
    }
    for (const p of persistent) {
      if (!applied.modulesToSave.some((m) => p.name.startsWith(`${m}.`))) continue;
      const t = model.parameter(p.name);
      owned.push(t);
      tensors.set(`base_model.model.${key(p.name)}`, t);
    }
    await saveSafetensors(join(dir, ADAPTER_WEIGHTS_NAME), tensors, { format: 'pt' });
  } finally {
    for (const t of owned) t.dispose();
  }
  const allModules = model.modules().map((m) => moduleKey(m.path)).filter((m) => m !== '');
  const hfLayout = (model.spec as { layout?: string }).layout !== 'timm' && typeof model.config['model_type'] === 'string';
  const modelType = String(model.config['model_type'] ?? '');
  const config = peftConfigJson({
    r: lora.r,
    loraAlpha: lora.alpha,
    loraDropout: lora.dropout,
    useRslora: lora.rslora,
    useDora: lora.dora,
    targetModules: targetModulesFor(allModules, applied.adapters.map((a) => moduleKey(a.path)), applied.modulesToSave.map(moduleKey)),
    modulesToSave: applied.modulesToSave.length ? applied.modulesToSave.map(moduleKey) : null,
    rankPattern,
    alphaPattern,
    baseModel: opts.baseModel ?? null,
    autoMapping: hfLayout ? { base_model_class: model.architecture, parent_library: `transformers.models.${modelType}.modeling_${modelType}` } : null,
  });
  writeFileAtomicSync(join(dir, ADAPTER_CONFIG_NAME), `${JSON.stringify(config, null, 2)}\n`);
  writeMethodFile(dir, model, applied, opts, keyStyle);
  return [ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME];
}

/** The zero-padded block form of a sliced adapter's B: rows of slice i use columns i*r..(i+1)*r. */
function expandB(B: Tensor, a: AdapterInfo, outFeatures: number): Tensor {
  // tidy: the pieces and views made here are freed; only the result survives
  return tidy(() => noGrad(() => {
    const n = a.slices!.length;
    const r = a.r;
    const opts = { dtype: B.dtype, device: B.device };
    const pieces: Tensor[] = [];
    let cursor = 0;
    let row = 0;
    a.slices!.forEach(([start, length], i) => {
      if (start > cursor) pieces.push(zeros([start - cursor, n * r], opts));
      const left = i > 0 ? [zeros([length, i * r], opts)] : [];
      const right = i < n - 1 ? [zeros([length, (n - 1 - i) * r], opts)] : [];
      pieces.push(cat([...left, B.narrow(0, row, length), ...right], 1));
      row += length;
      cursor = start + length;
    });
    if (cursor < outFeatures) pieces.push(zeros([outFeatures - cursor, n * r], opts));
    return cat(pieces, 0).detach();
  }));
}

function writeMethodFile(dir: string, model: Model, applied: AppliedLike, opts: SaveOutputOptions, keyStyle: KeyStyle | null): void {
  const body = {
    format: METHOD_FORMAT,
    method: applied.plan.method,
    base_model: opts.baseModel ?? null,
    architecture: model.architecture,
    model_type: model.config['model_type'] ?? null,
    plan: applied.plan,
    ...(applied.adapters.length ? { adapters: applied.adapters, modules_to_save: applied.modulesToSave, key_style: keyStyle } : { tensors: applied.trainable }),
  };
  writeFileAtomicSync(join(dir, METHOD_FILE), `${JSON.stringify(body, null, 2)}\n`);
}

/** Non-adapter methods: the trained tensors under the checkpoint's names, plus the method file. */
export async function saveTrainedTensors(model: Model, applied: AppliedLike, dir: string, opts: SaveOutputOptions = {}): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const names = applied.trainable;
  if (names.length === 0) throw new AdapterFormatError(`saveTrainedTensors(): method '${applied.plan.method}' trains no parameter`);
  const tensors = new Map(names.map((n) => [n, model.parameter(n)]));
  try {
    await saveSafetensors(join(dir, TRAINED_WEIGHTS_NAME), tensors, { format: 'pt', method: applied.plan.method, ...(opts.baseModel ? { base_model: opts.baseModel } : {}) });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  writeMethodFile(dir, model, applied, opts, null);
  return [TRAINED_WEIGHTS_NAME];
}

/** Loads trainable.safetensors (checkpoint names) into the model's parameters. */
export async function loadTrainedTensors(model: Model, dir: string): Promise<string[]> {
  const file = join(dir, TRAINED_WEIGHTS_NAME);
  if (!existsSync(file)) throw new AdapterFormatError(`${file}: no such file (and no ${ADAPTER_CONFIG_NAME}: not a medtune or PEFT output directory)`);
  const params = new Map<string, ParameterInfo>(model.parameters().map((p) => [p.name, p]));
  const header = readSafetensorsHeader(file);
  for (const t of header.tensors) {
    const p = params.get(t.name);
    if (!p) throw new AdapterFormatError(`${file}: tensor '${t.name}' is not a parameter of this ${model.architecture} model`);
    if (p.shape.join(',') !== t.shape.join(',')) throw new AdapterFormatError(`${file}: '${t.name}' has shape [${t.shape}] but the model's is [${p.shape}]`);
  }
  const { tensors } = await loadSafetensors(file);
  try {
    noGrad(() => {
      for (const [name, t] of Object.entries(tensors)) {
        const target = model.parameter(name);
        try {
          target.copy_(t);
        } finally {
          target.dispose();
        }
      }
    });
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
  return Object.keys(tensors);
}

export { readMethodFile };
