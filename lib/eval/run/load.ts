// The model an evaluation runs: a checkpoint (directory or weights file) plus, optionally, what
// `medtune train` wrote (a PEFT LoRA / DoRA adapter directory, or trainable.safetensors of the
// other methods; an output directory or one of its checkpoint-<step> folders), loaded as
// PeftModel.from_pretrained would: frozen, in eval mode, adapters active (not merged).
import { existsSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { loadModel, type ModelDType } from '../../models/load.ts';
import type { Model } from '../../models/model.ts';
import { readMethodFile } from '../../peft/adapter-io.ts';
import type { AppliedMethod } from '../../peft/method.ts';
import { loadAdapter } from '../../peft/outputs.ts';
import { AdapterFormatError } from '../../peft/peft-config.ts';
import type { Device } from '../../torch/device.ts';

export interface EvalModelOptions {
  /** A model directory, or a weights file (.pth / .pt / .bin / .ckpt / .safetensors) with `arch`. */
  model: string;
  /** The architecture of a weights file: a preset name or a config.json (see lib/models/presets.ts). */
  arch?: string | null;
  /** A classifier with this many labels (a backbone whose head the adapter holds). */
  numLabels?: number | null;
  /** A medtune training output or a PEFT adapter directory. */
  adapter?: string | null;
  dtype?: ModelDType;
  device?: Device;
}

export interface EvalModel {
  model: Model;
  /** What the adapter loaded (null without one). */
  adapter: AppliedMethod | null;
  /** One line for logs: 'LlavaForConditionalGeneration + lora adapter (8 LoRA layers)'. */
  description: string;
}

/** Thrown when an adapter was trained on another base model than the one given. */
export class AdapterMismatchError extends Error {
  override name = 'AdapterMismatchError';
  readonly code = 'MEDTUNE_ADAPTER_MISMATCH';
}

function describeAdapter(a: AppliedMethod): string {
  if (a.adapters.length) return `${a.plan.method} adapter (${a.adapters.length} LoRA${a.adapters.some((x) => x.dora) ? '/DoRA' : ''} layers${a.modulesToSave.length ? `, ${a.modulesToSave.join(', ')}` : ''})`;
  return `${a.plan.method} weights (${a.trainable.length} trained tensors)`;
}

/** Names covered by the adapter: its trained tensors and the modules it saved whole. */
function coveredBy(a: AppliedMethod | null, name: string): boolean {
  if (!a) return false;
  return a.trainable.includes(name) || a.modulesToSave.some((m) => name === m || name.startsWith(`${m}.`));
}

export async function loadEvalModel(opts: EvalModelOptions): Promise<EvalModel> {
  if (!existsSync(opts.model)) throw new Error(`${opts.model}: no such model directory or file`);
  if (opts.adapter) {
    if (!existsSync(opts.adapter)) throw new Error(`${opts.adapter}: no such adapter directory`);
    if (!statSync(opts.adapter).isDirectory()) throw new Error(`${opts.adapter}: an adapter is a directory (adapter_config.json + adapter_model.safetensors, or trainable.safetensors + medtune_method.json)`);
  }
  const model = await loadModel(opts.model, {
    dtype: opts.dtype ?? 'fp32', device: opts.device ?? 'cpu',
    ...(opts.arch ? { config: opts.arch } : {}), ...(opts.numLabels ? { numLabels: opts.numLabels } : {}),
  });
  try {
    let adapter: AppliedMethod | null = null;
    if (opts.adapter) {
      // medtune records the architecture it trained on; a different one is a clear mistake.
      const method = readMethodFile(opts.adapter) as (ReturnType<typeof readMethodFile> & { architecture?: string; model_type?: string | null }) | null;
      if (method?.architecture && method.architecture !== model.architecture) {
        const base = method.base_model ? ` (${method.base_model})` : '';
        throw new AdapterMismatchError(`${opts.adapter}: trained on a ${method.architecture} model${base}, but --model ${opts.model} is a ${model.architecture}; pass the base model it was trained on`);
      }
      try {
        adapter = await loadAdapter(model, opts.adapter);
      } catch (err) {
        // Names or shapes that do not fit: the adapter belongs to another base model.
        if (err instanceof AdapterFormatError && /does not have|not a parameter|not a Linear|do not fit|has shape|is not the block form/.test(err.message)) {
          throw new AdapterMismatchError(`${opts.adapter} does not fit --model ${opts.model} (${model.architecture}); it was trained on a different base model: ${err.message}`);
        }
        throw err;
      }
    }
    // A head the checkpoint lacks is random unless the adapter brings it: scores would mean nothing.
    const fresh = model.loadReport.initialized.filter((n) => !coveredBy(adapter, n));
    if (fresh.length) {
      throw new Error(`${opts.model}: ${fresh.slice(0, 4).join(', ')}${fresh.length > 4 ? ` and ${fresh.length - 4} more` : ''} are not in the checkpoint ` +
        `(initialised at random)${opts.adapter ? ` nor in ${opts.adapter}` : ''}; evaluate the model with the --adapter that trained them`);
    }
    model.eval();
    const what = statSync(opts.model).isDirectory() ? basename(opts.model) : `${basename(dirname(opts.model))}/${basename(opts.model)}`;
    return { model, adapter, description: `${model.architecture} (${what})${adapter ? ` + ${describeAdapter(adapter)}` : ''}` };
  } catch (err) {
    model.dispose();
    throw err;
  }
}
