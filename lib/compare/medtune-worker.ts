// The medtune side of `medtune compare` in a process of its own, so that its peak memory
// (getrusage) is the training's alone: `node --import tsx medtune-worker.ts JOB.json`.
import { readFileSync } from 'node:fs';
import { runMedtuneJob } from './medtune-side.ts';
import type { MedtuneJob } from './types.ts';

const jobFile = process.argv[2];
if (!jobFile) {
  console.error('usage: medtune-worker.ts JOB.json');
  process.exit(2);
}
try {
  await runMedtuneJob(JSON.parse(readFileSync(jobFile, 'utf8')) as MedtuneJob);
} catch (err) {
  console.error((err as Error).message);
  if (process.env['MEDTUNE_DEBUG']) console.error((err as Error).stack);
  process.exit(1);
}
