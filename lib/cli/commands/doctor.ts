// `medtune doctor`: which libtorch, from where and why, which build variant, which devices.
import { parseArgs } from 'node:util';
import { environment, type Environment } from '../../torch/runtime.ts';
import { native, readLibtorchChoice } from '../../torch/native.ts';
import { cudaStatus, memoryStatsAll } from '../../torch/cuda-memory.ts';
import type { CudaDeviceInfo, CudaMemoryStats } from '../../torch/native-types.ts';
import type { Command } from '../command.ts';
import { packageVersion } from '../main.ts';

export interface DoctorReport {
  ok: boolean;
  medtune: string;
  node: string;
  libtorch: { version: string | null; source: string | null; dir: string | null; reason: string | null };
  /** prebuild: a prebuilt binary is in use (not a source build); reason: why that file. */
  build: { variant: 'cpu' | 'cuda' | null; addon: string | null; addonKind: string | null; prebuild: boolean | null; reason: string | null; torchVersion: string | null };
  cuda: {
    compiled: boolean; version: string | null; driverVersion: string | null; available: boolean; reason: string | null;
    deviceCount: number; devices: CudaDeviceInfo[]; memory: CudaMemoryStats[];
  };
  devices: string[];
  threads: { intraOp: number; interOp: number; openmp: boolean; mkl: boolean; mkldnn: boolean } | null;
  error?: string;
}

export function doctorReport(): DoctorReport {
  const choice = readLibtorchChoice();
  const base: DoctorReport = {
    ok: false,
    medtune: packageVersion(),
    node: process.version,
    libtorch: { version: choice?.version ?? null, source: choice?.source ?? null, dir: choice?.dir ?? null, reason: choice?.reason ?? null },
    build: { variant: null, addon: null, addonKind: null, prebuild: null, reason: null, torchVersion: null },
    cuda: { compiled: false, version: null, driverVersion: null, available: false, reason: null, deviceCount: 0, devices: [], memory: [] },
    devices: [],
    threads: null,
  };
  let env: Environment;
  try {
    native();
    env = environment();
  } catch (err) {
    return { ...base, error: (err as Error).message };
  }
  const cudaDevices = native().cudaDevices();
  const status = cudaStatus();
  const lt = env.libtorch;
  return {
    ...base,
    ok: true,
    // The libtorch in use: the install-time choice, or the one discovered at load.
    libtorch: lt ? { version: lt.version, source: lt.source, dir: lt.dir, reason: lt.reason } : { ...base.libtorch, version: base.libtorch.version ?? env.build.torchVersion },
    build: {
      variant: env.build.variant, addon: env.addon?.file ?? null, addonKind: env.addon?.kind ?? null,
      prebuild: env.build.prebuild, reason: env.addon?.reason ?? null, torchVersion: env.build.torchVersion,
    },
    cuda: {
      compiled: status.compiled,
      version: env.build.cudaVersion,
      driverVersion: status.driverVersion,
      available: env.runtime.cudaAvailable,
      reason: status.reason,
      deviceCount: env.runtime.cudaDeviceCount,
      devices: cudaDevices,
      memory: memoryStatsAll(),
    },
    devices: ['cpu', ...cudaDevices.map((d) => `cuda:${d.index}`)],
    threads: { intraOp: env.runtime.numThreads, interOp: env.runtime.interopThreads, openmp: env.runtime.openmp, mkl: env.runtime.mkl, mkldnn: env.runtime.mkldnn },
  };
}

function printHuman(r: DoctorReport): void {
  const row = (k: string, v: string) => console.log(`${k.padEnd(10)} ${v}`);
  row('medtune', `${r.medtune} on Node ${r.node}`);
  row('libtorch', r.libtorch.version ? `${r.libtorch.version} from ${r.libtorch.source}: ${r.libtorch.reason}` : 'unknown (build/libtorch.json missing)');
  if (r.libtorch.dir) row('', r.libtorch.dir);
  if (!r.ok) {
    console.log(`\n${r.error}`);
    return;
  }
  row('addon', r.build.addon ?? '?');
  const how = r.build.prebuild ? 'prebuilt binary' : r.build.addonKind === 'env' ? 'MEDTUNE_ADDON, built from source' : 'built from source';
  row('', `${how}${r.build.reason ? `: ${r.build.reason}` : ''}`);
  row('variant', r.build.variant === 'cuda' ? `cuda (CUDA ${r.cuda.version}${r.cuda.driverVersion ? `, driver ${r.cuda.driverVersion}` : ''})` : 'cpu (CUDA not compiled in)');
  const gpus = r.cuda.devices.map((d) => `cuda:${d.index} ${d.name} ${(d.totalMemory / 2 ** 30).toFixed(0)} GiB sm_${d.capability.replace('.', '')}`);
  row('devices', ['cpu', ...gpus].join(', '));
  if (r.cuda.compiled && !r.cuda.available) row('', `CUDA is compiled in, but ${r.cuda.reason ?? 'no CUDA device is visible'}; check the NVIDIA driver and CUDA_VISIBLE_DEVICES`);
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;
  for (const m of r.cuda.memory) row(m === r.cuda.memory[0] ? 'memory' : '', `cuda:${m.device} allocated ${gib(m.allocated)} (peak ${gib(m.peakAllocated)}), reserved ${gib(m.reserved)}`);
  const t = r.threads!;
  row('threads', `${t.intraOp} intra-op, ${t.interOp} inter-op; ${[t.openmp && 'OpenMP', t.mkl && 'MKL', t.mkldnn && 'oneDNN'].filter(Boolean).join(', ')}`);
}

export const doctor: Command = {
  name: 'doctor',
  summary: 'Show which libtorch medtune uses, its build variant and the devices it sees',
  usage: 'medtune doctor [--json]',
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } } });
    const report = doctorReport();
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else printHuman(report);
    return report.ok ? 0 : 1;
  },
};
