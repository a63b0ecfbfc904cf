"""Loads model directories with transformers and runs one forward pass each.

Usage: hf_forward.py MODEL_DIR INPUTS.safetensors OUTPUTS.safetensors [MODEL_DIR INPUTS OUTPUTS ...]
The architecture is config.json's first "architectures" entry. Inputs are passed as keyword
arguments by name (pixel_values, input_ids, attention_mask, labels); outputs written: logits (or
last_hidden_state for backbones) and loss when labels were given. Used to prove that directories
medtune writes load in PyTorch with the same results. Several triples share one interpreter start.
"""
import json
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file

args = sys.argv[1:]
if len(args) % 3 != 0 or not args:
    raise SystemExit("usage: hf_forward.py MODEL_DIR INPUTS OUTPUTS [...]")
for model_dir, inputs_path, outputs_path in zip(args[0::3], args[1::3], args[2::3]):
    with open(f"{model_dir}/config.json") as f:
        arch = json.load(f)["architectures"][0]
    model = getattr(transformers, arch).from_pretrained(model_dir).eval()
    inputs = load_file(inputs_path)
    with torch.no_grad():
        out = model(**inputs)
    result = {}
    if getattr(out, "logits", None) is not None:
        result["logits"] = out.logits.float().contiguous()
    if getattr(out, "last_hidden_state", None) is not None:
        result["last_hidden_state"] = out.last_hidden_state.float().contiguous()
    if getattr(out, "loss", None) is not None:
        result["loss"] = out.loss.reshape(1).float()
    save_file(result, outputs_path, metadata={"dtype": str(model.dtype)})
print("ok")
