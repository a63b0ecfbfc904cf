#!/usr/bin/env node
// Creates .venv with the PyTorch reference stack (scripts/python/requirements.txt) from the
// local package index. Reruns only when the requirements change. MEDTUNE_PYTHON overrides the
// whole thing with an existing interpreter that already has these packages.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const venv = join(root, '.venv');
const requirements = join(root, 'scripts/python/requirements.txt');

export function referencePython() {
  return process.env.MEDTUNE_PYTHON || join(venv, 'bin', 'python');
}

export function ensurePythonEnv({ quiet = false } = {}) {
  if (process.env.MEDTUNE_PYTHON) return process.env.MEDTUNE_PYTHON;
  const digest = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  const stamp = join(venv, '.medtune-requirements');
  const python = referencePython();
  if (existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === digest) return python;
  const log = (m) => { if (!quiet) console.log(m); };
  log('medtune: creating .venv with torch, transformers and peft from the local package index (one time, ~1 min)');
  rmSync(venv, { recursive: true, force: true });
  const base = process.env.LIBTORCH_PYTHON || 'python3';
  execFileSync(base, ['-m', 'venv', venv], { stdio: 'inherit' });
  // The public index is unreachable here; the local one is named explicitly so pip does not retry.
  const env = { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' };
  if (!env.PIP_INDEX_URL && existsSync('/opt/pypi/simple')) env.PIP_INDEX_URL = 'file:///opt/pypi/simple';
  execFileSync(python, ['-m', 'pip', 'install', '--quiet', '-r', requirements], { stdio: ['ignore', 'inherit', 'pipe'], env });
  writeFileSync(stamp, `${digest}\n`);
  log(`medtune: reference Python ready at ${python}`);
  return python;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    console.log(ensurePythonEnv());
  } catch (err) {
    console.error(`medtune: could not create the reference Python environment: ${err.stderr?.toString() || err.message}`);
    process.exit(1);
  }
}
