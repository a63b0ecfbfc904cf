// What `npm start`'s LN-tuning changed, in answers rather than loss: greedy answers of the tiny
// LLaVA to the bundled set's held-out questions (VQA-RAD's test split: every eighth image), before
// and after loading the trained LayerNorm tensors. Exact match of the first answer word, which is
// all this set's answers are (yes / no / left / right / none).
import { readVqaRad } from '../../lib/data/formats/vqa.ts';
import { loadPixels } from '../../lib/data/pipelines.ts';
import { loadTokenizer } from '../../lib/data/text/tokenizer.ts';
import { VlmExampleBuilder } from '../../lib/data/text/vlm-examples.ts';
import { loadModel } from '../../lib/models/index.ts';
import { loadAdapter } from '../../lib/peft/index.ts';
import { tensor, tidy } from '../../lib/torch/index.ts';
import { llavaImageTokens, llavaPreprocessor, llavaPromptFormat } from '../../lib/train/llava-inputs.ts';

export async function heldOutAnswers(modelDir: string, dataFile: string, imageRoot: string, trained: string | null): Promise<{ correct: number; total: number }> {
  const model = await loadModel(modelDir);
  try {
    if (trained) await loadAdapter(model, trained);
    const tokenizer = loadTokenizer(modelDir);
    const builder = new VlmExampleBuilder(tokenizer, llavaPromptFormat(model, tokenizer), llavaImageTokens(model, tokenizer), { processorSpecialTokens: true });
    const { preprocessor } = llavaPreprocessor(model, modelDir);
    const examples = readVqaRad(dataFile, { split: 'test' }).examples;
    let correct = 0;
    for (const e of examples) {
      const ids = await builder.promptIds(e);
      const pixels = await loadPixels(e.image!, e.source, { imageRoot, preprocessor });
      const answer = await tidy(async () => {
        const batch = {
          input_ids: tensor(BigInt64Array.from(ids, BigInt), { shape: [1, ids.length] }),
          attention_mask: tensor(new BigInt64Array(ids.length).fill(1n), { shape: [1, ids.length] }),
          pixel_values: tensor(pixels.data, { shape: [1, ...pixels.shape] }),
        };
        const { tokens } = await model.generate(batch, { maxNewTokens: 1 });
        return tokenizer.decode(tokens.toNumbers(), true);
      });
      if (answer.trim().toLowerCase() === e.conversations[1]!.value.trim().toLowerCase()) correct++;
    }
    return { correct, total: examples.length };
  } finally {
    model.dispose();
  }
}

