// .pth -> safetensors: the weights of a torch.save checkpoint, loaded safely, written as
// model.safetensors (HF's file name, with format=pt metadata so transformers accepts it) next to
// a JSON report of what was found, converted and left out.
import { mkdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { tidy } from '../torch/scope.ts';
import { writeTextAtomic } from './atomic-write.ts';
import { saveSafetensors } from './safetensors.ts';
import { loadTorchCheckpoint, type TorchCheckpointReport, type TorchLoadOptions } from './torch-checkpoint.ts';

export interface ConvertOptions extends TorchLoadOptions {
  /** Output file name inside the directory (default model.safetensors). */
  fileName?: string;
  /** Replace existing output files (default false: an existing output is an Error). */
  overwrite?: boolean;
}

export interface ConvertResult {
  safetensors: string;
  reportFile: string;
  report: TorchCheckpointReport;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false);
}

/** Converts `input` into `outDir`/model.safetensors plus `outDir`/convert-report.json. */
export async function convertTorchCheckpoint(input: string, outDir: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  const safetensors = join(outDir, opts.fileName ?? 'model.safetensors');
  const reportFile = join(outDir, 'convert-report.json');
  if (!opts.overwrite) {
    for (const f of [safetensors, reportFile])
      if (await exists(f)) throw new Error(`${f} already exists (pass overwrite / --force to replace it)`);
  }
  await mkdir(outDir, { recursive: true });
  return tidy(async () => {
    const { tensors, report } = await loadTorchCheckpoint(input, opts);
    await saveSafetensors(safetensors, tensors, { format: 'pt', source: basename(input) });
    await writeTextAtomic(reportFile, `${JSON.stringify({ ...report, output: safetensors }, null, 2)}\n`);
    return { safetensors, reportFile, report };
  });
}
