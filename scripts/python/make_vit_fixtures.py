"""Tiny ViT checkpoints in the HF and timm/MAE layouts, with PyTorch reference outputs.

Usage: make_vit_fixtures.py OUT_DIR
Writes, for each case, OUT_DIR/<case>/ (a model directory) and OUT_DIR/<case>.reference.safetensors
(the inputs and the outputs PyTorch computed from them):
  hf_classifier  ViTForImageClassification, 3 labels, multi-label (BCE) loss
  hf_model       ViTModel with its pooler (last_hidden_state, pooler_output)
  hf_sharded     the classifier saved in several shards with model.safetensors.index.json
  hf_bf16        the classifier saved in bfloat16; references from transformers in bf16 and fp32
  timm_mae       timm layout, global-average pooling + fc_norm (MAE fine-tuning), 3 labels
  timm_token     timm layout, token pooling + final norm, LayerScale, no qkv bias, single-label
Every parameter is perturbed away from its initial value so that a swapped weight/bias or a
norm left at ones would show.
"""
import json
import os
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timm_vit_reference import VisionTransformer  # noqa: E402

from transformers import ViTConfig, ViTForImageClassification, ViTModel  # noqa: E402

torch.manual_seed(0)
out_dir = sys.argv[1]


def perturb(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def save_reference(name, tensors):
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, os.path.join(out_dir, f"{name}.reference.safetensors"))


def hf_config(**extra):
    return ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=16, patch_size=8,
                     **extra)


pixels = torch.randn(2, 3, 16, 16)
multi_labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])

# --- HF classifier (multi-label) -----------------------------------------------------------------
cfg = hf_config(num_labels=3, problem_type="multi_label_classification")
clf = perturb(ViTForImageClassification(cfg)).eval()
clf.save_pretrained(os.path.join(out_dir, "hf_classifier"))
with torch.no_grad():
    out = clf(pixel_values=pixels, labels=multi_labels, output_hidden_states=True)
ref = {"pixel_values": pixels, "labels": multi_labels, "logits": out.logits, "loss": out.loss.reshape(1)}
for i, h in enumerate(out.hidden_states):
    ref[f"hidden_states.{i}"] = h
save_reference("hf_classifier", ref)

clf.save_pretrained(os.path.join(out_dir, "hf_sharded"), max_shard_size="20KB")
save_reference("hf_sharded", {"pixel_values": pixels, "logits": out.logits})

# --- bf16 copy: transformers' own bf16 forward, and fp32 from the bf16 file ----------------------
bf16_dir = os.path.join(out_dir, "hf_bf16")
clf.to(torch.bfloat16).save_pretrained(bf16_dir)
with torch.no_grad():
    logits_bf16 = clf(pixel_values=pixels.to(torch.bfloat16)).logits
    fp32_from_bf16 = ViTForImageClassification.from_pretrained(bf16_dir, dtype=torch.float32).eval()
    logits_fp32 = fp32_from_bf16(pixel_values=pixels).logits
save_reference("hf_bf16", {"pixel_values": pixels, "logits_bf16": logits_bf16, "logits_fp32": logits_fp32})

# --- HF ViTModel with pooler ---------------------------------------------------------------------
vm = perturb(ViTModel(hf_config())).eval()
vm.save_pretrained(os.path.join(out_dir, "hf_model"))
with torch.no_grad():
    out = vm(pixel_values=pixels)
save_reference("hf_model", {"pixel_values": pixels, "last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output})


# --- timm layouts --------------------------------------------------------------------------------
def save_timm(name, model, architecture, model_args, problem_type=None):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    cfg = {"architecture": architecture, "num_classes": model_args["num_classes"], "global_pool": model_args["global_pool"],
           "model_args": model_args, "pretrained_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "input_size": [3, 16, 16]}}
    if problem_type:
        cfg["problem_type"] = problem_type
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


mae_args = dict(img_size=16, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=3, global_pool="avg", fc_norm=True)
mae = perturb(VisionTransformer(**mae_args)).eval()
save_timm("timm_mae", mae, "vit_base_patch16_224", mae_args, problem_type="multi_label_classification")
with torch.no_grad():
    feats = mae.forward_features(pixels)
    logits = mae.forward_head(feats)
    pooled = mae.forward_head(feats, pre_logits=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, multi_labels)
save_reference("timm_mae", {"pixel_values": pixels, "labels": multi_labels, "logits": logits, "pooler_output": pooled,
                            "last_hidden_state": feats, "loss": loss.reshape(1)})

token_args = dict(img_size=16, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=4, global_pool="token",
                  qkv_bias=False, init_values=0.1)
tok = perturb(VisionTransformer(**token_args)).eval()
save_timm("timm_token", tok, "vit_small_patch8_16", token_args)
single_labels = torch.tensor([3, 1])
with torch.no_grad():
    feats = tok.forward_features(pixels)
    logits = tok.forward_head(feats)
    loss = torch.nn.functional.cross_entropy(logits, single_labels)
save_reference("timm_token", {"pixel_values": pixels, "labels": single_labels, "logits": logits, "last_hidden_state": feats,
                              "loss": loss.reshape(1)})
print("ok")
