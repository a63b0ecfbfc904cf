// Where pip would look for wheels on this machine, read from `pip config list`: find-links
// folders and file:// simple indexes. Only local sources are used: nothing here goes to the
// network, and a machine without pip still has the well-known /opt/wheels folder.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

let cached = null;

/** @returns {{ findLinks: string[], indexes: string[] }} existing local folders only */
export function pipSources() {
  if (cached) return cached;
  const findLinks = new Set();
  const indexes = new Set();
  let out = '';
  try {
    out = execFileSync('python3', ['-m', 'pip', 'config', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30000 });
  } catch { /* no pip: fall back to the well-known folder */ }
  const values = (key) => [...out.matchAll(new RegExp(`(?:^|\\.)${key}='([^']+)'`, 'gm'))].flatMap((m) => m[1].split(/\s+/));
  for (const v of values('find-links')) findLinks.add(v.replace(/^file:\/\//, ''));
  for (const v of [...values('index-url'), ...values('extra-index-url')]) if (v.startsWith('file://')) indexes.add(v.slice('file://'.length));
  findLinks.add('/opt/wheels');
  cached = { findLinks: [...findLinks].filter((d) => existsSync(d)), indexes: [...indexes].filter((d) => existsSync(d)) };
  return cached;
}

/** PEP 503 name normalisation: `nvidia_cuda_nvrtc` and `nvidia-cuda-nvrtc` are one project. */
export function normalizeProject(name) {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** The wheel files of `project` in the local find-links folders and file:// simple indexes. */
export function findLocalWheels(project) {
  const want = normalizeProject(project);
  const { findLinks, indexes } = pipSources();
  const found = new Set();
  const matches = (file) => file.endsWith('.whl') && normalizeProject(file.split('-')[0]) === want;
  for (const d of findLinks) for (const f of readdirSync(d)) if (matches(f)) found.add(join(d, f));
  for (const index of indexes) {
    const page = join(index, want, 'index.html');
    if (!existsSync(page)) continue;
    for (const m of readFileSync(page, 'utf8').matchAll(/href="([^"#]+)/g)) {
      const file = resolve(dirname(page), decodeURIComponent(m[1]));
      if (matches(file.split('/').pop()) && existsSync(file)) found.add(file);
    }
  }
  return [...found];
}
