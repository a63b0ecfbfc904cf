"""A tiny MAE / MED-PEFT-style pre-training checkpoint and what MAE's fine-tuning code makes of it.

Usage: make_mae_pth_fixtures.py OUT_DIR
Writes:
  mae_pretrain.pth   torch.save({'model', 'optimizer', 'epoch', 'scaler', 'args': Namespace}) as MAE's
                     main_pretrain.py does: the timm ViT encoder (cls_token, pos_embed, patch_embed,
                     blocks, norm) plus the MAE decoder (decoder_*, mask_token), at 16 px
  finetune.json      the architecture for fine-tuning (timm config: 32 px, avg pooling + fc_norm,
                     3 labels), as a user writes it
  vit_tiny_d1.pth    a bare state dict of a ViT-Ti/16 (timm's width 192, 3 heads) with one block at 32 px
                     and a 2-label head, token pooling: its architecture can be read off the keys
  train.safetensors  8 images (32 px) with 3 multi-label targets, pre-processed, for `medtune train`
  reference.safetensors  what MAE's main_finetune.py computes: interpolate_pos_embed to the 32 px grid,
                     load_state_dict(strict=False) into VisionTransformer(global_pool=True), then the
                     pooled (fc_norm) features and the tokens for a batch of images
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timm_vit_reference import VisionTransformer  # noqa: E402

torch.manual_seed(0)
out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)

DIM, DEPTH, HEADS, PATCH = 32, 2, 4, 8
encoder = VisionTransformer(img_size=16, patch_size=PATCH, embed_dim=DIM, depth=DEPTH, num_heads=HEADS, num_classes=0, global_pool="token")
with torch.no_grad():
    for p in encoder.parameters():
        p.add_(torch.randn_like(p) * 0.1)
state = dict(encoder.state_dict())
# The MAE decoder (main_pretrain.py's MaskedAutoencoderViT), never used for fine-tuning.
DEC = 24
state["mask_token"] = torch.randn(1, 1, DEC)
state["decoder_embed.weight"] = torch.randn(DEC, DIM)
state["decoder_embed.bias"] = torch.randn(DEC)
state["decoder_pos_embed"] = torch.randn(1, 5, DEC)
for i in range(1):
    for n, shape in [("norm1.weight", [DEC]), ("attn.qkv.weight", [3 * DEC, DEC]), ("mlp.fc1.weight", [4 * DEC, DEC])]:
        state[f"decoder_blocks.{i}.{n}"] = torch.randn(*shape)
state["decoder_norm.weight"] = torch.ones(DEC)
state["decoder_pred.weight"] = torch.randn(PATCH * PATCH * 3, DEC)
args = argparse.Namespace(model="mae_vit_base_patch16", mask_ratio=0.75, norm_pix_loss=True, input_size=16, blr=1.5e-4)
torch.save({"model": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]}, "epoch": 799,
            "scaler": {"scale": 65536.0}, "args": args}, os.path.join(out_dir, "mae_pretrain.pth"))

finetune = {"architecture": "vit_base_patch16_224", "num_classes": 3, "global_pool": "avg",
            "model_args": {"img_size": 32, "patch_size": PATCH, "embed_dim": DIM, "depth": DEPTH, "num_heads": HEADS}}
with open(os.path.join(out_dir, "finetune.json"), "w") as f:
    json.dump(finetune, f, indent=2)

# --- MAE's main_finetune.py -------------------------------------------------------------------------
model = VisionTransformer(img_size=32, patch_size=PATCH, embed_dim=DIM, depth=DEPTH, num_heads=HEADS, num_classes=3, global_pool="avg",
                          fc_norm=True).eval()
checkpoint_model = {k: v for k, v in state.items()}
for k in ["head.weight", "head.bias"]:
    checkpoint_model.pop(k, None)
# util/pos_embed.py interpolate_pos_embed
pos = checkpoint_model["pos_embed"]
extra = model.pos_embed.shape[-2] - (32 // PATCH) ** 2
orig, new = int((pos.shape[-2] - extra) ** 0.5), 32 // PATCH
tokens = pos[:, extra:].reshape(-1, orig, orig, DIM).permute(0, 3, 1, 2)
tokens = F.interpolate(tokens, size=(new, new), mode="bicubic", align_corners=False).permute(0, 2, 3, 1).flatten(1, 2)
checkpoint_model["pos_embed"] = torch.cat((pos[:, :extra], tokens), dim=1)
msg = model.load_state_dict(checkpoint_model, strict=False)
assert set(msg.missing_keys) == {"head.weight", "head.bias", "fc_norm.weight", "fc_norm.bias"}, msg.missing_keys

pixels = torch.randn(2, 3, 32, 32)
with torch.no_grad():
    feats = model.forward_features(pixels)
    pooled = model.forward_head(feats, pre_logits=True)
tiny = VisionTransformer(img_size=32, patch_size=16, embed_dim=192, depth=1, num_heads=3, num_classes=2, global_pool="token").eval()
torch.save(tiny.state_dict(), os.path.join(out_dir, "vit_tiny_d1.pth"))
with torch.no_grad():
    tiny_logits = tiny(pixels)

g = torch.Generator().manual_seed(1)
save_file({"pixel_values": torch.randn(8, 3, 32, 32, generator=g), "labels": (torch.rand(8, 3, generator=g) > 0.5).float()},
          os.path.join(out_dir, "train.safetensors"), metadata={"label_names": json.dumps(["Atelectasis", "Effusion", "Pneumonia"])})

save_file({"tiny_logits": tiny_logits, "pixel_values": pixels, "last_hidden_state": feats.contiguous(), "pooler_output": pooled.contiguous(),
           "pos_embed": model.pos_embed.detach().contiguous()}, os.path.join(out_dir, "reference.safetensors"))
with open(os.path.join(out_dir, "reference.json"), "w") as f:
    json.dump({"unexpected": sorted(msg.unexpected_keys), "missing": sorted(msg.missing_keys)}, f, indent=2)
