// Load time of a synthetic ViT-B/16 .pth (86M fp32 parameters in timm's MAE layout) and of its
// converted safetensors, here and in PyTorch, on the same machine in the same run.
//
//   node --import tsx scripts/bench/pth-load.ts [--repeat 5]
//
// The checkpoint is made once by scripts/python/bench_pth_load.py into .cache/bench/. Numbers are
// medians after one warm-up (files in the page cache), so they measure parsing and copying, not
// the disk. The safetensors side here needs the native loader from csrc/io; builds without it
// report PyTorch's safetensors time only.
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { convertTorchCheckpoint } from '../../lib/io/convert.ts';
import { loadTorchCheckpoint } from '../../lib/io/torch-checkpoint.ts';
import { nativePart, PACKAGE_ROOT } from '../../lib/torch/native.ts';
import { buildInfo, setNumThreads, type TensorHandle } from '../../lib/torch/index.ts';
import { Tensor } from '../../lib/torch/tensor.ts';
import { runPythonJson } from '../../test/helpers/python.ts';

const { values } = parseArgs({ options: { repeat: { type: 'string', default: '5' } } });
const repeats = Number(values.repeat);

const dir = join(PACKAGE_ROOT, '.cache', 'bench');
const pth = join(dir, 'vit-b16-mae.pth');
const outDir = join(dir, 'vit-b16-mae-converted');
mkdirSync(dir, { recursive: true });
if (!existsSync(pth)) {
  const made = runPythonJson<{ tensors: number; params: number }>('bench_pth_load.py', ['make', pth]);
  console.log(`made ${pth}: ${made.tensors} tensors, ${made.params} parameters`);
}

async function median(fn: () => Promise<void>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

async function loadPth(verifyChecksums: boolean): Promise<void> {
  const { tensors } = await loadTorchCheckpoint(pth, { verifyChecksums });
  for (const t of tensors.values()) t.dispose();
}

setNumThreads(1);
const t0 = performance.now();
rmSync(outDir, { recursive: true, force: true });
const { safetensors, report } = await convertTorchCheckpoint(pth, outDir);
const convertSeconds = (performance.now() - t0) / 1000;

const pthChecked = await median(() => loadPth(true));
const pthUnchecked = await median(() => loadPth(false));

// The native safetensors loader (csrc/io, from the models work) when this build has it.
type SafetensorsAddon = { safetensorsLoadAsync?: (path: string, dtype: null, device: null, names: null) => Promise<{ names: string[]; tensors: TensorHandle[] }> };
const native = nativePart<SafetensorsAddon>();
let stSeconds: number | null = null;
if (typeof native.safetensorsLoadAsync === 'function') {
  stSeconds = await median(async () => {
    const out = await native.safetensorsLoadAsync!(safetensors, null, null, null);
    for (const h of out.tensors) Tensor.fromHandle(h).dispose();
  });
}

const py = runPythonJson<{ torch_load: number; safetensors_load_file: number; safetensors_materialized: number }>('bench_pth_load.py', ['time', pth, safetensors, String(repeats)], { timeoutMs: 900_000 });

const mb = statSync(pth).size / 1e6;
const row = (what: string, s: number, ref?: number) =>
  console.log(`${what.padEnd(52)} ${s.toFixed(3).padStart(7)} s  ${(mb / s).toFixed(0).padStart(5)} MB/s${ref ? `  ${(s / ref).toFixed(2)}x PyTorch` : ''}`);
console.log(`libtorch ${buildInfo().torchVersion}, 1 thread each side, median of ${repeats} after a warm-up; ${report.tensors.length} tensors, ${(report.numel / 1e6).toFixed(1)}M parameters, ${mb.toFixed(0)} MB`);
row('medtune loadTorchCheckpoint (CRC-32 checked)', pthChecked, py.torch_load);
row('medtune loadTorchCheckpoint (verifyChecksums: false)', pthUnchecked, py.torch_load);
row('torch.load(weights_only=True)', py.torch_load);
row('medtune convert (load + write safetensors, once)', convertSeconds);
if (stSeconds !== null) row('medtune native safetensors load', stSeconds, py.safetensors_materialized);
else console.log(`${'medtune native safetensors load'.padEnd(52)} not in this build (csrc/io safetensors is not merged yet)`);
row('safetensors load_file + clone() (PyTorch, all in memory)', py.safetensors_materialized);
row('safetensors load_file (PyTorch, lazy mmap: not read)', py.safetensors_load_file);
