// medtune's file formats: safe loading of torch.save checkpoints, safetensors writing, atomic writes.
export {
  loadTorchCheckpoint, inspectTorchCheckpoint,
  type TorchCheckpoint, type TorchCheckpointReport, type TorchLoadOptions, type TensorReportEntry,
} from './torch-checkpoint.ts';
export { convertTorchCheckpoint, type ConvertOptions, type ConvertResult } from './convert.ts';
export { saveSafetensors, SAFETENSORS_DTYPE } from './safetensors-writer.ts';
export { CheckpointError, type CheckpointErrorCode } from './errors.ts';
export { detectLayout, type DetectedLayout } from './checkpoint-layout.ts';
export { writeFileAtomic, writeTextAtomic } from './atomic-write.ts';
