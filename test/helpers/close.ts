// Numeric assertions for tests: elementwise closeness with absolute and relative tolerance,
// reporting the worst element.
import assert from 'node:assert/strict';

type Numeric = number | bigint | boolean;
export type NumericArray = ArrayLike<Numeric> | readonly unknown[];

export function flatten(value: unknown): number[] {
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return [Number(value)];
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number | bigint>, Number);
  if (Array.isArray(value)) return value.flatMap((v) => flatten(v));
  throw new TypeError(`cannot flatten ${typeof value}`);
}

export function assertClose(actual: unknown, expected: unknown, opts: { atol?: number; rtol?: number; message?: string } = {}): void {
  const atol = opts.atol ?? 1e-6;
  const rtol = opts.rtol ?? 1e-5;
  const a = flatten(actual);
  const e = flatten(expected);
  assert.equal(a.length, e.length, `${opts.message ?? 'values'}: length ${a.length} != expected ${e.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i]! - e[i]!);
    const allowed = atol + rtol * Math.abs(e[i]!);
    if (Number.isNaN(a[i]) !== Number.isNaN(e[i]) || diff > allowed) {
      if (diff - allowed > worstExcess || worst < 0) {
        worst = i;
        worstExcess = diff - allowed;
      }
    }
  }
  if (worst >= 0) {
    assert.fail(`${opts.message ?? 'values'} differ at flat index ${worst}: got ${a[worst]}, expected ${e[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}
