// Safe, weights-only loading of torch.save files (.pth / .pt / .bin / .ckpt): the pickle runs in a
// restricted machine (nothing is imported or executed), the state dict is found wherever the
// training script put it, and each storage is read once into one native tensor that all the
// tensors viewing it share (views, offsets, non-contiguous strides and tied weights load exactly
// as PyTorch saved them). The report says what was loaded, what was left and why.
import type { DType } from '../torch/dtype.ts';
import { tensor } from '../torch/creation.ts';
import type { Tensor } from '../torch/tensor.ts';
import { detectLayout, type DetectedLayout } from './checkpoint-layout.ts';
import { CheckpointError } from './errors.ts';
import { childrenOf, PyCall, PyDict, PyGlobal, shortDescription, summarize, type PyValue, type Summary } from './pickle-values.ts';
import { findStateDict, StateDictNotFound, stripCommonPrefixes, type StateDictCandidate } from './state-dict.ts';
import { openTorchArchive, type TorchArchive } from './torch-archive.ts';
import { TensorRef, type StorageRef } from './torch-pickle.ts';

export interface TorchLoadOptions {
  /**
   * Where the state dict is, as a dot path ('model', 'state_dict', 'teacher'; '' for the root).
   * Found automatically when omitted.
   */
  stateDictKey?: string;
  /** Remove 'module.' (DDP) / '_orig_mod.' (torch.compile) when every key has it (default true). */
  stripPrefixes?: boolean;
  /** Check each storage's CRC-32 in zip checkpoints (default true). */
  verifyChecksums?: boolean;
}

export interface TensorReportEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Only for tensors that are not a plain contiguous view from offset 0 of their own storage. */
  view?: { storage: string; offset: number; stride: number[] };
}

export interface TorchCheckpointReport {
  file: string;
  format: 'zip' | 'legacy';
  byteOrder: 'little' | 'big';
  pickleProtocol: number;
  /** Container records: zip archive name, serialization version, storage alignment. */
  details: Record<string, string>;
  stateDict: {
    /** Dot path of the state dict in the checkpoint ('' = the root). */
    path: string;
    kind: 'dict' | 'module-object';
    how: 'root' | 'explicit' | 'preferred-key' | 'most-tensors';
    /** Every place that held tensors, for choosing another one with `stateDictKey`. */
    candidates: StateDictCandidate[];
  };
  /** Removed from every key ('module.' for DDP), or '' when nothing was. */
  strippedPrefix: string;
  tensors: TensorReportEntry[];
  /** Elements and bytes of the loaded tensors (shared storage counted once in bytes). */
  numel: number;
  bytes: number;
  dtypes: Record<string, number>;
  /** Groups of loaded tensors that view one storage (tied or sliced weights). */
  sharedStorages: { storage: string; tensors: string[] }[];
  /** State dict entries not loaded as weights, and why. */
  skipped: { name: string; reason: string; value: Summary }[];
  /** What the checkpoint holds besides the state dict (epoch, optimizer, args ...). */
  other: { path: string; description: string; value: Summary }[];
  /**
   * Globals outside the allowlist: kept as inert placeholders, never constructed or called.
   * `paths` says where they sit in the checkpoint.
   */
  placeholders: { name: string; count: number; paths: string[] }[];
  /** A recognised key layout (timm ViT and others), for config.json generation. */
  layout: DetectedLayout | null;
}

export interface TorchCheckpoint {
  /** The weights, by (prefix-stripped) name, in checkpoint order. */
  tensors: Map<string, Tensor>;
  report: TorchCheckpointReport;
}

interface Plan {
  archive: TorchArchive;
  report: TorchCheckpointReport;
  load: [string, TensorRef, DType][];
}

function isContiguousView(t: TensorRef): boolean {
  let expected = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i]! !== 1 && t.stride[i] !== expected) return false;
    expected *= t.shape[i]!;
  }
  return t.storageOffset === 0 && t.numel * t.element.itemSize === t.storage.nbytes;
}

/** Paths (at most a few per global) where placeholders sit in the object tree. */
function placeholderPaths(root: PyValue, names: Set<string>, perName = 5, maxNodes = 1_000_000): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const seen = new Set<object>();
  const stack: [PyValue, string][] = [[root, '']];
  let nodes = 0;
  while (stack.length && nodes++ < maxNodes) {
    const [v, path] = stack.pop()!;
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    const g = v instanceof PyGlobal ? v : v instanceof PyCall ? v.root : null;
    if (g && names.has(g.qualifiedName)) {
      const list = out.get(g.qualifiedName) ?? [];
      if (list.length < perName) list.push(path || '<root>');
      out.set(g.qualifiedName, list);
    }
    const children = childrenOf(v);
    for (let i = children.length - 1; i >= 0; i--) {
      const [k, x] = children[i]!;
      stack.push([x, path ? `${path}.${k}` : k]);
    }
  }
  return out;
}

function countTensorRefs(v: PyValue, limit = 1_000_000): number {
  let n = 0;
  let nodes = 0;
  const seen = new Set<object>();
  const stack: PyValue[] = [v];
  while (stack.length && nodes++ < limit) {
    const x = stack.pop()!;
    if (typeof x !== 'object' || x === null || seen.has(x)) continue;
    seen.add(x);
    if (x instanceof TensorRef) n++;
    else for (const [, c] of childrenOf(x)) stack.push(c);
  }
  return n;
}

async function plan(file: string, opts: TorchLoadOptions): Promise<Plan> {
  const archive = await openTorchArchive(file, { verifyChecksums: opts.verifyChecksums ?? true });
  try {
    let found;
    try {
      found = findStateDict(archive.root, opts.stateDictKey);
    } catch (err) {
      if (err instanceof StateDictNotFound) throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_NO_WEIGHTS', err.message);
      throw err;
    }
    const { names, stripped } = opts.stripPrefixes === false
      ? { names: found.entries.map(([n]) => n), stripped: '' }
      : stripCommonPrefixes(found.entries.map(([n]) => n));

    const load: [string, TensorRef, DType][] = [];
    const skipped: TorchCheckpointReport['skipped'] = [];
    const tensors: TensorReportEntry[] = [];
    const byStorage = new Map<StorageRef, string[]>();
    const dtypes: Record<string, number> = {};
    let numel = 0;
    found.entries.forEach(([, value], i) => {
      const name = names[i]!;
      if (!(value instanceof TensorRef)) {
        skipped.push({ name, reason: `not a tensor: ${shortDescription(value)}`, value: summarize(value, { depth: 2 }) });
        return;
      }
      const dtype = value.element.dtype;
      if (!dtype) {
        skipped.push({ name, reason: `dtype ${value.element.torchName} is not supported`, value: value.describe() });
        return;
      }
      load.push([name, value, dtype]);
      const entry: TensorReportEntry = { name, dtype, shape: value.shape };
      if (!isContiguousView(value)) entry.view = { storage: value.storage.key, offset: value.storageOffset, stride: value.stride };
      tensors.push(entry);
      byStorage.set(value.storage, [...(byStorage.get(value.storage) ?? []), name]);
      dtypes[dtype] = (dtypes[dtype] ?? 0) + 1;
      numel += value.numel;
    });

    const other: TorchCheckpointReport['other'] = [];
    const top = found.path.split('.')[0];
    if (found.path !== '' && archive.root instanceof PyDict) {
      for (const [k, v] of archive.root.entries()) {
        if (k === top) continue;
        const tensorsInside = countTensorRefs(v);
        const description = shortDescription(v) + (tensorsInside ? `, holding ${tensorsInside} tensors (not loaded)` : '');
        other.push({ path: typeof k === 'string' ? k : JSON.stringify(summarize(k)), description, value: summarize(v, { depth: 3, entries: 30, nodes: 200 }) });
      }
    }

    const placeholderNames = new Set(archive.placeholders.map((p) => p.name));
    const paths = placeholderNames.size ? placeholderPaths(archive.root, placeholderNames) : new Map<string, string[]>();
    const report: TorchCheckpointReport = {
      file,
      format: archive.format,
      byteOrder: archive.byteOrder,
      pickleProtocol: archive.pickleProtocol,
      details: archive.details,
      stateDict: { path: found.path, kind: found.kind, how: found.how, candidates: found.candidates },
      strippedPrefix: stripped,
      tensors,
      numel,
      bytes: [...byStorage.keys()].reduce((n, s) => n + s.nbytes, 0),
      dtypes,
      sharedStorages: [...byStorage].filter(([, ns]) => ns.length > 1).map(([s, ns]) => ({ storage: s.key, tensors: ns })),
      skipped,
      other,
      placeholders: archive.placeholders.map((p) => ({ name: p.name, count: p.count, paths: paths.get(p.name) ?? [] })),
      layout: detectLayout(tensors),
    };
    return { archive, report, load };
  } catch (err) {
    await archive.close();
    throw err;
  }
}

/**
 * Reads what a checkpoint holds without loading tensor data: the report of loadTorchCheckpoint.
 */
export async function inspectTorchCheckpoint(file: string, opts: TorchLoadOptions = {}): Promise<TorchCheckpointReport> {
  const { archive, report } = await plan(file, opts);
  await archive.close();
  return report;
}

/**
 * Loads the weights of a torch.save checkpoint safely. Tensors are CPU tensors with the saved
 * dtype, shape, strides and storage sharing; they belong to the caller (or the enclosing tidy()).
 */
export async function loadTorchCheckpoint(file: string, opts: TorchLoadOptions = {}): Promise<TorchCheckpoint> {
  const { archive, report, load } = await plan(file, opts);
  const out = new Map<string, Tensor>();
  try {
    // Group the views by storage; read each storage once, in file order.
    const groups = new Map<StorageRef, [string, TensorRef, DType][]>();
    for (const item of load) groups.set(item[1].storage, [...(groups.get(item[1].storage) ?? []), item]);
    for (const [storage, views] of groups) {
      const dtype = views[0]![2];
      const conflicting = views.find((v) => v[2] !== dtype);
      if (conflicting) {
        throw new CheckpointError(file, 'MEDTUNE_CHECKPOINT_CORRUPT',
          `tensors ${views[0]![0]} (${dtype}) and ${conflicting[0]} (${conflicting[2]}) view storage ${storage.key} as different dtypes`);
      }
      const bytes = await archive.readStorage(storage, views[0]![1].element.itemSize);
      const raw = tensor(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), { shape: [bytes.length] });
      const typed = dtype === 'uint8' ? raw : raw.viewAs(dtype);
      try {
        for (const [name, ref] of views) out.set(name, typed.asStrided(ref.shape, ref.stride, ref.storageOffset));
      } finally {
        if (typed !== raw) typed.dispose();
        raw.dispose();
      }
    }
  } catch (err) {
    for (const t of out.values()) t.dispose();
    throw err instanceof CheckpointError ? err : new CheckpointError(file, 'MEDTUNE_CHECKPOINT_CORRUPT', (err as Error).message, { cause: err });
  } finally {
    await archive.close();
  }
  // Checkpoint order, not storage order.
  const ordered = new Map<string, Tensor>();
  for (const [name] of load) ordered.set(name, out.get(name)!);
  return { tensors: ordered, report };
}
