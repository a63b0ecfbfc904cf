// Running models on test sets: LLaVA answers, BLIP (MISS) answers and reports, ViT scores; what
// `medtune eval` calls. The metrics themselves are lib/eval's.
export { evaluate, evaluationJson, PREDICTIONS_FILE, METRICS_FILE, DEFAULT_REPORT_PROMPT, type EvaluateOptions, type EvaluateResult } from './evaluate.ts';
export { loadEvalModel, AdapterMismatchError, type EvalModel, type EvalModelOptions } from './load.ts';
export { llavaSetup, generateLlava, untilStop, PROMPT_STYLES, type LlavaSetup, type PromptStyle, type TextPrediction } from './llava.ts';
export { classifierPreprocessor, scoreClassifier, type ScorePrediction } from './classify.ts';
export { evaluateBlip, predictBlip, MISS_VQA_DECODING, REPORT_DECODING, type BlipEvalData, type BlipEvalResult, type BlipPrediction } from './blip.ts';
