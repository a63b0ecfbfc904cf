// Deterministic release of native tensors. `tidy(fn)` opens a scope: every tensor created while
// fn runs (synchronously or along its Promise chain, tracked by AsyncLocalStorage) is disposed
// when fn finishes, except the tensors in fn's result, which move to the enclosing scope.
import { AsyncLocalStorage } from 'node:async_hooks';

/** What a scope tracks: anything with deterministic disposal. */
export interface Tracked {
  dispose(): void;
  readonly isDisposed: boolean;
  /** Set by the scope that tracks it, cleared by keep(). */
  scope: Scope | null;
}

export class Scope {
  readonly tracked = new Set<Tracked>();
  constructor(readonly parent: Scope | null) {}

  track(item: Tracked): void {
    this.tracked.add(item);
    item.scope = this;
  }

  untrack(item: Tracked): void {
    this.tracked.delete(item);
    if (item.scope === this) item.scope = null;
  }

  /** Disposes everything tracked except `survivors`, which move to the parent scope. */
  close(survivors: Set<Tracked>): void {
    for (const item of this.tracked) {
      if (survivors.has(item)) {
        item.scope = null;
        if (this.parent) this.parent.track(item);
      } else {
        item.scope = null;
        item.dispose();
      }
    }
    this.tracked.clear();
  }
}

const storage = new AsyncLocalStorage<Scope>();

export function currentScope(): Scope | null {
  return storage.getStore() ?? null;
}

function isTracked(value: unknown): value is Tracked {
  return typeof value === 'object' && value !== null && 'dispose' in value && 'scope' in value && 'isDisposed' in value;
}

/** Tracked values reachable from a result: arrays, Maps, Sets and plain objects are searched. */
function collectSurvivors(value: unknown, out: Set<Tracked>, seen: Set<object>): void {
  if (typeof value !== 'object' || value === null || seen.has(value)) return;
  seen.add(value);
  if (isTracked(value)) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) for (const v of value) collectSurvivors(v, out, seen);
  else if (value instanceof Map) for (const [k, v] of value) { collectSurvivors(k, out, seen); collectSurvivors(v, out, seen); }
  else if (value instanceof Set) for (const v of value) collectSurvivors(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collectSurvivors(v, out, seen);
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Runs `fn` in a new scope and disposes every tensor it created that is not part of its result.
 * Works with async functions: the scope follows the Promise chain and closes when it settles.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Scope(currentScope());
  let result: T;
  try {
    result = storage.run(scope, fn);
  } catch (err) {
    scope.close(new Set());
    throw err;
  }
  if (isPromiseLike(result)) {
    return Promise.resolve(result).then(
      (value) => {
        const survivors = new Set<Tracked>();
        collectSurvivors(value, survivors, new Set());
        scope.close(survivors);
        return value;
      },
      (err: unknown) => {
        scope.close(new Set());
        throw err;
      },
    ) as T;
  }
  const survivors = new Set<Tracked>();
  collectSurvivors(result, survivors, new Set());
  scope.close(survivors);
  return result;
}

/** Takes tensors out of their scope: they live until disposed explicitly (or collected). */
export function keep<T extends Tracked | readonly Tracked[]>(value: T): T {
  const items = Array.isArray(value) ? (value as readonly Tracked[]) : [value as Tracked];
  for (const item of items) item.scope?.untrack(item);
  return value;
}

/** Registers a newly created value with the current scope, if any. */
export function trackInCurrentScope(item: Tracked): void {
  storage.getStore()?.track(item);
}
