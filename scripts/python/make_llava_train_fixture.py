"""A tiny llava-hf LLaVA (LLaMA text with GQA, CLIP vision tower) and VQA-style training batches,
for the trainer's parity test with token-level losses.

Writes into OUT_DIR:
  model/             LlavaForConditionalGeneration (transformers save_pretrained, safetensors)
  train.safetensors  12 examples, each: an image (pixel_values [3, 8, 8]); input_ids = a question
                     prompt holding the 4 image tokens, then an answer of 1 to 6 tokens; labels -100
                     on the prompt and image tokens (the answer is supervised); right-padded to 16
                     with attention_mask 0 and labels -100. Answers of different lengths make the
                     supervised-token count differ between micro-batches, which is what token-level
                     loss scaling under gradient accumulation is about.

Usage: make_llava_train_fixture.py OUT_DIR
"""
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

VOCAB = 96
IMG = 95  # image token id
IMAGE_TOKENS = 4
SEQ = 16
N = 12


def main(out):
    torch.manual_seed(0)
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=8, patch_size=4)
    text = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=64, pad_token_id=0)
    model = LlavaForConditionalGeneration(LlavaConfig(vision_config=vision, text_config=text, image_token_index=IMG,
                                                      image_seq_length=IMAGE_TOKENS))
    with torch.no_grad():  # away from the init's symmetric values, so every part has gradients of its own
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.save_pretrained(os.path.join(out, "model"), safe_serialization=True)

    g = torch.Generator().manual_seed(1)
    ids = torch.zeros(N, SEQ, dtype=torch.long)
    labels = torch.full((N, SEQ), -100, dtype=torch.long)
    mask = torch.zeros(N, SEQ, dtype=torch.long)
    for i in range(N):
        question = torch.randint(3, IMG, (int(torch.randint(2, 5, (1,), generator=g)),), generator=g)
        answer = torch.randint(3, IMG, (int(torch.randint(1, 7, (1,), generator=g)),), generator=g)
        prompt = torch.cat([torch.tensor([1]), torch.full((IMAGE_TOKENS,), IMG), question])
        row = torch.cat([prompt, answer, torch.tensor([2])])  # answer then end-of-sequence, both supervised
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
        labels[i, len(prompt):len(row)] = row[len(prompt):]
    pixels = torch.randn(N, 3, 8, 8, generator=g)
    save_file({"input_ids": ids, "attention_mask": mask, "labels": labels, "pixel_values": pixels},
              os.path.join(out, "train.safetensors"), metadata={"loss_scaling": "tokens"})


if __name__ == "__main__":
    main(sys.argv[1])
