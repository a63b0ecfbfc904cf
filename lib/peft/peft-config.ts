// adapter_config.json as peft writes and reads it (LoRA only). medtune writes the fields peft 0.21
// writes for a LoRA adapter and reads the ones that change what the adapter computes; settings it
// cannot reproduce (bias training, layers_to_transform, fan_in_fan_out ...) are refused with an
// Error naming the field rather than silently ignored.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ADAPTER_CONFIG_NAME = 'adapter_config.json';
export const ADAPTER_WEIGHTS_NAME = 'adapter_model.safetensors';

export class AdapterFormatError extends Error {
  override name = 'AdapterFormatError';
  readonly code = 'MEDTUNE_BAD_ADAPTER';
}

export interface PeftLoraConfig {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  useRslora: boolean;
  useDora: boolean;
  /** A list (peft's suffix matching) or a regex string (re.fullmatch), or null. */
  targetModules: string[] | string | null;
  modulesToSave: string[] | null;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  baseModel: string | null;
  initLoraWeights: unknown;
}

function fail(path: string, msg: string): never {
  throw new AdapterFormatError(`${path}: ${msg}`);
}

export function readPeftConfig(dir: string): PeftLoraConfig {
  const path = join(dir, ADAPTER_CONFIG_NAME);
  if (!existsSync(path)) fail(path, `no such file (a PEFT adapter directory holds ${ADAPTER_CONFIG_NAME} and ${ADAPTER_WEIGHTS_NAME})`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    fail(path, `not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(path, 'expected a JSON object');
  const c = raw as Record<string, unknown>;
  const peftType = c['peft_type'];
  if (peftType !== 'LORA') fail(path, `peft_type is ${JSON.stringify(peftType)}; medtune reads LoRA (and DoRA) adapters, peft_type "LORA"`);
  const num = (key: string, fallback: number): number => {
    const v = c[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(path, `"${key}" must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  const bool = (key: string): boolean => {
    const v = c[key];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean') fail(path, `"${key}" must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const refuse = (key: string, ok: (v: unknown) => boolean, why: string) => {
    const v = c[key];
    if (v !== undefined && v !== null && !ok(v)) fail(path, `"${key}": ${JSON.stringify(v)} is not supported (${why})`);
  };
  refuse('bias', (v) => v === 'none', 'medtune trains no base biases inside LoRA adapters; use bias "none"');
  refuse('lora_bias', (v) => v === false, 'LoRA-B biases');
  refuse('fan_in_fan_out', (v) => v === false, 'Conv1D (GPT-2 style) layers');
  refuse('layers_to_transform', (v) => Array.isArray(v) && v.length === 0, 'select layers with a target_modules regex instead');
  refuse('target_parameters', (v) => Array.isArray(v) && v.length === 0, 'LoRA on bare parameters');
  refuse('trainable_token_indices', () => false, 'trainable tokens');
  refuse('layer_replication', () => false, 'layer replication');
  refuse('exclude_modules', (v) => Array.isArray(v) && v.length === 0, 'exclude_modules');
  const patterns = (key: string): Record<string, number> => {
    const v = c[key];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'number')) fail(path, `"${key}" must map module patterns to numbers`);
    return v as Record<string, number>;
  };
  const tm = c['target_modules'];
  let targetModules: string[] | string | null = null;
  if (typeof tm === 'string') targetModules = tm;
  else if (Array.isArray(tm) && tm.every((t) => typeof t === 'string')) targetModules = tm as string[];
  else if (tm !== undefined && tm !== null) fail(path, `"target_modules" must be a list of names or a regex string`);
  const mts = c['modules_to_save'];
  if (mts !== undefined && mts !== null && !(Array.isArray(mts) && mts.every((t) => typeof t === 'string'))) fail(path, `"modules_to_save" must be a list of module names`);
  const r = num('r', 8);
  if (!Number.isInteger(r) || r <= 0) fail(path, `"r" must be a positive integer, got ${r}`);
  return {
    r,
    loraAlpha: num('lora_alpha', 8),
    loraDropout: num('lora_dropout', 0),
    useRslora: bool('use_rslora'),
    useDora: bool('use_dora'),
    targetModules,
    modulesToSave: (mts as string[] | null | undefined) ?? null,
    rankPattern: patterns('rank_pattern'),
    alphaPattern: patterns('alpha_pattern'),
    baseModel: typeof c['base_model_name_or_path'] === 'string' ? (c['base_model_name_or_path'] as string) : null,
    initLoraWeights: c['init_lora_weights'],
  };
}

/** peft's get_pattern_key: the first pattern key that matches the end of the module name. */
export function patternValue(patterns: Record<string, number>, moduleName: string): number | undefined {
  for (const [key, value] of Object.entries(patterns)) {
    let re: RegExp;
    try {
      re = new RegExp(`^(.*\\.)?(${key})$`, 's');
    } catch {
      continue;
    }
    if (re.test(moduleName)) return value;
  }
  return undefined;
}

export interface PeftConfigFields {
  r: number;
  loraAlpha: number;
  loraDropout: number;
  useRslora: boolean;
  useDora: boolean;
  targetModules: string[] | string;
  modulesToSave: string[] | null;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
  baseModel: string | null;
  autoMapping: { base_model_class: string; parent_library: string } | null;
}

/** The adapter_config.json object, with the fields and defaults peft 0.21 writes for LoRA. */
export function peftConfigJson(f: PeftConfigFields): Record<string, unknown> {
  return {
    alpha_pattern: f.alphaPattern,
    auto_mapping: f.autoMapping,
    base_model_name_or_path: f.baseModel,
    bias: 'none',
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: f.loraAlpha,
    lora_bias: false,
    lora_dropout: f.loraDropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: f.modulesToSave,
    peft_type: 'LORA',
    r: f.r,
    rank_pattern: f.rankPattern,
    revision: null,
    target_modules: f.targetModules,
    target_parameters: null,
    task_type: null,
    trainable_token_indices: null,
    use_dora: f.useDora,
    use_rslora: f.useRslora,
  };
}
