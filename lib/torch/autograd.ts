// Grad mode and functional gradients. Grad mode is a per-thread libtorch setting: noGrad()
// covers synchronous code; async native jobs capture the mode in force when they are queued.
import { native } from './native.ts';
import { Tensor, wrap } from './tensor.ts';

function isPromiseLike(value: unknown): boolean {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

function withGradMode<T>(enabled: boolean, fn: () => T, name: string): T {
  const previous = native().setGradEnabled(enabled);
  try {
    const result = fn();
    if (isPromiseLike(result)) {
      throw new TypeError(`${name}() takes a synchronous function: grad mode is per-thread and cannot follow an await. ` +
        'Call it around the synchronous part, or queue native work inside it.');
    }
    return result;
  } finally {
    native().setGradEnabled(previous);
  }
}

/** Runs `fn` with gradient tracking off (torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  return withGradMode(false, fn, 'noGrad');
}

/** Runs `fn` with gradient tracking on (torch.enable_grad()). */
export function enableGrad<T>(fn: () => T): T {
  return withGradMode(true, fn, 'enableGrad');
}

export function isGradEnabled(): boolean {
  return native().isGradEnabled();
}

/** torch.autograd.grad: gradients of `outputs` with respect to `inputs` (null where unused, with allowUnused). */
export function grad(outputs: Tensor | readonly Tensor[], inputs: Tensor | readonly Tensor[], opts: {
  gradOutputs?: readonly Tensor[];
  retainGraph?: boolean;
  createGraph?: boolean;
  allowUnused?: boolean;
} = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs as Tensor];
  const ins = Array.isArray(inputs) ? inputs : [inputs as Tensor];
  const result = native().autogradGrad(
    outs.map((t: Tensor) => t.handle),
    ins.map((t: Tensor) => t.handle),
    opts.gradOutputs ? opts.gradOutputs.map((t) => t.handle) : null,
    opts.retainGraph ?? null,
    opts.createGraph ?? false,
    opts.allowUnused ?? false,
  );
  return result.map((g) => (g ? wrap(g) : null));
}
