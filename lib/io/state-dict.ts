// Finding the weights inside an unpickled checkpoint without being told where: a bare state
// dict, one nested under the keys training scripts use ({model, optimizer, epoch, args},
// {state_dict}, DINO's {teacher, student}, EMA copies ...), or a whole pickled nn.Module whose
// _parameters/_buffers/_modules are flattened the way state_dict() names them. DDP's "module."
// and torch.compile's "_orig_mod." prefixes are removed when every key carries them.
import { PyCall, PyDict, PySet, shortDescription, type PyValue } from './pickle-values.ts';
import { TensorRef } from './torch-pickle.ts';

/** Keys that hold model weights, best first: the plain model before EMA copies, teacher before student. */
const PREFERRED_KEYS = [
  'state_dict', 'model_state_dict', 'model_state', 'model', 'module', 'net', 'network', 'params', 'weights',
  'teacher', 'student', 'ema', 'model_ema', 'state_dict_ema', 'ema_state_dict', 'ema_model',
];

/** Training state that holds tensors but never model weights. */
const NOT_WEIGHTS = /^(optimizer|optimizers|optim|optimizer_state_dict|optimizer_state|lr_scheduler|scheduler|scaler|grad_scaler|amp)$/i;

const DEFAULT_PREFIXES = ['module.', '_orig_mod.'];

export interface StateDictCandidate {
  /** Dot path from the root ('' is the root itself). */
  path: string;
  kind: 'dict' | 'module-object';
  tensors: number;
}

export interface FoundStateDict {
  path: string;
  kind: 'dict' | 'module-object';
  how: 'root' | 'explicit' | 'preferred-key' | 'most-tensors';
  /** Entries in checkpoint order, keys as stored (before prefix stripping). */
  entries: [string, PyValue][];
  candidates: StateDictCandidate[];
}

/** A pickled nn.Module (torch.save(model)): its __dict__ holds _parameters, _buffers and _modules. */
function moduleState(v: PyValue): PyDict | null {
  if (!(v instanceof PyCall) || !(v.state instanceof PyDict)) return null;
  const s = v.state;
  return s.get('_parameters') instanceof PyDict && s.get('_modules') instanceof PyDict ? s : null;
}

/** The state_dict() of a pickled nn.Module, recursively. */
function flattenModule(state: PyDict, prefix: string, out: [string, PyValue][], seen: Set<object>): void {
  if (seen.has(state)) return;
  seen.add(state);
  const params = state.get('_parameters') as PyDict;
  for (const [k, v] of params.entries()) if (typeof k === 'string' && v !== null) out.push([`${prefix}${k}`, v]);
  const buffers = state.get('_buffers');
  const nonPersistent = state.get('_non_persistent_buffers_set');
  const skip = new Set(nonPersistent instanceof PySet ? nonPersistent.items : []);
  if (buffers instanceof PyDict)
    for (const [k, v] of buffers.entries()) if (typeof k === 'string' && v !== null && !skip.has(k)) out.push([`${prefix}${k}`, v]);
  for (const [k, child] of (state.get('_modules') as PyDict).entries()) {
    const childState = moduleState(child);
    if (typeof k === 'string' && childState) flattenModule(childState, `${prefix}${k}.`, out, seen);
  }
}

function dictEntries(d: PyDict): [string, PyValue][] {
  const out: [string, PyValue][] = [];
  for (const [k, v] of d.entries()) if (typeof k === 'string') out.push([k, v]);
  return out;
}

function asStateDict(v: PyValue): { kind: 'dict' | 'module-object'; entries: [string, PyValue][] } | null {
  if (v instanceof PyDict) {
    const entries = dictEntries(v);
    return entries.some(([, x]) => x instanceof TensorRef) ? { kind: 'dict', entries } : null;
  }
  const state = moduleState(v);
  if (!state) return null;
  const entries: [string, PyValue][] = [];
  flattenModule(state, '', entries, new Set());
  return entries.some(([, x]) => x instanceof TensorRef) ? { kind: 'module-object', entries } : null;
}

function countTensors(entries: [string, PyValue][]): number {
  return entries.reduce((n, [, v]) => n + (v instanceof TensorRef ? 1 : 0), 0);
}

/** Every dict (or module object) that holds tensors, reached through string keys. */
export function stateDictCandidates(root: PyValue, maxDepth = 6): StateDictCandidate[] {
  const out: StateDictCandidate[] = [];
  const seen = new Set<object>();
  const visit = (v: PyValue, path: string[], depth: number): void => {
    if (typeof v !== 'object' || v === null || seen.has(v) || depth > maxDepth) return;
    seen.add(v);
    const sd = asStateDict(v);
    if (sd) {
      out.push({ path: path.join('.'), kind: sd.kind, tensors: countTensors(sd.entries) });
      return;
    }
    // Only string keys lead to weights: optimizer state is keyed by parameter index.
    if (v instanceof PyDict) for (const [k, x] of v.entries()) if (typeof k === 'string' && !NOT_WEIGHTS.test(k)) visit(x, [...path, k], depth + 1);
  };
  visit(root, [], 0);
  return out;
}

function rank(path: string): number {
  const segments = path.split('.');
  for (const s of segments) {
    const i = PREFERRED_KEYS.indexOf(s.toLowerCase());
    if (i >= 0) return i;
  }
  return PREFERRED_KEYS.length;
}

/** Follows a dot path through dict keys (a key may itself contain dots). */
function resolvePath(root: PyValue, path: string): PyValue | undefined {
  if (path === '') return root;
  if (!(root instanceof PyDict)) return undefined;
  if (root.has(path)) return root.get(path);
  const parts = path.split('.');
  for (let i = parts.length - 1; i >= 1; i--) {
    const head = parts.slice(0, i).join('.');
    if (root.has(head)) {
      const found = resolvePath(root.get(head)!, parts.slice(i).join('.'));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

export class StateDictNotFound extends Error {}

/**
 * Locates the state dict. With `key`, exactly there; otherwise the root when it holds tensors,
 * else the best of the candidates (preferred key names first, then the most tensors).
 */
export function findStateDict(root: PyValue, key?: string): FoundStateDict {
  const candidates = stateDictCandidates(root);
  if (key !== undefined) {
    const target = resolvePath(root, key);
    if (target === undefined) throw new StateDictNotFound(`no entry '${key}' in the checkpoint${describeTop(root)}`);
    const sd = asStateDict(target);
    if (!sd) throw new StateDictNotFound(`entry '${key}' is ${shortDescription(target)}, not a state dict with tensors${describeTop(root)}`);
    return { path: key, ...sd, how: 'explicit', candidates };
  }
  if (candidates.length === 0) throw new StateDictNotFound(`no tensors found in any dict of the checkpoint${describeTop(root)}`);
  const rootCandidate = candidates.find((c) => c.path === '');
  const best = rootCandidate ?? [...candidates].sort((a, b) => rank(a.path) - rank(b.path) || b.tensors - a.tensors)[0]!;
  const how = rootCandidate ? 'root' : rank(best.path) < PREFERRED_KEYS.length ? 'preferred-key' : 'most-tensors';
  const sd = asStateDict(best.path === '' ? root : resolvePath(root, best.path)!)!;
  return { path: best.path, ...sd, how, candidates };
}

function describeTop(root: PyValue): string {
  if (!(root instanceof PyDict)) return ` (its top level is ${shortDescription(root)})`;
  const keys = root.keys().slice(0, 12).map((k) => (typeof k === 'string' ? k : shortDescription(k)));
  return ` (top-level keys: ${keys.join(', ')}${root.size > 12 ? ', ...' : ''})`;
}

/**
 * Removes wrapper prefixes shared by every key ('module.' from DDP/DataParallel, '_orig_mod.'
 * from torch.compile), repeatedly. Returns the new names and what was removed.
 */
export function stripCommonPrefixes(names: string[], prefixes: string[] = DEFAULT_PREFIXES): { names: string[]; stripped: string } {
  let stripped = '';
  let current = names;
  for (;;) {
    const p = prefixes.find((prefix) => current.length > 0 && current.every((n) => n.startsWith(prefix) && n.length > prefix.length));
    if (!p) return { names: current, stripped };
    stripped += p;
    current = current.map((n) => n.slice(p.length));
  }
}
