// medtune's PEFT layer: parameter masks (selectors over names, kinds and parts), method presets
// (ln, ffn, attn, bitfit, full, lora) as data, LoRA / DoRA adapters on the native Linear hook,
// PEFT-compatible adapter files, the trainable-parameter report, and merging.
//
//   const plan = resolveMethod({ method: 'lora', scope: 'all', trainExtra: 'classifier', lora: { r: 8, alpha: 16 } });
//   const applied = await applyMethod(model, plan);
//   console.log(trainableReport(model, applied).text);
//   ... train ...
//   await saveTrainedOutput(model, applied, 'out/adapter', { baseModel: 'path/to/base' });
export { Mask, select, SelectorBuilder, SelectorError, selectionContext, toSelector, type Selector, type SelectionContext } from './selector.ts';
export { compilePattern, globToRegExp, splitList, PatternError, type NamePattern } from './patterns.ts';
export {
  definePreset, defineScope, getPreset, getScope, presetNames, scopeNames, DEFAULT_LORA_TARGETS,
  type MethodPreset, type ScopeDefinition, type AdapterPreset,
} from './presets.ts';
export { parseTargets, parseTarget, resolveTargets, LoraTargetError, type TargetSpec, type ResolvedTarget, type QkvSlice } from './lora-targets.ts';
export {
  resolveMethod, applyMethod, wholeModules, MethodError,
  type MethodSpec, type MethodPlan, type LoraSpec, type LoraPlan, type AppliedMethod,
} from './method.ts';
export { trainableReport, peftLine, type TrainableReport, type ReportGroup } from './report.ts';
export {
  attachAdapters, readAdapterDir, saveAdapter, saveTrainedTensors, loadTrainedTensors, targetModulesFor,
  METHOD_FILE, TRAINED_WEIGHTS_NAME, type AdapterInfo, type KeyStyle, type SaveOutputOptions,
} from './adapter-io.ts';
export { saveTrainedOutput, loadAdapter, restoreTrainedOutput, mergeAdapters, unmergeAdapters } from './outputs.ts';
export { readPeftConfig, AdapterFormatError, ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME, type PeftLoraConfig } from './peft-config.ts';
export { HfNames, renameRules } from './hf-names.ts';
