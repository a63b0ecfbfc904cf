// medtune's training layer: optimizers and schedules with PyTorch's numerics, parameter groups,
// the trainer (one native job per optimizer step), checkpoints, logs; the CLI only drives it.
export { createOptimizer, clipGradNorm, totalGradNorm, Optimizer, DEFAULT_LR, type AdamWOptions, type SGDOptions, type OptimizerSpec, type ParamGroup, type NamedTensor, type OptimizerCreateOptions } from './optimizer.ts';
export { LrSchedule, scheduleFactor, warmupSteps, SCHEDULES, isScheduleName, type ScheduleName, type ScheduleSpec } from './schedule.ts';
export { buildParamGroups, isNoDecay, layerId, countLayers, NO_DECAY_RULES, type NoDecayRule, type TrainableParam, type GroupingOptions, type ResolvedGroup } from './param-groups.ts';
export { resolveTrainConfig, DEFAULT_TRAIN_CONFIG, TrainConfigError, type TrainConfig, type TaskName, type OptimizerName, type TrainDType } from './config.ts';
export { TensorFileDataset, datasetFromLoader, type TrainDataset, type LossScaling, type ItemLoader } from './dataset.ts';
export { epochOrder, microBatches, accumulationWindows, stepsPerEpoch } from './data-order.ts';
export { train, buildOptimizer, evaluateLoss, trainableParameterLine, TrainingDivergedError, TRAINING_CONFIG_FILE, MAX_CONSECUTIVE_SKIPPED_STEPS, type TrainerOptions, type TrainResult, type StepTiming } from './trainer.ts';
export {
  saveCheckpoint, loadCheckpoint, readTrainerState, listCheckpoints, pruneCheckpoints, checkpointDir, trainableTensorsIO, CheckpointError,
  TRAINABLE_FILE, OPTIMIZER_FILE, RNG_FILE, TRAINER_STATE_FILE, type TrainerState, type TrainedWeightsIO,
} from './checkpoint.ts';
export { JsonlLog, type StepRecord, type EvalRecord } from './step-log.ts';
export { defaultProgress, TerminalProgress, LineProgress, silentProgress, formatStepLine, type ProgressSink, type ProgressSample } from './progress.ts';
export { fineTune, type FineTuneOptions } from './run.ts';
export { openTrainingData, type DataSourceOptions } from './data-source.ts';
export { VlmDataset, type VlmDataOptions } from './vlm-data.ts';
export { ClassificationDataset, checkLabels, modelLabelNames, type ClassificationDataOptions } from './classification-data.ts';
export { llavaPromptFormat, llavaImageTokens, llavaPreprocessor, CONV_TEMPLATE_CHOICES, type ConvTemplateChoice } from './llava-inputs.ts';
export {
  setupMixedPrecision, computeDType, GradScalerState, GRAD_SCALER_DEFAULTS, type MixedPrecision, type ComputeDType, type GradScalerConfig, type GradScalerSnapshot,
} from './mixed-precision.ts';
