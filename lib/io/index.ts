// medtune's file formats: safetensors (native, memory-mapped), safe loading of torch.save
// checkpoints, atomic writes.
export {
  loadTorchCheckpoint, inspectTorchCheckpoint,
  type TorchCheckpoint, type TorchCheckpointReport, type TorchLoadOptions, type TensorReportEntry,
} from './torch-checkpoint.ts';
export { convertTorchCheckpoint, type ConvertOptions, type ConvertResult } from './convert.ts';
export {
  loadSafetensors, saveSafetensors, readSafetensorsHeader,
  type SafetensorsHeader, type SafetensorsTensorInfo, type LoadSafetensorsOptions,
} from './safetensors.ts';
export { CheckpointError, type CheckpointErrorCode } from './errors.ts';
export { detectLayout, type DetectedLayout } from './checkpoint-layout.ts';
export { writeFileAtomic, writeFileAtomicSync, writeTextAtomic } from './atomic-write.ts';
