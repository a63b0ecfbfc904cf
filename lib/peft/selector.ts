// Selectors: which parameters a mask holds, as plain data (JSON-serialisable, so method presets
// are data and a resolved method can be written next to its outputs). A selector is evaluated
// against a model's parameters() (checkpoint names, module kind, part, module type) and gives a
// Mask; masks combine with union / minus / intersect.
import type { ModelPart, ModuleKind } from '../models/native-types.ts';
import type { Model, ParameterInfo } from '../models/model.ts';
import { HfNames } from './hf-names.ts';
import { compilePattern, type NamePattern, PatternError } from './patterns.ts';

type OneOrMany<T> = T | readonly T[];

export type Selector =
  | 'all'
  | 'none'
  /** Globs or `re:` regexes on parameter names (checkpoint names, or transformers-5 names). */
  | { name: OneOrMany<string> }
  | { kind: OneOrMany<ModuleKind> }
  | { part: OneOrMany<ModelPart> }
  /** The native module type owning the parameter: 'LayerNorm', 'RMSNorm', 'Linear', 'Embedding' ... */
  | { module: OneOrMany<string> }
  /** The parameter's own name, the last component: 'weight', 'bias', 'gamma' ... */
  | { leaf: OneOrMany<string> }
  /** Adapter parameters (LoRA's lora_A / lora_B ...) or base-model parameters. */
  | { adapter: boolean }
  | { any: readonly Selector[] }
  | { all: readonly Selector[] }
  | { minus: readonly [Selector, Selector] };

export class SelectorError extends Error {
  override name = 'SelectorError';
  readonly code = 'MEDTUNE_BAD_SELECTOR';
}

const many = <T>(v: OneOrMany<T>): readonly T[] => (Array.isArray(v) ? (v as readonly T[]) : [v as T]);

/** What a selector is evaluated on: the parameters, and their transformers-5 names. */
export interface SelectionContext {
  params: readonly ParameterInfo[];
  names: HfNames;
}

export function selectionContext(model: Model, params: readonly ParameterInfo[] = model.parameters()): SelectionContext {
  return { params, names: new HfNames(model, params.map((p) => p.name)) };
}

function compileNames(patterns: readonly string[]): NamePattern[] {
  return patterns.map((p) => compilePattern(p));
}

function predicate(sel: Selector, ctx: SelectionContext): (p: ParameterInfo) => boolean {
  if (sel === 'all') return () => true;
  if (sel === 'none') return () => false;
  if (typeof sel !== 'object' || sel === null) throw new SelectorError(`not a selector: ${JSON.stringify(sel)}`);
  const keys = Object.keys(sel);
  if (keys.length !== 1) throw new SelectorError(`a selector has exactly one key (name, kind, part, module, leaf, adapter, any, all, minus), got ${JSON.stringify(sel)}`);
  if ('name' in sel) {
    const patterns = compileNames(many(sel.name));
    return (p) => {
      const alias = ctx.names.toTransformers5(p.name);
      return patterns.some((pat) => pat.matches(p.name) || (alias !== p.name && pat.matches(alias)));
    };
  }
  if ('kind' in sel) {
    const set = new Set<string>(many(sel.kind));
    return (p) => set.has(p.kind);
  }
  if ('part' in sel) {
    const set = new Set<string>(many(sel.part));
    return (p) => set.has(p.part);
  }
  if ('module' in sel) {
    const set = new Set<string>(many(sel.module));
    return (p) => set.has(p.module);
  }
  if ('leaf' in sel) {
    const set = new Set<string>(many(sel.leaf));
    return (p) => set.has(p.name.slice(p.name.lastIndexOf('.') + 1));
  }
  if ('adapter' in sel) return (p) => !p.persistent === sel.adapter;
  if ('any' in sel) {
    const preds = sel.any.map((s) => predicate(s, ctx));
    return (p) => preds.some((f) => f(p));
  }
  if ('all' in sel) {
    const preds = sel.all.map((s) => predicate(s, ctx));
    return (p) => preds.every((f) => f(p));
  }
  if ('minus' in sel) {
    if (!Array.isArray(sel.minus) || sel.minus.length !== 2) throw new SelectorError(`'minus' takes [selector, selector], got ${JSON.stringify(sel.minus)}`);
    const [a, b] = [predicate(sel.minus[0], ctx), predicate(sel.minus[1], ctx)];
    return (p) => a(p) && !b(p);
  }
  throw new SelectorError(`unknown selector key '${keys[0]}' (known: name, kind, part, module, leaf, adapter, any, all, minus)`);
}

/** A set of parameter names of one model. */
export class Mask {
  readonly names: ReadonlySet<string>;

  constructor(names: Iterable<string>) {
    this.names = new Set(names);
  }

  static select(model: Model | SelectionContext, selector: Selector): Mask {
    const ctx = 'params' in model ? model : selectionContext(model);
    const f = predicate(selector, ctx);
    return new Mask(ctx.params.filter(f).map((p) => p.name));
  }

  get size(): number {
    return this.names.size;
  }

  has(name: string): boolean {
    return this.names.has(name);
  }

  union(other: Mask): Mask {
    return new Mask([...this.names, ...other.names]);
  }

  minus(other: Mask): Mask {
    return new Mask([...this.names].filter((n) => !other.has(n)));
  }

  intersect(other: Mask): Mask {
    return new Mask([...this.names].filter((n) => other.has(n)));
  }

  /** Number of elements in the masked parameters. */
  numel(params: readonly ParameterInfo[]): number {
    return params.reduce((a, p) => a + (this.names.has(p.name) ? p.numel : 0), 0);
  }

  /**
   * Sets requires_grad: `exclusive` (default) makes exactly these parameters trainable and freezes
   * every other; otherwise only these are switched to `flag`.
   */
  apply(model: Model, opts: { flag?: boolean; exclusive?: boolean } = {}): void {
    const flag = opts.flag ?? true;
    if (opts.exclusive ?? true) {
      model.setRequiresGrad('all', !flag);
    }
    if (this.names.size > 0) model.setRequiresGrad([...this.names], flag);
  }

  toJSON(): string[] {
    return [...this.names];
  }
}

/** A fluent way to write selectors: select.kind('norm').and(select.part('vision')).minus(...). */
export class SelectorBuilder {
  constructor(readonly selector: Selector) {}
  or(...others: (Selector | SelectorBuilder)[]): SelectorBuilder {
    return new SelectorBuilder({ any: [this.selector, ...others.map(unwrap)] });
  }
  and(...others: (Selector | SelectorBuilder)[]): SelectorBuilder {
    return new SelectorBuilder({ all: [this.selector, ...others.map(unwrap)] });
  }
  minus(other: Selector | SelectorBuilder): SelectorBuilder {
    return new SelectorBuilder({ minus: [this.selector, unwrap(other)] });
  }
  toJSON(): Selector {
    return this.selector;
  }
}

const unwrap = (s: Selector | SelectorBuilder): Selector => (s instanceof SelectorBuilder ? s.selector : s);

export const select = {
  all: () => new SelectorBuilder('all'),
  none: () => new SelectorBuilder('none'),
  name: (...patterns: string[]) => new SelectorBuilder({ name: patterns }),
  kind: (...kinds: ModuleKind[]) => new SelectorBuilder({ kind: kinds }),
  part: (...parts: ModelPart[]) => new SelectorBuilder({ part: parts }),
  module: (...types: string[]) => new SelectorBuilder({ module: types }),
  leaf: (...leaves: string[]) => new SelectorBuilder({ leaf: leaves }),
  adapters: () => new SelectorBuilder({ adapter: true }),
  base: () => new SelectorBuilder({ adapter: false }),
};

export function toSelector(s: Selector | SelectorBuilder): Selector {
  return unwrap(s);
}

export { PatternError };
