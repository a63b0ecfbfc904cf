// What torch.save puts into its pickles, and the allowlist that reads it without running Python:
// storage types and dtypes become descriptors, the tensor rebuild functions become TensorRefs
// (no data is touched while unpickling), OrderedDict/set/bytes are plain data. Every other global
// is an inert PyGlobal listed in the result; globals whose only purpose in a pickle is to run
// code (os.system, builtins.exec, subprocess ...) refuse the whole file.
import type { DType } from '../torch/dtype.ts';
import { PickleError, PyCallable, unpickle, type PickleSite, type UnpickleResult } from './pickle.ts';
import { PyDict, PyGlobal, PyOpaque, PySet, PyTuple, shortDescription, type PyValue } from './pickle-values.ts';

// ---- dtypes and storage types ----------------------------------------------------------------

/** A torch dtype as a checkpoint names it; `dtype` is null when medtune has no such dtype. */
export interface TorchDTypeInfo {
  torchName: string;
  itemSize: number;
  dtype: DType | null;
}

const TORCH_DTYPES: Record<string, [number, DType | null]> = {
  float32: [4, 'float32'], float64: [8, 'float64'], float16: [2, 'float16'], bfloat16: [2, 'bfloat16'],
  int64: [8, 'int64'], int32: [4, 'int32'], int16: [2, 'int16'], int8: [1, 'int8'], uint8: [1, 'uint8'], bool: [1, 'bool'],
  complex32: [4, null], complex64: [8, null], complex128: [16, null], uint16: [2, null], uint32: [4, null], uint64: [8, null],
  float8_e5m2: [1, null], float8_e4m3fn: [1, null], float8_e5m2fnuz: [1, null], float8_e4m3fnuz: [1, null],
  float8_e8m0fnu: [1, null], float4_e2m1fn_x2: [1, null], bits8: [1, null], bits16: [2, null], bits1x8: [1, null],
  bits2x4: [1, null], bits4x2: [1, null], qint8: [1, null], quint8: [1, null], qint32: [4, null], quint4x2: [1, null],
  quint2x4: [1, null],
};

const STORAGE_DTYPES: Record<string, string> = {
  DoubleStorage: 'float64', FloatStorage: 'float32', HalfStorage: 'float16', BFloat16Storage: 'bfloat16',
  LongStorage: 'int64', IntStorage: 'int32', ShortStorage: 'int16', CharStorage: 'int8', ByteStorage: 'uint8',
  BoolStorage: 'bool', ComplexDoubleStorage: 'complex128', ComplexFloatStorage: 'complex64', QInt8Storage: 'qint8',
  QInt32Storage: 'qint32', QUInt8Storage: 'quint8', QUInt4x2Storage: 'quint4x2', QUInt2x4Storage: 'quint2x4',
  UntypedStorage: 'uint8',
};

export function torchDType(torchName: string): TorchDTypeInfo {
  const [itemSize, dtype] = TORCH_DTYPES[torchName]!;
  return { torchName, itemSize, dtype };
}

/** `torch.float32` and friends (arguments of _rebuild_tensor_v3). */
export class TorchDTypeValue extends PyOpaque {
  constructor(readonly info: TorchDTypeInfo) {
    super();
  }
  describe(): string {
    return `torch.${this.info.torchName}`;
  }
}

/** `torch.FloatStorage`, `torch.cuda.HalfStorage`, `torch.storage.UntypedStorage` ... */
export class StorageType extends PyOpaque {
  constructor(readonly qualifiedName: string, readonly element: TorchDTypeInfo, readonly untyped: boolean) {
    super();
  }
  describe(): string {
    return this.qualifiedName;
  }
}

/** `torch.Tensor` / `torch.nn.parameter.Parameter` as the new_type of _rebuild_from_type_v2. */
class TensorClass extends PyOpaque {
  constructor(readonly qualifiedName: string) {
    super();
  }
  describe(): string {
    return this.qualifiedName;
  }
}

// ---- storages and tensors (descriptors; the data is read later, once per storage) ------------

/** One storage record of the checkpoint: where its bytes are comes from the container format. */
export class StorageRef extends PyOpaque {
  constructor(
    readonly key: string,
    readonly type: StorageType,
    readonly location: string,
    /** Elements of type.element. */
    readonly numel: number,
  ) {
    super();
  }
  get nbytes(): number {
    return this.numel * this.type.element.itemSize;
  }
  describe(): string {
    return `storage ${this.key} (${this.type.qualifiedName}, ${this.numel} elements on ${this.location})`;
  }
}

/** A tensor as torch would rebuild it: a strided view of one storage. */
export class TensorRef extends PyOpaque {
  isParameter = false;
  /** A tensor subclass other than Parameter (from _rebuild_from_type_v2), kept for the report. */
  subclass: string | null = null;
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly element: TorchDTypeInfo,
    public requiresGrad: boolean,
  ) {
    super();
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  describe(): string {
    return `tensor ${this.element.torchName} [${this.shape.join(', ')}]`;
  }
}

// ---- argument checking for the allowlisted functions -----------------------------------------

function failAt(site: PickleSite, message: string): never {
  throw new PickleError(`pickle opcode ${site.opcode} at byte ${site.offset}: ${message}`, site.offset, site.opcode);
}

function intArg(v: PyValue | undefined, what: string, site: PickleSite): number {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  return failAt(site, `${what} must be a non-negative integer, got ${v === undefined ? 'nothing' : shortDescription(v)}`);
}

function intTuple(v: PyValue | undefined, what: string, site: PickleSite): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : null;
  if (!items) return failAt(site, `${what} must be a tuple of integers, got ${v === undefined ? 'nothing' : shortDescription(v)}`);
  return items.map((x, i) => intArg(x, `${what}[${i}]`, site));
}

function arity(args: PyValue[], min: number, max: number, fn: string, site: PickleSite): void {
  if (args.length < min || args.length > max)
    failAt(site, `${fn} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length}`);
}

/** A tensor view must stay inside its storage (as_strided would otherwise read out of bounds). */
function checkedTensor(storage: PyValue | undefined, offsetV: PyValue | undefined, sizeV: PyValue | undefined, strideV: PyValue | undefined,
  element: TorchDTypeInfo | null, requiresGrad: PyValue | undefined, fn: string, site: PickleSite): TensorRef {
  if (!(storage instanceof StorageRef)) return failAt(site, `${fn}: the storage argument is ${storage === undefined ? 'missing' : shortDescription(storage)}, not a storage`);
  const el = element ?? storage.type.element;
  const offset = intArg(offsetV, `${fn}: storage_offset`, site);
  const shape = intTuple(sizeV, `${fn}: size`, site);
  const stride = intTuple(strideV, `${fn}: stride`, site);
  if (shape.length !== stride.length) failAt(site, `${fn}: size has ${shape.length} dimensions but stride has ${stride.length}`);
  if (storage.nbytes % el.itemSize) failAt(site, `${fn}: storage ${storage.key} holds ${storage.nbytes} bytes, not a whole number of ${el.torchName} elements`);
  const capacity = storage.nbytes / el.itemSize;
  if (!shape.includes(0)) {
    let last = offset;
    for (let i = 0; i < shape.length; i++) last += (shape[i]! - 1) * stride[i]!;
    if (last >= capacity)
      failAt(site, `${fn}: a tensor of size [${shape.join(', ')}] with stride [${stride.join(', ')}] at offset ${offset} reaches element ${last}, but storage ${storage.key} holds ${capacity}`);
  }
  if (typeof requiresGrad !== 'boolean' && requiresGrad !== undefined) failAt(site, `${fn}: requires_grad must be a bool`);
  return new TensorRef(storage, offset, shape, stride, el, requiresGrad === true);
}

// ---- the allowlisted callables ---------------------------------------------------------------

type Impl = (args: PyValue[], site: PickleSite, fn: string) => PyValue;

class Allowed extends PyCallable {
  constructor(module: string, name: string, readonly impl: Impl) {
    super(module, name);
  }
  call(args: PyValue[], site: PickleSite): PyValue {
    return this.impl(args, site, this.qualifiedName);
  }
}

const REBUILD: Record<string, Impl> = {
  _rebuild_tensor: (a, site, fn) => {
    arity(a, 4, 4, fn, site);
    return checkedTensor(a[0], a[1], a[2], a[3], null, false, fn, site);
  },
  _rebuild_tensor_v2: (a, site, fn) => {
    arity(a, 6, 7, fn, site);
    return checkedTensor(a[0], a[1], a[2], a[3], null, a[4], fn, site);
  },
  _rebuild_tensor_v3: (a, site, fn) => {
    arity(a, 7, 8, fn, site);
    if (!(a[6] instanceof TorchDTypeValue)) return failAt(site, `${fn}: dtype argument is ${shortDescription(a[6]!)}`);
    return checkedTensor(a[0], a[1], a[2], a[3], a[6].info, a[4], fn, site);
  },
  _rebuild_parameter: (a, site, fn) => asParameter(a, 3, site, fn),
  _rebuild_parameter_with_state: (a, site, fn) => asParameter(a, 4, site, fn),
};

function asParameter(a: PyValue[], n: number, site: PickleSite, fn: string): TensorRef {
  arity(a, n, n, fn, site);
  const t = a[0];
  if (!(t instanceof TensorRef)) return failAt(site, `${fn}: data is ${shortDescription(t!)}, not a tensor`);
  if (typeof a[1] !== 'boolean') return failAt(site, `${fn}: requires_grad must be a bool`);
  t.isParameter = true;
  t.requiresGrad = a[1];
  return t;
}

function rebuildFromType(a: PyValue[], site: PickleSite, fn: string): PyValue {
  arity(a, 4, 4, fn, site);
  const [func, newType, args] = a;
  if (!(func instanceof Allowed) || !(func.name in REBUILD)) return failAt(site, `${fn}: ${shortDescription(func!)} is not a tensor rebuild function`);
  if (!(args instanceof PyTuple)) return failAt(site, `${fn}: arguments must be a tuple`);
  const t = func.call(args.items, site);
  if (t instanceof TensorRef) {
    if (newType instanceof TensorClass) t.isParameter ||= newType.qualifiedName === 'torch.nn.parameter.Parameter';
    else t.subclass = newType instanceof PyGlobal ? newType.qualifiedName : shortDescription(newType!);
  }
  return t;
}

function orderedDict(a: PyValue[], site: PickleSite, fn: string): PyValue {
  arity(a, 0, 1, fn, site);
  const d = new PyDict('collections.OrderedDict');
  const init = a[0];
  if (init === undefined) return d;
  const pairs = init instanceof PyTuple ? init.items : Array.isArray(init) ? init : null;
  if (!pairs) return failAt(site, `${fn}: expected a list of pairs`);
  for (const p of pairs) {
    const kv = p instanceof PyTuple ? p.items : Array.isArray(p) ? p : null;
    if (!kv || kv.length !== 2) return failAt(site, `${fn}: expected a list of pairs`);
    d.set(kv[0]!, kv[1]!);
  }
  return d;
}

function makeSet(frozen: boolean): Impl {
  return (a, site, fn) => {
    arity(a, 0, 1, fn, site);
    const init = a[0];
    if (init === undefined) return new PySet([], frozen);
    const items = init instanceof PyTuple || init instanceof PySet ? init.items : Array.isArray(init) ? init : null;
    if (!items) return failAt(site, `${fn}: expected a list`);
    return new PySet([...items], frozen);
  };
}

/** Protocol 2 writes Python 3 bytes as _codecs.encode(latin-1 text, 'latin1'). */
function codecsEncode(a: PyValue[], site: PickleSite, fn: string): PyValue {
  arity(a, 1, 2, fn, site);
  const [s, enc] = a;
  if (typeof s !== 'string' || (enc !== undefined && enc !== 'latin1' && enc !== 'latin-1'))
    return failAt(site, `${fn}: only encode(str, 'latin1') (how pickle stores bytes) is supported`);
  return Uint8Array.from(Buffer.from(s, 'latin1'));
}

/**
 * bytes() / bytearray() with no argument, a bytes value, or (str, 'latin-1'): how protocols 0-2
 * pickle empty bytes and protocols 0-4 pickle bytearrays.
 */
function bytesOf(a: PyValue[], site: PickleSite, fn: string): PyValue {
  arity(a, 0, 2, fn, site);
  const [v, enc] = a;
  if (v === undefined) return new Uint8Array(0);
  if (v instanceof Uint8Array && enc === undefined) return v.slice();
  if (typeof v === 'string' && (enc === 'latin-1' || enc === 'latin1')) return Uint8Array.from(Buffer.from(v, 'latin1'));
  return failAt(site, `${fn}: only ${fn}(), ${fn}(bytes) and ${fn}(str, 'latin-1') are supported`);
}

// ---- classifying globals ---------------------------------------------------------------------

/**
 * Module names as Python 3 reads them: protocol 0-2 pickles use Python 2 names (pickle's
 * fix_imports maps them the same way), and old torch checkpoints name torch.tensor.
 */
const MODULE_ALIASES: Record<string, string> = {
  __builtin__: 'builtins', exceptions: 'builtins', copy_reg: 'copyreg', commands: 'subprocess', cPickle: 'pickle',
  StringIO: 'io', cStringIO: 'io', thread: '_thread', UserDict: 'collections', UserList: 'collections',
  UserString: 'collections', Queue: 'queue', 'torch.tensor': 'torch._tensor',
};

/**
 * Modules whose globals exist in a pickle only to run code or touch the system when torch.load
 * (weights_only=False) calls them. A checkpoint naming one is refused outright.
 */
const REFUSED_MODULES = [
  'os', 'posix', 'nt', 'sys', 'subprocess', 'shutil', 'socket', 'importlib', 'runpy', 'pty', 'ctypes', 'marshal',
  'pickle', '_pickle', 'cPickle', 'dill', 'cloudpickle', 'code', 'codeop', 'webbrowser', 'multiprocessing', 'asyncio',
  'platform', 'popen2', 'pdb', 'bdb', 'timeit', 'signal', '_thread', 'thread', 'threading', 'tempfile',
  'io', '_io', 'operator', 'torch.hub', 'torch.jit', 'torch.package', 'torch.ops', 'torch.utils.cpp_extension',
];
const REFUSED_BUILTINS = new Set([
  'eval', 'exec', 'compile', 'open', '__import__', 'getattr', 'setattr', 'delattr', 'globals', 'locals', 'vars',
  'input', 'breakpoint', 'exit', 'quit',
]);
const REFUSED_NAMES = new Set(['torch.load', 'torch.serialization.load', 'torch.storage._load_from_bytes', 'numpy.load']);

/** Why a global is refused, or null when it may be read (allowlisted or inert placeholder). */
export function refusalReason(module: string, name: string): string | null {
  const qualified = `${module}.${name}`;
  if (module === 'builtins' && REFUSED_BUILTINS.has(name)) return `builtins.${name} runs code or touches the system`;
  if (REFUSED_NAMES.has(qualified)) return `${qualified} loads another pickle`;
  const hit = REFUSED_MODULES.find((m) => module === m || module.startsWith(`${m}.`));
  return hit ? `the ${hit} module runs commands, code or I/O` : null;
}

export class UnsafePickleError extends PickleError {
  override name = 'UnsafePickleError';
}

const ALLOWED_TENSOR_CLASSES = new Set(['torch.Tensor', 'torch.nn.parameter.Parameter', 'torch.nn.Parameter']);

/** The allowlisted value for module.name, or null when the name is not on the allowlist. */
function allowedGlobal(module: string, name: string): PyValue | null {
  if ((module === 'torch' || module === 'torch.cuda' || module === 'torch.storage') && name in STORAGE_DTYPES) {
    const untyped = name === 'UntypedStorage';
    if (untyped && module === 'torch.cuda') return null;
    return new StorageType(`${module}.${name}`, torchDType(STORAGE_DTYPES[name]!), untyped);
  }
  if (module === 'torch' && name in TORCH_DTYPES) return new TorchDTypeValue(torchDType(name));
  if (module === 'torch._utils' && name in REBUILD) return new Allowed(module, name, REBUILD[name]!);
  if (module === 'torch._tensor' && name === '_rebuild_from_type_v2') return new Allowed(module, name, rebuildFromType);
  if (ALLOWED_TENSOR_CLASSES.has(`${module}.${name}`)) return new TensorClass(`${module}.${name}`);
  if (module === 'collections' && name === 'OrderedDict') return new Allowed(module, name, orderedDict);
  if (module === 'builtins' && (name === 'set' || name === 'frozenset')) return new Allowed(module, name, makeSet(name === 'frozenset'));
  if (module === '_codecs' && name === 'encode') return new Allowed(module, name, codecsEncode);
  if (module === 'builtins' && (name === 'bytes' || name === 'bytearray')) return new Allowed(module, name, bytesOf);
  return null;
}

// ---- running a torch pickle ------------------------------------------------------------------

/** A non-allowlisted global that the pickle named (an inert placeholder in the result). */
export interface PlaceholderGlobal {
  name: string;
  count: number;
  firstOffset: number;
}

export interface TorchUnpickleResult extends UnpickleResult {
  placeholders: PlaceholderGlobal[];
}

/**
 * Runs a torch.save pickle with the allowlist. `persistentLoad` maps the persistent ids (storage
 * tuples) to StorageRefs. An unsafe global throws UnsafePickleError; nothing is ever executed.
 */
export function unpickleTorch(data: Uint8Array, persistentLoad: (pid: PyValue, site: PickleSite) => PyValue, start = 0): TorchUnpickleResult {
  const placeholders = new Map<string, PlaceholderGlobal>();
  const result = unpickle(data, {
    persistentLoad,
    findGlobal(rawModule, name, site) {
      const module = MODULE_ALIASES[rawModule] ?? rawModule;
      const refusal = refusalReason(module, name);
      if (refusal) {
        throw new UnsafePickleError(
          `refusing to load: the pickle names ${module}.${name} (opcode ${site.opcode} at byte ${site.offset}); ${refusal}. ` +
            'This is how malicious checkpoints run commands in torch.load(weights_only=False). Nothing was executed.',
          site.offset, site.opcode);
      }
      const allowed = allowedGlobal(module, name);
      if (allowed) return allowed;
      const qualified = `${module}.${name}`;
      const seen = placeholders.get(qualified);
      if (seen) seen.count++;
      else placeholders.set(qualified, { name: qualified, count: 1, firstOffset: site.offset });
      return new PyGlobal(module, name);
    },
  }, start);
  return { ...result, placeholders: [...placeholders.values()] };
}

/** Parses a persistent id tuple ('storage', type, key, location, numel[, view_metadata]). */
export function parseStoragePid(pid: PyValue, site: PickleSite): { type: StorageType; key: string; location: string; numel: number; view: PyValue } {
  const items = pid instanceof PyTuple ? pid.items : null;
  if (!items || items.length < 5 || items.length > 6) return failAt(site, `persistent id must be a ('storage', type, key, location, numel) tuple, got ${shortDescription(pid)}`);
  const [kind, type, key, location, numel, view] = items;
  if (kind !== 'storage') return failAt(site, `persistent id kind ${JSON.stringify(summarizeKind(kind!))} is not 'storage'`);
  if (!(type instanceof StorageType)) {
    const what = type instanceof PyGlobal ? type.qualifiedName : shortDescription(type!);
    return failAt(site, `unsupported storage type ${what}`);
  }
  if (typeof key !== 'string' || !/^[\w.-]+$/.test(key)) return failAt(site, `storage key ${JSON.stringify(summarizeKind(key!))} is not a plain name`);
  if (typeof location !== 'string') return failAt(site, 'storage location must be a string');
  return { type, key, location, numel: intArg(numel, 'storage numel', site), view: view ?? null };
}

function summarizeKind(v: PyValue): string {
  return typeof v === 'string' ? v : shortDescription(v);
}
