// One checkpoint load in a fresh process, measured: wall time and the resident-set peak during the
// load (VmHWM after resetting it through /proc/self/clear_refs). With --touch the time and peak
// include reading every parameter once (sum), which is when lazily mapped weights are paged in.
// Prints one JSON line. Usage: node --import tsx scripts/bench/load-child.ts DIR DTYPE [--mmap] [--touch]
import { readFileSync, writeFileSync } from 'node:fs';
import { loadModel, type ModelDType } from '../../lib/models/index.ts';
import { synchronize, tidy } from '../../lib/torch/index.ts';

function status(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

const [dir, dtype, ...flags] = process.argv.slice(2) as [string, ModelDType, ...string[]];
await synchronize(); // the native addon and libtorch are loaded before the measurement starts
const baseline = status('VmRSS');
writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
const started = performance.now();
const model = await loadModel(dir, { dtype, mmap: flags.includes('--mmap') });
if (flags.includes('--touch')) {
  tidy(() => {
    for (const p of model.parameters()) model.parameter(p.name).sum().item();
  });
}
const loadMs = performance.now() - started;
const peak = status('VmHWM');
const params = model.parameterCount().total;
console.log(JSON.stringify({ loadMs, baselineBytes: baseline, peakBytes: peak, peakOverBaselineBytes: peak - baseline, params, dtype: model.dtype }));
model.dispose();
