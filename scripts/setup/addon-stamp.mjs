// A build stamp: the hash of everything the addon's binary depends on, so a second
// `npm install` can tell that nothing changed and skip the build.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

function walk(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** The hash of the addon's sources alone (CMakeLists.txt and csrc/), as recorded with prebuilds. */
export function sourceStamp(root) {
  const h = createHash('sha256');
  const files = [join(root, 'CMakeLists.txt'), ...walk(join(root, 'csrc'), [])];
  for (const f of files) {
    h.update(relative(root, f));
    h.update(readFileSync(f));
  }
  return h.digest('hex');
}

export function addonStamp(root, libtorch) {
  const h = createHash('sha256');
  h.update(sourceStamp(root));
  h.update(JSON.stringify({ dir: libtorch.dir, version: libtorch.version, cuda: libtorch.cuda }));
  return h.digest('hex');
}
