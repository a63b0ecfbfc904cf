// Finding a checkpoint's weight files: model.safetensors, or the shards that
// model.safetensors.index.json names (each checked to exist and to hold the tensors the index
// assigns to it), and the key names they hold, which decide the checkpoint layout.
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ModelConfigError, readConfigFile } from './config.ts';
import { readSafetensorsHeader, type SafetensorsHeader } from '../io/safetensors.ts';

export const WEIGHTS_NAME = 'model.safetensors';
export const WEIGHTS_INDEX_NAME = 'model.safetensors.index.json';

/** The tensor names of a checkpoint with their shapes, and where each lives. */
export class CheckpointKeys {
  readonly shapes = new Map<string, number[]>();
  readonly fileOf = new Map<string, string>();

  static fromHeaders(headers: SafetensorsHeader[]): CheckpointKeys {
    const keys = new CheckpointKeys();
    for (const h of headers) for (const t of h.tensors) keys.add(t.name, t.shape, h.path);
    return keys;
  }

  add(name: string, shape: number[], file: string): void {
    this.shapes.set(name, shape);
    this.fileOf.set(name, file);
  }
  has(name: string): boolean {
    return this.shapes.has(name);
  }
  hasPrefix(prefix: string): boolean {
    for (const k of this.shapes.keys()) if (k.startsWith(prefix)) return true;
    return false;
  }
  shape(name: string): number[] | undefined {
    return this.shapes.get(name);
  }
  /** The first of `prefixes` that some key starts with. */
  firstPrefix(prefixes: readonly string[]): string | undefined {
    return prefixes.find((p) => this.hasPrefix(p));
  }
  get size(): number {
    return this.shapes.size;
  }
}

export interface CheckpointFiles {
  dir: string;
  /** Weight files in load order. */
  files: string[];
  /** The index file when the checkpoint is sharded. */
  index: string | null;
  headers: SafetensorsHeader[];
  keys: CheckpointKeys;
}

/** Locates and validates the safetensors weights of a Hugging Face model directory. */
export function findCheckpointFiles(dir: string): CheckpointFiles {
  if (!existsSync(dir)) throw new ModelConfigError(`${dir}: no such model directory`);
  const indexPath = join(dir, WEIGHTS_INDEX_NAME);
  if (existsSync(indexPath)) return fromIndex(dir, indexPath);
  const single = join(dir, WEIGHTS_NAME);
  if (existsSync(single)) {
    const headers = [readSafetensorsHeader(single)];
    return { dir, files: [single], index: null, headers, keys: CheckpointKeys.fromHeaders(headers) };
  }
  const names = readdirSync(dir);
  const safetensors = names.filter((n) => n.endsWith('.safetensors')).sort();
  if (safetensors.length === 1) {
    const file = join(dir, safetensors[0]!);
    const headers = [readSafetensorsHeader(file)];
    return { dir, files: [file], index: null, headers, keys: CheckpointKeys.fromHeaders(headers) };
  }
  const pickles = names.filter((n) => /\.(bin|pth|pt|ckpt)$/.test(n));
  const hint = pickles.length
    ? ` It has PyTorch pickle weights (${pickles.slice(0, 3).join(', ')}); medtune reads safetensors (convert them first).`
    : '';
  if (safetensors.length > 1) {
    throw new ModelConfigError(`${dir}: several .safetensors files (${safetensors.join(', ')}) but no ${WEIGHTS_INDEX_NAME} saying which tensors each holds`);
  }
  throw new ModelConfigError(`${dir}: no ${WEIGHTS_NAME} or ${WEIGHTS_INDEX_NAME}.${hint}`);
}

function fromIndex(dir: string, indexPath: string): CheckpointFiles {
  const index = readConfigFile(indexPath);
  const weightMap = index['weight_map'];
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new ModelConfigError(`${indexPath}: "weight_map" must be an object mapping tensor names to shard files`);
  }
  const byShard = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard.length === 0 || basename(shard) !== shard) {
      throw new ModelConfigError(`${indexPath}: weight_map["${tensor}"] must be a file name in the same directory, got ${JSON.stringify(shard)}`);
    }
    const list = byShard.get(shard) ?? [];
    list.push(tensor);
    byShard.set(shard, list);
  }
  if (byShard.size === 0) throw new ModelConfigError(`${indexPath}: "weight_map" is empty`);
  const files: string[] = [];
  const headers: SafetensorsHeader[] = [];
  for (const [shard, tensors] of byShard) {
    const path = join(dir, shard);
    if (!existsSync(path)) {
      const others = tensors.length > 1 ? ` and ${tensors.length - 1} other tensor(s)` : '';
      throw new ModelConfigError(`${indexPath}: shard ${shard} (holding '${tensors[0]}'${others}) is missing: ${path} does not exist`);
    }
    const header = readSafetensorsHeader(path);
    const present = new Set(header.tensors.map((t) => t.name));
    const absent = tensors.filter((t) => !present.has(t));
    if (absent.length) {
      throw new ModelConfigError(`${path}: the index assigns tensor '${absent[0]}'${absent.length > 1 ? ` (and ${absent.length - 1} more)` : ''} to this shard but it is not in the file`);
    }
    files.push(path);
    headers.push(header);
  }
  return { dir, files, index: indexPath, headers, keys: CheckpointKeys.fromHeaders(headers) };
}
