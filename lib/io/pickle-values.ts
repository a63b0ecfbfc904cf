// The Python values a restricted unpickler can produce. Plain data maps onto JavaScript
// (None -> null, bool, int -> number or bigint beyond 2^53, float -> number, str -> string,
// bytes/bytearray -> Uint8Array, list -> Array); the rest are small classes below. Nothing
// here ever runs Python semantics: a global that is not on the allowlist is only a name
// (PyGlobal), and "calling" it only records the call (PyCall).

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | PySet
  | PyGlobal
  | PyCall
  | PyOpaque;

/** A Python tuple (a JavaScript array stands for a list). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
  get length(): number {
    return this.items.length;
  }
}

/** set or frozenset. */
export class PySet {
  constructor(readonly items: PyValue[], readonly frozen: boolean) {}
}

/** A reference to a module-level name that is not on the allowlist: inert, never resolved. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * What unpickling would have obtained by calling `callee` (REDUCE, NEWOBJ, INST, OBJ): the call
 * is recorded, not made. Later BUILD / SETITEMS / APPENDS on it are recorded too.
 */
export class PyCall {
  state: PyValue | undefined = undefined;
  readonly listItems: PyValue[] = [];
  readonly dictItems: [PyValue, PyValue][] = [];
  constructor(
    readonly callee: PyValue,
    readonly args: PyValue[],
    readonly how: 'REDUCE' | 'NEWOBJ' | 'NEWOBJ_EX' | 'INST' | 'OBJ',
    readonly kwargs: PyDict | null = null,
  ) {}
  /** The global at the root of the call chain (e.g. argparse.Namespace), when there is one. */
  get root(): PyGlobal | null {
    let c: PyValue = this.callee;
    while (c instanceof PyCall) c = c.callee;
    return c instanceof PyGlobal ? c : null;
  }
}

/**
 * Values with a meaning outside plain Python data that an allowlisted global produced (a tensor
 * reference, a storage type, a dtype ...). Subclasses live with the code that gives them meaning.
 */
export abstract class PyOpaque {
  abstract describe(): string;
}

// ---- dict ------------------------------------------------------------------------------------

const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;

/** Python-style hash key: equal keys in Python (1 == 1.0 == True) collide here too. */
function hashKey(key: PyValue): string {
  if (key === null) return 'N';
  switch (typeof key) {
    case 'string':
      return `s${key}`;
    case 'number':
      return `n${key}`;
    case 'bigint':
      return `n${key}`;
    case 'boolean':
      return key ? 'n1' : 'n0';
  }
  if (key instanceof PyTuple) return `t(${key.items.map(hashKey).join(',')})`;
  if (key instanceof Uint8Array) return `b${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex')}`;
  let id = objectIds.get(key);
  if (id === undefined) objectIds.set(key, (id = nextObjectId++));
  return `o${id}`;
}

/** dict, or a dict subclass the allowlist knows (collections.OrderedDict). Insertion ordered. */
export class PyDict {
  readonly #entries = new Map<string, [PyValue, PyValue]>();
  /** State given by BUILD (OrderedDict carries `_metadata` this way in state dicts). */
  state: PyValue | undefined = undefined;
  constructor(readonly typeName: 'dict' | 'collections.OrderedDict' = 'dict') {}

  set(key: PyValue, value: PyValue): void {
    const h = hashKey(key);
    const existing = this.#entries.get(h);
    if (existing) existing[1] = value;
    else this.#entries.set(h, [key, value]);
  }
  get(key: PyValue): PyValue | undefined {
    return this.#entries.get(hashKey(key))?.[1];
  }
  has(key: PyValue): boolean {
    return this.#entries.has(hashKey(key));
  }
  get size(): number {
    return this.#entries.size;
  }
  *entries(): IterableIterator<[PyValue, PyValue]> {
    for (const entry of this.#entries.values()) yield entry;
  }
  keys(): PyValue[] {
    return [...this.#entries.values()].map(([k]) => k);
  }
}

// ---- describing values (for reports) ---------------------------------------------------------

/** A JSON-safe value that summarises a Python value. */
export type Summary = null | boolean | number | string | Summary[] | { [key: string]: Summary };

export interface DescribeLimits {
  depth: number;
  entries: number;
  stringLength: number;
  /** Total containers expanded; the rest are shown by their short description. */
  nodes: number;
}

const DEFAULT_LIMITS: DescribeLimits = { depth: 4, entries: 40, stringLength: 200, nodes: 400 };

function typeLabel(v: PyValue): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof PyDict) return v.typeName;
  if (v instanceof PySet) return v.frozen ? 'frozenset' : 'set';
  if (v instanceof PyGlobal) return v.qualifiedName;
  if (v instanceof PyCall) return v.root?.qualifiedName ?? 'object';
  if (v instanceof PyOpaque) return v.describe();
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  return typeof v === 'bigint' ? 'int' : typeof v === 'string' ? 'str' : 'bool';
}

/** A short type description: "dict (3 entries)", "argparse.Namespace", "tensor float32 [3, 4]". */
export function shortDescription(v: PyValue): string {
  if (v instanceof PyDict) return `${v.typeName} (${v.size} entries)`;
  if (Array.isArray(v)) return `list (${v.length} items)`;
  if (v instanceof PyTuple) return `tuple (${v.length} items)`;
  if (v instanceof Uint8Array) return `bytes (${v.length})`;
  return typeLabel(v);
}

/**
 * A bounded, JSON-safe summary of a value: scalars as themselves, containers up to a depth and
 * entry count, recorded calls as {"$object": "argparse.Namespace", "args": [...], "state": ...}.
 * Cycles and shared references are cut.
 */
export function summarize(value: PyValue, limits: Partial<DescribeLimits> = {}): Summary {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  const onPath = new Set<object>();
  let budget = lim.nodes;
  const keyString = (k: PyValue): string => (typeof k === 'string' ? k : JSON.stringify(go(k, lim.depth - 1)));
  const go = (v: PyValue, depth: number): Summary => {
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
    if (typeof v === 'bigint') return v.toString();
    if (typeof v === 'string') return v.length > lim.stringLength ? `${v.slice(0, lim.stringLength)}...` : v;
    if (v instanceof Uint8Array) return `<bytes ${v.length}>`;
    if (v instanceof PyOpaque) return `<${v.describe()}>`;
    if (v instanceof PyGlobal) return `<${v.qualifiedName}>`;
    if (onPath.has(v)) return '<cycle>';
    if (depth <= 0 || budget <= 0) return `<${shortDescription(v)}>`;
    budget--;
    onPath.add(v);
    try {
      if (Array.isArray(v) || v instanceof PyTuple || v instanceof PySet) {
        const items = Array.isArray(v) ? v : v.items;
        const out = items.slice(0, lim.entries).map((x) => go(x, depth - 1));
        if (items.length > lim.entries) out.push(`<... ${items.length - lim.entries} more>`);
        return out;
      }
      if (v instanceof PyDict) {
        const out: { [key: string]: Summary } = {};
        let n = 0;
        for (const [k, x] of v.entries()) {
          if (n++ === lim.entries) {
            out['<more>'] = `${v.size - lim.entries} more entries`;
            break;
          }
          out[keyString(k)] = go(x, depth - 1);
        }
        return out;
      }
      // PyCall
      const out: { [key: string]: Summary } = { $object: typeLabel(v) };
      if (v.args.length) out['args'] = v.args.map((a) => go(a, depth - 1));
      if (v.kwargs) out['kwargs'] = go(v.kwargs, depth - 1);
      if (v.state !== undefined) out['state'] = go(v.state, depth - 1);
      if (v.listItems.length) out['items'] = go(v.listItems, depth - 1);
      if (v.dictItems.length) out['entries'] = v.dictItems.slice(0, lim.entries).map(([k, x]) => [go(k, depth - 1), go(x, depth - 1)]);
      return out;
    } finally {
      onPath.delete(v);
    }
  };
  return go(value, lim.depth);
}

/** The children of a container value, with the key that reaches each (for walking the tree). */
export function childrenOf(v: PyValue): [string, PyValue][] {
  if (Array.isArray(v)) return v.map((x, i) => [String(i), x]);
  if (v instanceof PyTuple || v instanceof PySet) return v.items.map((x, i) => [String(i), x]);
  if (v instanceof PyDict) {
    const out: [string, PyValue][] = [];
    for (const [k, x] of v.entries()) out.push([typeof k === 'string' ? k : JSON.stringify(summarize(k, { depth: 1 })), x]);
    if (v.state !== undefined) out.push(['<state>', v.state]);
    return out;
  }
  if (v instanceof PyCall) {
    const out: [string, PyValue][] = v.args.map((x, i) => [`<arg ${i}>`, x]);
    if (v.kwargs) out.push(['<kwargs>', v.kwargs]);
    if (v.state !== undefined) out.push(['<state>', v.state]);
    v.listItems.forEach((x, i) => out.push([`<item ${i}>`, x]));
    v.dictItems.forEach(([k, x]) => out.push([`<key ${JSON.stringify(summarize(k, { depth: 1 }))}>`, x]));
    return out;
  }
  return [];
}
