// The models part of the native addon's function table (csrc/io, csrc/modules, csrc/models).
import type { DType } from '../torch/dtype.ts';
import type { ObjectHandle, TensorHandle } from '../torch/native-types.ts';
import type { SafetensorsAddon } from '../io/native-types.ts';

export type ModelHandle = ObjectHandle<'Model'>;

/** What masks select on: the kind of module a parameter belongs to. */
export type ModuleKind =
  | 'norm' | 'attention' | 'mlp' | 'embedding' | 'head' | 'projector' | 'patch_embedding' | 'position_embedding' | 'adapter' | 'other';
/**
 * Which part of the model a parameter belongs to. 'language' is a text encoder or a decoder-only
 * LM; 'decoder' the text decoder of an encoder-decoder model (BLIP's text_decoder).
 */
export type ModelPart = 'vision' | 'language' | 'projector' | 'head' | 'decoder';


export interface NativeParameterInfo {
  name: string;
  shape: number[];
  dtype: DType;
  device: string;
  kind: ModuleKind;
  part: ModelPart;
  module: string;
  requiresGrad: boolean;
  persistent: boolean;
}

export interface NativeModuleInfo {
  path: string;
  type: string;
  kind: ModuleKind;
  part: ModelPart;
}

export interface NativeBuildOptions {
  dtype?: DType;
  device?: string;
  seed?: number;
  initStd?: number;
  mmap?: boolean;
}

export interface NativeGenerateOptions {
  maxNewTokens: number;
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  eosTokenIds: number[];
  padTokenId: number;
  seed: number | null;
}

export interface NativeDecodeOptions {
  numBeams: number;
  maxLength: number;
  minLength: number;
  lengthPenalty: number;
  earlyStopping: boolean | 'never';
  repetitionPenalty: number;
  eosTokenIds: number[];
  padTokenId: number;
}

export interface ModelsAddon extends SafetensorsAddon {
  disposeHandle(h: ObjectHandle<string>): void;

  modelFamilies(): string[];
  adapterKinds(): string[];
  modelCreateAsync(spec: object, options: NativeBuildOptions): Promise<ModelHandle>;
  modelLoadAsync(spec: object, sources: ({ path: string; prefix: string } | { path: string; prefix: string; names: string[]; tensors: TensorHandle[] })[], options: NativeBuildOptions):
    Promise<{ model: ModelHandle; unexpected: string[]; initialized: string[]; adapted: string[] }>;
  modelParameters(model: ModelHandle): NativeParameterInfo[];
  modelModules(model: ModelHandle): NativeModuleInfo[];
  modelParameter(model: ModelHandle, name: string): TensorHandle;
  modelSetRequiresGrad(model: ModelHandle, names: string[] | null, flag: boolean): number;
  modelForwardAsync(model: ModelHandle, batch: Record<string, TensorHandle>, options?: { outputHiddenStates?: boolean; grad?: boolean; logits?: boolean }): Promise<Record<string, TensorHandle>>;
  modelSetMemoryOptions(model: ModelHandle, options: { gradientCheckpointing?: boolean; lossChunkTokens?: number }): { checkpointedLayers: number; lossChunkTokens: number | null };
  modelGenerateAsync(model: ModelHandle, batch: Record<string, TensorHandle>, options: NativeGenerateOptions): Promise<{ sequences: TensorHandle; tokens: TensorHandle }>;
  modelDecodeAsync(model: ModelHandle, batch: Record<string, TensorHandle>, options: NativeDecodeOptions): Promise<{ sequences: TensorHandle; scores: TensorHandle | null }>;
  modelSetTraining(model: ModelHandle, flag: boolean): void;
  modelTraining(model: ModelHandle): boolean;
  modelAttachAdapter(model: ModelHandle, path: string, kind: string, options?: object): void;
  modelDetachAdapter(model: ModelHandle, path: string): boolean;
  modelMergeAdapter(model: ModelHandle, path: string, merge: boolean): void;
  modelSaveAsync(model: ModelHandle, dir: string, maxShardBytes: number, dtype?: DType | null, metadata?: Record<string, string> | null):
    Promise<{ file: string; names: string[]; bytes: number }[]>;
}
