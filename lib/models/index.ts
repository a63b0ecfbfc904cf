// medtune's model layer: checkpoints (safetensors, HF config.json, sharded indexes), the native
// model families (ViT, CLIP vision, LLaMA/Mistral, LLaVA) and their TypeScript handle.
export { loadSafetensors, saveSafetensors, readSafetensorsHeader, type SafetensorsHeader, type SafetensorsTensorInfo, type LoadSafetensorsOptions } from '../io/safetensors.ts';
export { loadModel, createModel, normalizeDType, withNumLabels, type LoadOptions, type ModelOptions, type ModelDType } from './load.ts';
export { Model, type ParameterInfo, type ModuleInfo, type LoadReport, type SaveOptions, type SavedCheckpoint, type Batch, type ForwardOptions, type MemoryOptions, type GenerateOptions, type GenerateOutput } from './model.ts';
export { ModelConfigError, readConfigFile, type ConfigObject } from './config.ts';
export { findCheckpointFiles, CheckpointKeys, WEIGHTS_NAME, WEIGHTS_INDEX_NAME, type CheckpointFiles } from './checkpoint.ts';
export { resolveModel, supportedModelTypes, type ModelSpec, type ResolvedModel } from './families/index.ts';
export type { VitSpec } from './families/vit.ts';
export type { LlamaSpec, RopeSpec } from './families/llama.ts';
export type { ClipVisionSpec } from './families/clip.ts';
export type { LlavaSpec, ProjectorSpec } from './families/llava.ts';
export type { BlipSpec, BlipDecoderLoss } from './families/blip.ts';
export { decode, type DecodeOptions, type DecodeOutput } from './decode.ts';
export { PRESETS, mergeConfig, type Preset } from './presets.ts';
export type { ModuleKind, ModelPart } from './native-types.ts';
