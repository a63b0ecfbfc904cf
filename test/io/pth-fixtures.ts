// The .pth fixtures written by PyTorch (scripts/python/make_pth_fixtures.py) and helpers to
// compare loaded tensors with what PyTorch saved, bit for bit.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { native, tidy, type Tensor } from '../../lib/torch/index.ts';
import { cachedFixture } from '../helpers/python.ts';

export interface ExpectedTensor {
  dtype: string;
  shape: number[];
  stride: number[];
  offset: number;
  storage: number;
  hex: string;
}

export interface PthExpected {
  files: Record<string, Record<string, ExpectedTensor>>;
  pickles: Record<string, unknown>;
  markers: Record<string, string | boolean>;
}

let dir: string | null = null;

export function pthFixtureDir(): string {
  return (dir ??= cachedFixture('pth', 'make_pth_fixtures.py'));
}

export function pthFixture(name: string): string {
  return join(pthFixtureDir(), name);
}

export function pthExpected(): PthExpected {
  return JSON.parse(readFileSync(pthFixture('expected.json'), 'utf8')) as PthExpected;
}

/** The tensor's bytes in row-major order, as hex (PyTorch's tensor.contiguous().view(uint8)). */
export function tensorHex(t: Tensor): string {
  return tidy(() => {
    const flat = t.contiguous().reshape(t.numel);
    const bytes = flat.dtype === 'uint8' ? flat : flat.viewAs('uint8');
    return Buffer.from(bytes.toTypedArray() as Uint8Array).toString('hex');
  });
}

export function storageOffset(t: Tensor): number {
  return native().flags(t.handle).storageOffset;
}
