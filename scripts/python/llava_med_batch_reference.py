"""LLaVA-Med's training inputs for VQA-RAD-style records (original LLaVA layout, no chat template).

Usage: llava_med_batch_reference.py MODEL_DIR DATA_JSON IMAGE_DIR INDICES_JSON TEMPLATES
(TEMPLATES: comma-separated conversation templates; one batch each)

Text as LLaVA-Med prepares it (make_tokenizers.py's conv_example: the conversation template
rendered from llava/conversation.py's definition, '<image>' moved to the front of the first
turn, BOS + tokenizer_image_token's -200 placeholder, everything up to each answer -100),
right-padded with the tokenizer's pad token (labels -100, attention_mask 0). Pixels as LLaVA's
train.py with image_aspect_ratio 'pad': expand2square with the image processor's mean colour,
then the vision tower's CLIPImageProcessor (MODEL_DIR/<mm_vision_tower>). Prints JSON, by template:
input_ids, attention_mask, labels, pixel_values (flat), pixel_shape.
"""
import json
import os
import sys

import torch
from PIL import Image
from transformers import AutoTokenizer, CLIPImageProcessor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizers import conv_example  # noqa: E402


def expand2square(img, background):
    """LLaVA's llava/mm_utils.py expand2square."""
    width, height = img.size
    if width == height:
        return img
    side = max(width, height)
    result = Image.new(img.mode, (side, side), background)
    result.paste(img, (0, (width - height) // 2) if width > height else ((height - width) // 2, 0))
    return result


def batch(model_dir, data_file, image_dir, indices_json, template):
    tok = AutoTokenizer.from_pretrained(model_dir)
    config = json.load(open(os.path.join(model_dir, "config.json")))
    processor = CLIPImageProcessor.from_pretrained(os.path.join(model_dir, config["mm_vision_tower"]))
    records = json.load(open(data_file))
    rows, pixels = [], []
    for i in json.loads(indices_json):
        r = records[i]
        conv = [{"from": "human", "value": f"<image>\n{r['question'].strip()}"}, {"from": "gpt", "value": r["answer"].strip()}]
        rows.append(conv_example(tok, conv, template))
        image = Image.open(os.path.join(image_dir, r["image_name"])).convert("RGB")
        image = expand2square(image, tuple(int(x * 255) for x in processor.image_mean))
        pixels.append(processor.preprocess(image, return_tensors="pt")["pixel_values"][0])
    length = max(len(r["input_ids"]) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.unk_token_id
    ids = [r["input_ids"] + [pad] * (length - len(r["input_ids"])) for r in rows]
    mask = [[1] * len(r["input_ids"]) + [0] * (length - len(r["input_ids"])) for r in rows]
    labels = [r["labels"] + [-100] * (length - len(r["labels"])) for r in rows]
    px = torch.stack(pixels)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "pixel_values": px.flatten().tolist(), "pixel_shape": list(px.shape)}


def main(model_dir, data_file, image_dir, indices_json, templates):
    print(json.dumps({t: batch(model_dir, data_file, image_dir, indices_json, t) for t in templates.split(",")}))


if __name__ == "__main__":
    main(*sys.argv[1:6])
