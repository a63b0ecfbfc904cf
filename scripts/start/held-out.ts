// What `npm start`'s LN-tuning changed, in answers rather than loss: greedy answers of the tiny
// LLaVA to the bundled set's held-out questions (VQA-RAD's test split: every eighth image), before
// and after loading the trained LayerNorm tensors. Exact match of the first answer word, which is
// all this set's answers are (yes / no / left / right / none).
import { readVqaRad } from '../../lib/data/formats/vqa.ts';
import { generateLlava, llavaSetup } from '../../lib/eval/run/index.ts';
import { loadModel } from '../../lib/models/index.ts';
import { loadAdapter } from '../../lib/peft/index.ts';

export async function heldOutAnswers(modelDir: string, dataFile: string, imageRoot: string, trained: string | null): Promise<{ correct: number; total: number }> {
  const model = await loadModel(modelDir);
  try {
    if (trained) await loadAdapter(model, trained);
    // The prompts, pixels and greedy decoding `medtune eval` uses, one new token per answer.
    const examples = readVqaRad(dataFile, { split: 'test' }).examples;
    const predictions = await generateLlava(model, examples, llavaSetup(model, modelDir), { imageRoot, maxNewTokens: 1 });
    const answers = new Map(examples.map((e) => [e.id, e.conversations[1]!.value.trim().toLowerCase()]));
    const correct = predictions.filter((p) => p.prediction.trim().toLowerCase() === answers.get(p.id)).length;
    return { correct, total: examples.length };
  } finally {
    model.dispose();
  }
}
