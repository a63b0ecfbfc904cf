// Which Linear layers get LoRA adapters. A target is written as peft writes target_modules
// entries, plus two extensions:
//   q_proj, query, v_proj ...   a module name or the end of its path ("self_attn.q_proj"), matched
//                               as peft does (path == t or path ends with "." + t), on the
//                               checkpoint's names and on transformers 5's
//   *.attention.*  re:...       a glob or regex on the whole module path (all Linears below a match)
//   qkv[q,v]                    only the q and v thirds of a fused q|k|v projection (timm's
//                               attn.qkv), each with its own rank-r pair, as loralib's MergedLinear
import type { ModuleInfo } from '../models/model.ts';
import type { HfNames } from './hf-names.ts';
import { compilePattern, type NamePattern, PatternError, splitList } from './patterns.ts';

export type QkvSlice = 'q' | 'k' | 'v';

export interface TargetSpec {
  /** As written ("qkv[q,v]"). */
  source: string;
  /** The module part ("qkv"). */
  module: string;
  /** Fused-qkv thirds to adapt, or null for all output rows. */
  slices: QkvSlice[] | null;
}

export interface ResolvedTarget {
  /** The Linear's checkpoint path (its weight is `${path}.weight`). */
  path: string;
  /** Output rows [start, length] the adapter produces; null for all. */
  slices: [number, number][] | null;
  /** Which slices by name (for adapter_config and reports). */
  sliceNames: QkvSlice[] | null;
  /** The target spec that selected it. */
  target: string;
}

export class LoraTargetError extends Error {
  override name = 'LoraTargetError';
  readonly code = 'MEDTUNE_BAD_TARGET';
}

const SLICE_ORDER: QkvSlice[] = ['q', 'k', 'v'];

export function parseTargets(targets: string | readonly string[]): TargetSpec[] {
  const list = typeof targets === 'string' ? splitList(targets) : targets.flatMap((t) => splitList(t));
  if (list.length === 0) throw new LoraTargetError('no LoRA targets given (e.g. q_proj,v_proj or query,value or qkv[q,v])');
  return list.map(parseTarget);
}

export function parseTarget(text: string): TargetSpec {
  const m = /^(.*?)\[([^\]]*)\]$/.exec(text.trim());
  if (!m) return { source: text.trim(), module: text.trim(), slices: null };
  const names = m[2]!.split(',').map((s) => s.trim().toLowerCase());
  if (names.length === 0 || names.some((n) => !SLICE_ORDER.includes(n as QkvSlice))) {
    throw new LoraTargetError(`LoRA target '${text}': the slices of a fused qkv are written [q], [q,v], [q,k,v] ...`);
  }
  if (new Set(names).size !== names.length) throw new LoraTargetError(`LoRA target '${text}' names a slice twice`);
  const slices = SLICE_ORDER.filter((s) => names.includes(s));
  return { source: text.trim(), module: m[1]!.trim(), slices };
}

function hasWildcards(s: string): boolean {
  return s.startsWith('re:') || /[*?[]/.test(s);
}

function moduleMatcher(spec: TargetSpec): (path: string) => boolean {
  if (hasWildcards(spec.module)) {
    let pattern: NamePattern;
    try {
      pattern = compilePattern(spec.module);
    } catch (err) {
      if (err instanceof PatternError) throw new LoraTargetError(`LoRA target '${spec.source}': ${err.message}`);
      throw err;
    }
    return (path) => pattern.matches(path);
  }
  return (path) => path === spec.module || path.endsWith(`.${spec.module}`);
}

export interface ResolveTargetsOptions {
  /** Only Linears whose weight is in this set (the scope). */
  inScope: (weightName: string) => boolean;
  /** Module paths trained whole (modules_to_save): never adapted, as peft excludes them. */
  excluded?: readonly string[];
  /** Each target must match at least one Linear (user-given targets); else only the whole list. */
  strict: boolean;
  outFeatures: (path: string) => number;
}

/** The Linear layers the targets select, in module order. */
export function resolveTargets(modules: readonly ModuleInfo[], names: HfNames, specs: readonly TargetSpec[], opts: ResolveTargetsOptions): ResolvedTarget[] {
  const matchers = specs.map((s) => ({ spec: s, match: moduleMatcher(s) }));
  const used = new Set<string>();
  const out: ResolvedTarget[] = [];
  const excluded = opts.excluded ?? [];
  for (const m of modules) {
    if (m.type !== 'Linear') continue;
    if (!opts.inScope(`${m.path}.weight`)) continue;
    if (excluded.some((e) => m.path === e || m.path.startsWith(`${e}.`))) continue;
    const alias = names.moduleToTransformers5(m.path);
    const hits = matchers.filter(({ match }) => match(m.path) || (alias !== m.path && match(alias)));
    if (hits.length === 0) continue;
    const sliceSets = new Set(hits.map((h) => JSON.stringify(h.spec.slices)));
    if (sliceSets.size > 1) {
      throw new LoraTargetError(`LoRA targets ${hits.map((h) => `'${h.spec.source}'`).join(' and ')} both select '${m.path}' with different slices`);
    }
    const spec = hits[0]!.spec;
    for (const h of hits) used.add(h.spec.source);
    let slices: [number, number][] | null = null;
    if (spec.slices) {
      const rows = opts.outFeatures(m.path);
      if (rows % 3 !== 0) throw new LoraTargetError(`LoRA target '${spec.source}': '${m.path}' has ${rows} output features, not a fused q|k|v projection`);
      const third = rows / 3;
      slices = spec.slices.map((s) => [SLICE_ORDER.indexOf(s) * third, third]);
      if (spec.slices.length === 3) slices = null; // all rows: a plain LoRA
    }
    out.push({ path: m.path, slices, sliceNames: slices ? spec.slices : null, target: spec.source });
  }
  if (opts.strict) {
    const unused = specs.filter((s) => !used.has(s.source));
    if (unused.length) {
      throw new LoraTargetError(`LoRA target${unused.length > 1 ? 's' : ''} ${unused.map((s) => `'${s.source}'`).join(', ')} match${unused.length > 1 ? '' : 'es'} no Linear layer in scope ` +
        `(Linear layers look like: ${exampleLinears(modules)})`);
    }
  }
  if (out.length === 0) {
    throw new LoraTargetError(`LoRA targets ${specs.map((s) => `'${s.source}'`).join(', ')} match no Linear layer in scope (Linear layers look like: ${exampleLinears(modules)})`);
  }
  return out;
}

function exampleLinears(modules: readonly ModuleInfo[]): string {
  const leaves = new Set<string>();
  for (const m of modules) if (m.type === 'Linear') leaves.add(m.path.replace(/\.\d+\./g, '.N.'));
  return [...leaves].slice(0, 8).join(', ');
}
