"""PyTorch side of `medtune eval`'s classifier test: sigmoid scores of a transformers image
classifier on the images of an NIH-style CSV, preprocessed by the checkpoint's image processor.

Usage: eval_reference.py classify MODEL_DIR Data_Entry_2017.csv IMAGE_DIR
Prints JSON: {"labels": [...], "scores": {image_index: [p1, ...]}} (probabilities as float32 gives them).
"""
import csv
import json
import os
import sys

import torch
from PIL import Image
from transformers import AutoImageProcessor, AutoModelForImageClassification


def classify(model_dir, csv_file, image_dir):
    model = AutoModelForImageClassification.from_pretrained(model_dir).eval()
    proc = AutoImageProcessor.from_pretrained(model_dir)
    with open(csv_file, newline="") as f:
        names = [row["Image Index"] for row in csv.DictReader(f)]
    scores = {}
    for name in names:
        pixels = proc(Image.open(os.path.join(image_dir, name)).convert("RGB"), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            scores[name] = torch.sigmoid(model(pixel_values=pixels).logits)[0].tolist()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return {"labels": labels, "scores": scores}


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd != "classify":
        raise SystemExit(f"unknown command {cmd}")
    print(json.dumps(classify(*args)))
