// medtune's public API, one namespace per layer (see README "Layout"): import what you need from
// the layer, e.g. `import { torch, models, train } from 'medtune'` or the layer's own index.ts.
export * as torch from './torch/index.ts';
export * as io from './io/index.ts';
export * as models from './models/index.ts';
export * as peft from './peft/index.ts';
export * as train from './train/index.ts';
export * as evaluation from './eval/index.ts';
export * as compare from './compare/index.ts';
