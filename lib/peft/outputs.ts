// Saving what a method trained, loading it back onto a base model, and merging adapters.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../models/model.ts';
import {
  attachAdapters, loadAdapterTensors, loadTrainedTensors, readAdapterDir, readMethodFile, saveAdapter, saveTrainedTensors,
  type SaveOutputOptions,
} from './adapter-io.ts';
import { type AppliedMethod, type MethodPlan, MethodError, resolveMethod, wholeModules } from './method.ts';
import { ADAPTER_CONFIG_NAME, AdapterFormatError } from './peft-config.ts';

/** Writes the trained result: a PEFT adapter for LoRA/DoRA, trainable.safetensors otherwise. */
export async function saveTrainedOutput(model: Model, applied: AppliedMethod, dir: string, opts: SaveOutputOptions = {}): Promise<string[]> {
  if (applied.adapters.length > 0) return saveAdapter(model, applied, dir, opts);
  return saveTrainedTensors(model, applied, dir, opts);
}

/**
 * Loads a trained output onto a freshly loaded base model: a PEFT adapter directory (ours or
 * peft's, transformers 4.x or 5.x names) gets its adapters attached and filled, and its
 * modules_to_save copied into the model; a medtune output of another method has its tensors
 * copied in. Every parameter is left frozen, as PeftModel.from_pretrained leaves them (to train
 * on from an adapter, use applyMethod with lora.initAdapter).
 */
export async function loadAdapter(model: Model, dir: string): Promise<AppliedMethod> {
  if (!existsSync(dir)) throw new AdapterFormatError(`${dir}: no such adapter directory`);
  if (model.parameters().some((p) => !p.persistent)) throw new MethodError('loadAdapter(): the model already has adapters attached');
  const method = readMethodFile(dir);
  if (existsSync(join(dir, ADAPTER_CONFIG_NAME))) {
    const d = await readAdapterDir(model, dir);
    try {
      attachAdapters(model, d.adapters, 'zeros');
      await loadAdapterTensors(model, d);
    } finally {
      d.dispose();
    }
    const c = d.config;
    const plan: MethodPlan = (method?.plan as MethodPlan | undefined) ?? {
      ...resolveMethod({ method: 'lora' }),
      lora: {
        r: c.r, alpha: c.loraAlpha, dropout: c.loraDropout, rslora: c.useRslora, dora: c.useDora,
        targets: c.targetModules === null ? [] : typeof c.targetModules === 'string' ? [`re:${c.targetModules}`] : c.targetModules,
        userTargets: true, init: 'kaiming', initAdapter: dir, rankPattern: c.rankPattern, alphaPattern: c.alphaPattern,
      },
      trainExtra: c.modulesToSave ?? [],
    };
    model.setRequiresGrad('all', false);
    const params = model.parameters();
    const mts = new Set(params.filter((p) => p.persistent && d.modulesToSave.some((m) => p.name.startsWith(`${m}.`))).map((p) => p.name));
    return { plan, adapters: d.adapters, modulesToSave: wholeModules(params, mts), trainable: [], warnings: [] };
  }
  const names = await loadTrainedTensors(model, dir);
  model.setRequiresGrad('all', false);
  const plan = (method?.plan as MethodPlan | undefined) ?? resolveMethod({ method: 'full' });
  return { plan, adapters: [], modulesToSave: [], trainable: names, warnings: [] };
}

/**
 * Restores saved weights into a model the same method was applied to (resuming a run): adapter
 * and modules_to_save tensors, or the trained tensors. requires_grad flags stay as they are.
 */
export async function restoreTrainedOutput(model: Model, applied: AppliedMethod, dir: string): Promise<void> {
  if (applied.adapters.length === 0) {
    await loadTrainedTensors(model, dir);
    return;
  }
  const d = await readAdapterDir(model, dir);
  try {
    const want = applied.adapters.map((a) => `${a.path}:${a.r}:${JSON.stringify(a.slices)}:${a.dora}`).sort();
    const have = d.adapters.map((a) => `${a.path}:${a.r}:${JSON.stringify(a.slices)}:${a.dora}`).sort();
    if (want.join('|') !== have.join('|')) {
      throw new AdapterFormatError(`${dir}: its adapters (${have.length}) are not the ones this run attached (${want.length}); it was written by a different method or settings`);
    }
    await loadAdapterTensors(model, d);
  } finally {
    d.dispose();
  }
}

/** Folds every adapter of `applied` into its base weight (forward unchanged, adapters inactive). */
export function mergeAdapters(model: Model, applied: Pick<AppliedMethod, 'adapters'>): void {
  for (const a of applied.adapters) model.mergeAdapter(a.path);
}

export function unmergeAdapters(model: Model, applied: Pick<AppliedMethod, 'adapters'>): void {
  for (const a of applied.adapters) model.unmergeAdapter(a.path);
}
