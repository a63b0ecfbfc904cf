// `medtune compare`: the same run in medtune and in PyTorch (transformers + peft), compared.
export { BatchReplayError, exportBatches, ReplayDataset, type ExportedBatches } from './batches.ts';
export { lossChartPng, lossChartSpec, renderSvg } from './chart.ts';
export { prepareCompare, type Prepared } from './prepare.ts';
export { referencePython, ReferenceError, runPythonSide, type InitWeights, type PythonJob } from './python-side.ts';
export { buildReport, defaultTolerance, relDiff, renderMarkdown, type CompareReport, type StepComparison } from './report.ts';
export { runCompare, type CompareOptions, type CompareResult } from './run.ts';
export { runMedtuneSide } from './medtune-side.ts';
export type { MedtuneJob, SideResult, SideStep } from './types.ts';
