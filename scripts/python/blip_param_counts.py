"""Trainable-parameter counts of BLIP VQA tuning methods, counted on transformers' model and peft.

Usage: blip_param_counts.py CONFIG_JSON [LORA_R]
CONFIG_JSON is a BlipConfig (config.json). The model is built on the meta device (no memory, no
download). Prints JSON {method: {scope: count}, total} for
  ln    every nn.LayerNorm (LN-tuning)
  ffn   the feed-forward projections: vision mlp.fc1/fc2, text intermediate.dense / output.dense
  attn  attention projections: vision qkv + projection, text query/key/value + attention output
        dense, self- and cross-attention
  lora  peft LoraConfig(r, lora_alpha=r, target_modules=['query', 'value']) on the text towers,
        plus LoRA on the q and v thirds of each vision qkv (what loralib's MergedLinear adds)
  full  every parameter
for scopes all, vision (vision_model), text (text_encoder), decoder (text_decoder).
"""
import json
import sys

import torch
from peft import LoraConfig, get_peft_model
from transformers import BlipConfig, BlipForQuestionAnswering

cfg = json.load(open(sys.argv[1]))
r = int(sys.argv[2]) if len(sys.argv) > 2 else 8
for k in ("decoder_loss", "medtune_layout"):
    cfg.pop(k, None)
with torch.device("meta"):
    model = BlipForQuestionAnswering(BlipConfig(**cfg))

SCOPES = {"all": "", "vision": "vision_model.", "text": "text_encoder.", "decoder": "text_decoder."}


def kind(name, module):
    if isinstance(module, torch.nn.LayerNorm):
        return "ln"
    if name.startswith("vision_model.") and (".mlp.fc1" in name or ".mlp.fc2" in name):
        return "ffn"
    if ".intermediate.dense" in name or (".output.dense" in name and "attention.output" not in name):
        return "ffn"
    if ".self_attn." in name or ".attention.self." in name or ".attention.output.dense" in name or "crossattention.self." in name \
            or "crossattention.output.dense" in name:
        return "attn"
    return None


counts = {m: {s: 0 for s in SCOPES} for m in ("ln", "ffn", "attn", "lora", "full")}
seen = set()
for mname, module in model.named_modules():
    for pname, p in module.named_parameters(recurse=False):
        full = f"{mname}.{pname}" if mname else pname
        if id(p) in seen:
            continue
        seen.add(id(p))
        k = kind(mname, module)
        for s, prefix in SCOPES.items():
            if full.startswith(prefix):
                counts["full"][s] += p.numel()
                if k:
                    counts[k][s] += p.numel()

peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=r, target_modules=["query", "value"]))
for name, p in peft_model.named_parameters():
    if "lora_" in name:
        for s, prefix in SCOPES.items():
            if name.replace("base_model.model.", "").startswith(prefix):
                counts["lora"][s] += p.numel()
vision = cfg.get("vision_config", {})
width, layers = vision.get("hidden_size", 768), vision.get("num_hidden_layers", 12)
qv = layers * 2 * r * (width + width)  # per block: q and v thirds, each A (r x in) + B (out/3 x r)
counts["lora"]["vision"] += qv
counts["lora"]["all"] += qv
print(json.dumps({"counts": counts, "total": counts["full"]["all"]}))
