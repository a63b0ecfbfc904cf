// From a method spec (what the CLI flags or a script say) to a resolved plan, and from a plan to a
// model that trains exactly that: requires_grad set by the preset's mask within the scope, plus
// --train-extra, plus LoRA adapters attached to the target Linears (optionally started from an
// existing PEFT adapter). The trainer only reads the requires_grad flags afterwards.
import type { Model, ParameterInfo } from '../models/model.ts';
import { attachAdapters, readAdapterDir, loadAdapterTensors, type AdapterInfo } from './adapter-io.ts';
import { HfNames } from './hf-names.ts';
import { type PeftLoraConfig, patternValue, readPeftConfig } from './peft-config.ts';
import { getPreset, getScope, presetNames, scopeNames } from './presets.ts';
import { parseTargets, resolveTargets } from './lora-targets.ts';
import { compilePattern, splitList } from './patterns.ts';
import { Mask, type Selector, selectionContext } from './selector.ts';

export class MethodError extends Error {
  override name = 'MethodError';
  readonly code = 'MEDTUNE_BAD_METHOD';
}

export interface LoraSpec {
  r?: number;
  alpha?: number;
  dropout?: number;
  /** Target Linear layers: 'q_proj,v_proj', 'query,value', 'qkv[q,v]', globs, 're:' regexes. */
  targets?: string | readonly string[];
  rslora?: boolean;
  dora?: boolean;
  /** A's initialisation: 'kaiming' (peft's default, init_lora_weights=True) or 'gaussian'. */
  init?: 'kaiming' | 'gaussian';
  /** Start from this PEFT adapter directory (its config fixes r, alpha, targets ...). */
  initAdapter?: string | null;
}

/** What a user asks for: the CLI's --method/--scope/--train-extra/--lora-* flags, as an object. */
export interface MethodSpec {
  method: string;
  scope?: string;
  /** Parameter globs / 're:' regexes trained in addition (a classifier head, the projector). */
  trainExtra?: string | readonly string[];
  lora?: LoraSpec;
}

export interface LoraPlan {
  r: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  dora: boolean;
  targets: string[];
  /** The targets were given by the user (each must match), not the preset's defaults. */
  userTargets: boolean;
  init: 'kaiming' | 'gaussian';
  initAdapter: string | null;
  rankPattern: Record<string, number>;
  alphaPattern: Record<string, number>;
}

/** A resolved method: plain data, recorded with the outputs (medtune_method.json). */
export interface MethodPlan {
  method: string;
  description: string;
  scope: string;
  scopeSelector: Selector;
  /** Base parameters trained: the preset's selector within the scope. */
  train: Selector;
  trainExtra: string[];
  lora: LoraPlan | null;
}

export interface AppliedMethod {
  plan: MethodPlan;
  /** LoRA / DoRA adapters attached, in module order. */
  adapters: AdapterInfo[];
  /** Modules trained whole next to adapters (peft's modules_to_save), as checkpoint paths. */
  modulesToSave: string[];
  /** Names of the trainable parameters. */
  trainable: string[];
  /** Things the user should know (a fresh head left frozen ...). */
  warnings: string[];
}

// peft's LoraConfig defaults.
const LORA_DEFAULTS = { r: 8, alpha: 8, dropout: 0 };

function list(v: string | readonly string[] | undefined): string[] {
  if (v === undefined) return [];
  return typeof v === 'string' ? splitList(v) : v.flatMap((s) => splitList(s));
}

/** Checks a spec and fills in defaults (and the settings of --init-adapter). */
export function resolveMethod(spec: MethodSpec): MethodPlan {
  if (!spec || typeof spec.method !== 'string') throw new MethodError(`a method spec needs a method name (${presetNames().join(', ')})`);
  const preset = getPreset(spec.method);
  if (!preset) throw new MethodError(`unknown method '${spec.method}' (known: ${presetNames().join(', ')}; define more with definePreset())`);
  const scopeName = spec.scope ?? 'all';
  const scope = getScope(scopeName);
  if (!scope) throw new MethodError(`unknown scope '${scopeName}' (known: ${scopeNames().join(', ')})`);
  const trainExtra = list(spec.trainExtra);
  for (const p of trainExtra) {
    try {
      compilePattern(p);
    } catch (err) {
      throw new MethodError(`--train-extra: ${(err as Error).message}`);
    }
  }
  const train: Selector = scopeName === 'all' ? preset.train : { all: [preset.train, scope.selector] };
  const base = { method: preset.name, description: preset.description, scope: scopeName, scopeSelector: scope.selector, train, trainExtra };
  const l = spec.lora ?? {};
  const given = Object.entries(l).filter(([, v]) => v !== undefined && v !== null).map(([k]) => k);
  if (!preset.adapter) {
    if (given.length) throw new MethodError(`LoRA settings (${given.join(', ')}) apply to adapter methods (lora), not to --method ${preset.name}`);
    return { ...base, lora: null };
  }
  let fromFile: PeftLoraConfig | null = null;
  if (l.initAdapter) fromFile = readPeftConfig(l.initAdapter);
  const pick = <T>(key: keyof LoraSpec, explicit: T | undefined, file: T | undefined, fallback: T): T => {
    if (explicit !== undefined && file !== undefined && explicit !== file) {
      throw new MethodError(`--init-adapter ${l.initAdapter} was trained with ${key} ${String(file)}, but ${String(explicit)} was asked for; leave it out to continue that adapter`);
    }
    return explicit ?? file ?? fallback;
  };
  const r = pick('r', l.r, fromFile?.r, LORA_DEFAULTS.r);
  if (!Number.isInteger(r) || r <= 0) throw new MethodError(`LoRA rank r must be a positive integer, got ${r}`);
  const alpha = pick('alpha', l.alpha, fromFile?.loraAlpha, LORA_DEFAULTS.alpha);
  if (!Number.isFinite(alpha) || alpha <= 0) throw new MethodError(`LoRA alpha must be a positive number, got ${alpha}`);
  const dropout = pick('dropout', l.dropout, fromFile?.loraDropout, LORA_DEFAULTS.dropout);
  if (!(dropout >= 0 && dropout < 1)) throw new MethodError(`LoRA dropout must be in [0, 1), got ${dropout}`);
  const rslora = pick('rslora', l.rslora, fromFile?.useRslora, false);
  const dora = pick('dora', l.dora, fromFile?.useDora, false);
  let targets: string[];
  let userTargets = true;
  if (fromFile) {
    if (l.targets !== undefined) throw new MethodError(`--lora-targets cannot be combined with --init-adapter: the adapter's own target_modules decide which layers it adapts`);
    const tm = fromFile.targetModules;
    targets = tm === null ? [] : typeof tm === 'string' ? [`re:${tm}`] : tm;
    if (scopeName !== 'all') throw new MethodError(`--scope cannot be combined with --init-adapter: the adapter's own target_modules decide which layers it adapts`);
    // the adapter's modules_to_save keep training, with whatever --train-extra adds
    for (const m of fromFile.modulesToSave ?? []) if (!trainExtra.includes(m)) trainExtra.push(m);
  } else if (l.targets !== undefined) {
    targets = list(l.targets);
    parseTargets(targets);
  } else {
    targets = [...preset.adapter.targets];
    userTargets = false;
  }
  const init = l.init ?? 'kaiming';
  if (init !== 'kaiming' && init !== 'gaussian') throw new MethodError(`LoRA init must be 'kaiming' or 'gaussian', got '${String(init)}'`);
  return {
    ...base,
    trainExtra,
    lora: {
      r, alpha, dropout, rslora, dora, targets, userTargets, init,
      initAdapter: l.initAdapter ?? null,
      rankPattern: fromFile?.rankPattern ?? {},
      alphaPattern: fromFile?.alphaPattern ?? {},
    },
  };
}

/** Parameters directly owned by the module at `path` (its own weight, bias ...). */
function ownParams(params: readonly ParameterInfo[], path: string): ParameterInfo[] {
  return params.filter((p) => p.persistent && p.name.startsWith(`${path}.`) && !p.name.slice(path.length + 1).includes('.'));
}

/**
 * The modules (as few and as high as possible) whose parameters are exactly `names`: what peft's
 * modules_to_save can express. A selection that splits a module is an Error naming it.
 */
export function wholeModules(params: readonly ParameterInfo[], names: ReadonlySet<string>): string[] {
  const persistent = params.filter((p) => p.persistent);
  const chosen: string[] = [];
  const covered = new Set<string>();
  const candidates = new Set<string>();
  for (const n of names) {
    const parts = n.split('.');
    for (let i = 1; i < parts.length; i++) candidates.add(parts.slice(0, i).join('.'));
  }
  for (const prefix of [...candidates].sort((a, b) => a.split('.').length - b.split('.').length || (a < b ? -1 : 1))) {
    if ([...covered].some((c) => prefix.startsWith(`${c}.`))) continue;
    const under = persistent.filter((p) => p.name.startsWith(`${prefix}.`));
    if (under.length > 0 && under.every((p) => names.has(p.name))) {
      chosen.push(prefix);
      covered.add(prefix);
    }
  }
  const left = [...names].filter((n) => !chosen.some((c) => n.startsWith(`${c}.`)));
  if (left.length) {
    const module = left[0]!.slice(0, left[0]!.lastIndexOf('.'));
    const rest = ownParams(params, module).map((p) => p.name).filter((n) => !names.has(n));
    throw new MethodError(`--train-extra selects '${left[0]}' but not ${rest.map((n) => `'${n}'`).join(', ') || 'the rest of its module'}; ` +
      `next to LoRA, extra-trained parameters are saved as peft's modules_to_save, which trains whole modules (select all of '${module}')`);
  }
  return chosen;
}

/**
 * Applies a plan to a model: freezes everything, attaches the adapters, and makes the method's
 * parameters trainable. Returns what was done (for the report, saving and merging).
 */
export async function applyMethod(model: Model, planOrSpec: MethodPlan | MethodSpec): Promise<AppliedMethod> {
  const plan = 'scopeSelector' in planOrSpec ? planOrSpec : resolveMethod(planOrSpec);
  if (model.parameters().some((p) => !p.persistent)) {
    throw new MethodError('applyMethod(): the model already has adapters attached; apply a method to a freshly loaded model');
  }
  const ctx = selectionContext(model);
  const scopeMask = Mask.select(ctx, plan.scopeSelector);
  if (scopeMask.size === 0) {
    throw new MethodError(`scope '${plan.scope}' selects no parameter of this ${model.architecture} model (its parts: ${[...new Set(ctx.params.map((p) => p.part))].join(', ')})`);
  }
  const baseMask = Mask.select(ctx, plan.train);
  if (!plan.lora && baseMask.size === 0) {
    throw new MethodError(`method '${plan.method}' with scope '${plan.scope}' selects no parameter of this ${model.architecture} model`);
  }
  let extra = new Mask([]);
  for (const pattern of plan.trainExtra) {
    const m = Mask.select(ctx, { name: pattern });
    if (m.size === 0) throw new MethodError(`--train-extra '${pattern}' matches no parameter (names look like: ${ctx.params.slice(-4).map((p) => p.name).join(', ')})`);
    extra = extra.union(m);
  }

  let adapters: AdapterInfo[] = [];
  let modulesToSave: string[] = [];
  if (plan.lora) {
    modulesToSave = wholeModules(ctx.params, extra.names);
    if (plan.lora.initAdapter) {
      const dir = await readAdapterDir(model, plan.lora.initAdapter);
      try {
        adapters = dir.adapters;
        attachAdapters(model, adapters, plan.lora.init);
        // modules_to_save tensors in the file are loaded too; extra modules it lacks start from the base
        await loadAdapterTensors(model, dir);
      } finally {
        dir.dispose();
      }
    } else {
      adapters = planAdapters(model, plan, ctx.params, scopeMask, modulesToSave);
      attachAdapters(model, adapters, plan.lora.init);
    }
  }
  const after = model.parameters();
  const adapterNames = after.filter((p) => !p.persistent).map((p) => p.name);
  const trainable = baseMask.union(extra).union(new Mask(adapterNames));
  trainable.apply(model);

  const warnings: string[] = [];
  const frozenFresh = model.loadReport.initialized.filter((n) => !trainable.has(n));
  if (frozenFresh.length) {
    warnings.push(`${frozenFresh.join(', ')} ${frozenFresh.length > 1 ? 'were' : 'was'} freshly initialised (not in the checkpoint) but stay${frozenFresh.length > 1 ? '' : 's'} frozen; ` +
      `train ${frozenFresh.length > 1 ? 'them' : 'it'} with --train-extra '${commonModule(frozenFresh)}'`);
  }
  return { plan, adapters, modulesToSave, trainable: after.filter((p) => trainable.has(p.name)).map((p) => p.name), warnings };
}

function commonModule(names: string[]): string {
  const mods = [...new Set(names.map((n) => n.slice(0, n.lastIndexOf('.'))))];
  return mods.join(',');
}

function planAdapters(model: Model, plan: MethodPlan, params: readonly ParameterInfo[], scope: Mask, modulesToSave: string[]): AdapterInfo[] {
  const lora = plan.lora!;
  const names = new HfNames(model, params.map((p) => p.name));
  const shapes = new Map(params.map((p) => [p.name, p.shape]));
  const targets = resolveTargets(model.modules(), names, parseTargets(lora.targets), {
    inScope: (w) => scope.has(w),
    excluded: modulesToSave,
    strict: lora.userTargets,
    outFeatures: (path) => shapes.get(`${path}.weight`)![0]!,
  });
  return targets.map((t) => {
    const alias = names.moduleToTransformers5(t.path);
    const r = patternValue(lora.rankPattern, alias) ?? patternValue(lora.rankPattern, t.path) ?? lora.r;
    const alpha = patternValue(lora.alphaPattern, alias) ?? patternValue(lora.alphaPattern, t.path) ?? lora.alpha;
    return { path: t.path, dora: lora.dora, r, alpha, dropout: lora.dropout, rslora: lora.rslora, slices: t.slices, sliceNames: t.sliceNames };
  });
}
