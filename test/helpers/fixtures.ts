import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const TEST_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = join(TEST_ROOT, '..');

/** A committed JSON fixture from test/fixtures. */
export function readFixture<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(readFileSync(join(TEST_ROOT, 'fixtures', name), 'utf8')) as T;
}
