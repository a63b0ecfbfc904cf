"""A tiny ViT chest X-ray classifier and a small NIH ChestX-ray14-style dataset, for the trainer's
parity tests.

Writes into OUT_DIR:
  model/                   ViTForImageClassification (transformers save_pretrained, safetensors),
                           14 NIH labels, problem_type multi_label_classification
  Data_Entry_2017.csv      NIH layout: Image Index, Finding Labels ('A|B' or 'No Finding'), ...
  images/<Image Index>     32x32 grayscale PNGs
  train.safetensors        the same examples pre-processed: pixel_values [N, 3, 32, 32] (gray to
                           RGB, /255, normalised with mean 0.5 / std 0.5 as ViTImageProcessor does)
                           and multi-hot labels [N, 14]; metadata label_names
  nan.safetensors          train.safetensors with NaN pixels in example 9 (divergence test)

Usage: make_vit_nih_fixture.py OUT_DIR
"""

import csv
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import ViTConfig, ViTForImageClassification

NIH_LABELS = [
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
]
N = 24
SIZE = 32


def main(out):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    config = ViTConfig(
        image_size=SIZE, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, hidden_act="gelu", layer_norm_eps=1e-12, qkv_bias=True,
        num_labels=len(NIH_LABELS), problem_type="multi_label_classification",
        id2label={i: n for i, n in enumerate(NIH_LABELS)}, label2id={n: i for i, n in enumerate(NIH_LABELS)},
    )
    model = ViTForImageClassification(config)
    model.save_pretrained(os.path.join(out, "model"), safe_serialization=True)
    with open(os.path.join(out, "model", "preprocessor_config.json"), "w") as f:
        json.dump({"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": SIZE, "width": SIZE},
                   "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
                   "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}, f, indent=2)

    os.makedirs(os.path.join(out, "images"))
    rows, pixels, labels = [], [], []
    for i in range(N):
        name = f"{i // 3 + 1:08d}_{i % 3:03d}.png"
        findings = sorted(rng.choice(len(NIH_LABELS), size=int(rng.integers(0, 3)), replace=False).tolist())
        # Findings leave a trace in the image (a bright patch per finding), so training can learn.
        img = rng.integers(0, 120, size=(SIZE, SIZE)).astype(np.uint8)
        for f in findings:
            r, c = divmod(f, 4)
            img[r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] = 230
        Image.fromarray(img, mode="L").save(os.path.join(out, "images", name))
        rows.append({
            "Image Index": name, "Finding Labels": "|".join(NIH_LABELS[f] for f in findings) or "No Finding",
            "Follow-up #": i % 3, "Patient ID": i // 3 + 1, "Patient Age": 40 + i, "Patient Gender": "MF"[i % 2],
            "View Position": "PA", "OriginalImage[Width": SIZE, "Height]": SIZE,
            "OriginalImagePixelSpacing[x": 0.143, "y]": 0.143,
        })
        x = torch.from_numpy(np.asarray(Image.open(os.path.join(out, "images", name)).convert("RGB"), dtype=np.float32))
        pixels.append(((x / 255.0 - 0.5) / 0.5).permute(2, 0, 1))
        y = torch.zeros(len(NIH_LABELS))
        y[findings] = 1.0
        labels.append(y)
    with open(os.path.join(out, "Data_Entry_2017.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    meta = {"label_names": json.dumps(NIH_LABELS), "source": "Data_Entry_2017.csv"}
    pixel_values = torch.stack(pixels).contiguous()
    save_file({"pixel_values": pixel_values, "labels": torch.stack(labels)}, os.path.join(out, "train.safetensors"), metadata=meta)
    bad = pixel_values.clone()
    bad[9, 0, 0, 0] = float("nan")
    save_file({"pixel_values": bad, "labels": torch.stack(labels)}, os.path.join(out, "nan.safetensors"), metadata=meta)


if __name__ == "__main__":
    main(sys.argv[1])
