"""Loads a model directory with transformers and runs one forward pass.

Usage: hf_forward.py MODEL_DIR INPUTS.safetensors OUTPUTS.safetensors
The architecture is config.json's first "architectures" entry. Inputs are passed as keyword
arguments by name (pixel_values, input_ids, attention_mask, labels); outputs written: logits,
loss (when labels were given), and the sorted parameter names under "names" in the metadata.
Used to prove that directories medtune writes load in PyTorch with the same results.
"""
import json
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file

model_dir, inputs_path, outputs_path = sys.argv[1:4]
with open(f"{model_dir}/config.json") as f:
    arch = json.load(f)["architectures"][0]
model = getattr(transformers, arch).from_pretrained(model_dir).eval()
inputs = load_file(inputs_path)
with torch.no_grad():
    out = model(**inputs)
result = {"logits": out.logits.float().contiguous()}
if getattr(out, "loss", None) is not None:
    result["loss"] = out.loss.reshape(1).float()
save_file(result, outputs_path, metadata={"names": json.dumps(sorted(model.state_dict().keys())), "dtype": str(model.dtype)})
print("ok")
