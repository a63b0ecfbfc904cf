"""transformers' training batch for LLaVA from a VQA-RAD-style file, and the model's loss on it.

Usage: llava_batch_reference.py MODEL_DIR DATA_JSON IMAGE_DIR INDICES_JSON

Each record becomes the conversation LLaVA-Med converts VQA-RAD to (user: '<image>\\n' + question,
assistant: answer), as chat messages with typed parts ({'type': 'image'} where '<image>' stood,
then the rest of the text). The batch is what LlavaProcessor.apply_chat_template makes of the
conversations with their images (tokenize=True, padding to the longest on the right, the
processor's BOS rule, <image> expanded, CLIPImageProcessor pixels). Labels, as a supervised
fine-tuning collator sets them: -100 up to the end of the prompt (the same call on the user turn
with add_generation_prompt=True) and on padding; the answer (and what the template puts after it)
supervised. Prints JSON: input_ids, attention_mask, labels, pixel_values (flat) and shape, and
the model's loss on the batch (float32, CPU).
"""
import json
import os
import sys

import torch
from PIL import Image
from transformers import AutoProcessor, LlavaForConditionalGeneration


def messages_of(question, answer, image):
    parts = []
    for i, chunk in enumerate(f"<image>\n{question.strip()}".split("<image>")):
        if i > 0:
            parts.append({"type": "image", "image": image})
        if chunk:
            parts.append({"type": "text", "text": chunk})
    return [{"role": "user", "content": parts}, {"role": "assistant", "content": [{"type": "text", "text": answer.strip()}]}]


def main(model_dir, data_file, image_dir, indices_json):
    processor = AutoProcessor.from_pretrained(model_dir)
    records = json.load(open(data_file))
    indices = json.loads(indices_json)
    convs, prompt_lengths = [], []
    for i in indices:
        r = records[i]
        image = Image.open(os.path.join(image_dir, r["image_name"]))
        msgs = messages_of(r["question"], r["answer"], image)
        convs.append(msgs)
        prompt = processor.apply_chat_template(msgs[:1], add_generation_prompt=True, tokenize=True, return_dict=True)
        prompt_lengths.append(len(prompt["input_ids"][0]))
    batch = processor.apply_chat_template(convs, tokenize=True, return_dict=True, padding=True, return_tensors="pt")
    labels = batch["input_ids"].clone()
    for row, n in enumerate(prompt_lengths):
        labels[row, :n] = -100
    labels[batch["attention_mask"] == 0] = -100
    model = LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], pixel_values=batch["pixel_values"], labels=labels)
    print(json.dumps({
        "input_ids": batch["input_ids"].tolist(),
        "attention_mask": batch["attention_mask"].tolist(),
        "labels": labels.tolist(),
        "pixel_values": batch["pixel_values"].flatten().tolist(),
        "pixel_shape": list(batch["pixel_values"].shape),
        "prompt_lengths": prompt_lengths,
        "loss": out.loss.item(),
    }))


if __name__ == "__main__":
    main(*sys.argv[1:5])
