// FLOPs per training step for the scale table's MFU, counted the usual way (Kaplan et al.; the
// PaLM paper's appendix B without the attention term): per token that passes a part of the model,
// 2N for the forward, 2N for the backward to the activations and 2T for the weight gradients,
// where N is the part's matrix parameters (Linear / conv weights and the LM head: the ones that
// multiply every token) and T those of them that train (LoRA's A and B included). Embedding
// tables, norms and biases do no matrix work and are left out; so is attention's
// sequence-length-squared term (at 1024 tokens it is about 6 % of Mistral-7B's forward).
// The vision tower sees (patches + 1) tokens per image, the projector the patches, the language
// model every token of the sequence (image features included).

export interface PartCount {
  /** Matrix parameters of the part. */
  matrix: number;
  /** Of them, the trained ones. */
  trainedMatrix: number;
}

export interface FlopsInput {
  vision: PartCount;
  projector: PartCount;
  language: PartCount;
  batch: number;
  /** Tokens per sequence the language model sees (image features included). */
  seqLen: number;
  /** Image features per image (patches without CLS) and tokens through the tower (patches + CLS). */
  imageTokens: number;
  visionTokens: number;
}

export function stepFlops(x: FlopsInput): number {
  const part = (p: PartCount, tokens: number) => tokens * (4 * p.matrix + 2 * p.trainedMatrix);
  return x.batch * (part(x.vision, x.visionTokens) + part(x.projector, x.imageTokens) + part(x.language, x.seqLen));
}

/** H100 SXM dense bf16 peak (the flag the table is read against). */
export const H100_BF16_PEAK = 989e12;

/** Model FLOPs utilisation of `flopsPerStep` done every `stepSeconds` against `peak` FLOP/s. */
export function mfu(flopsPerStep: number, stepSeconds: number, peak = H100_BF16_PEAK): number {
  return flopsPerStep / stepSeconds / peak;
}

/** Matrix parameters by part, from a parameter list (names as the original LLaVA-Med layout has them). */
export function countMatrices(params: { name: string; shape: number[]; numel: number; requiresGrad: boolean; part: string; kind: string }[]): { vision: PartCount; projector: PartCount; language: PartCount } {
  const out = { vision: { matrix: 0, trainedMatrix: 0 }, projector: { matrix: 0, trainedMatrix: 0 }, language: { matrix: 0, trainedMatrix: 0 } };
  for (const p of params) {
    // Matrices that multiply tokens: Linear weights (2-d), the patch conv (4-d), LoRA's A / B; not
    // embedding tables (a lookup) nor position embeddings.
    const isMatrix = (p.shape.length === 2 || p.shape.length === 4) && p.kind !== 'embedding' && p.kind !== 'position_embedding';
    if (!isMatrix) continue;
    const part = p.part === 'vision' ? out.vision : p.part === 'projector' ? out.projector : out.language;
    part.matrix += p.numel;
    if (p.requiresGrad) part.trainedMatrix += p.numel;
  }
  return out;
}
