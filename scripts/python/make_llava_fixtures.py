"""Tiny CLIP vision towers and LLaVA checkpoints in every key form, with transformers references.

Usage: make_llava_fixtures.py OUT_DIR
CLIP (reference: CLIPVisionModel's last_hidden_state, pooler_output, hidden_states):
  clip_v5      CLIPVisionModel as transformers 5 saves it (keys at the top level)
  clip_v4      the same weights under vision_model.* (transformers 4.x)
  clip_full    a CLIPModel (vision + text towers); its vision half
llava-hf (LlavaForConditionalGeneration, LLaMA text with GQA, CLIP tower, image features from
hidden_states[-2] without CLS): the same weights in four key forms, renamed here:
  llava_saved  as transformers 5.18 writes it: language_model.model.*, language_model.lm_head,
               vision_tower.*, multi_modal_projector.*
  llava_v4     transformers 4.x: vision_tower.vision_model.*
  llava_v5     transformers 5 module names: model.language_model.*, model.vision_tower.*,
               model.multi_modal_projector.*, lm_head
  llava_v45    model.language_model.*, model.vision_tower.vision_model.*, lm_head (4.5x)
  llava_multi  vision_feature_layer [-3, -1] with the 'full' strategy (CLS kept, features concatenated)
Original LLaVA-Med layout (LlavaMistralForCausalLM: model.layers.*, lm_head, model.mm_projector.0/2,
model.vision_tower.vision_tower.vision_model.*, mm_* config fields), Mistral text with GQA:
  llava_med      vision tower inside the checkpoint; mm_vision_tower names the local clip/ config
  llava_med_sep  vision tower weights only in the separate clip/ directory (CLIP 4.x keys)
The original layout's reference re-states LLaVA-Med's prepare_inputs_labels_for_multimodal (the
conversation-free forward: one -200 placeholder per image expands into its features, labels -100
there, padding removed and re-added on the right) on top of the transformers modules.
"""
import json
import os
import shutil
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import (CLIPConfig, CLIPModel, CLIPVisionConfig, CLIPVisionModel, LlamaConfig, LlavaConfig,
                          LlavaForConditionalGeneration, MistralConfig)

out_dir = sys.argv[1]
torch.manual_seed(0)
IMAGE_TOKEN_INDEX = -200
VOCAB = 96
IMG = 95  # llava-hf image token id


def perturb(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def save_ref(name, tensors):
    save_file({k: v.detach().clone().contiguous() for k, v in tensors.items()}, os.path.join(out_dir, f"{name}.reference.safetensors"))


def rename_dir(src, dst, rename, config=None):
    """Copies a saved model directory, renaming its safetensors keys."""
    os.makedirs(dst, exist_ok=True)
    tensors = load_file(os.path.join(src, "model.safetensors"))
    renamed = {}
    for k, v in tensors.items():
        nk = rename(k)
        if nk is not None:
            renamed[nk] = v
    save_file(renamed, os.path.join(dst, "model.safetensors"), metadata={"format": "pt"})
    if config is None:
        shutil.copy(os.path.join(src, "config.json"), os.path.join(dst, "config.json"))
    else:
        with open(os.path.join(dst, "config.json"), "w") as f:
            json.dump(config, f, indent=2)


vision_cfg = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=3, num_attention_heads=2, image_size=8, patch_size=4)

# --- CLIP vision towers ----------------------------------------------------------------------------
clip = perturb(CLIPVisionModel(CLIPVisionConfig(**vision_cfg)))
clip.save_pretrained(os.path.join(out_dir, "clip_v5"))
rename_dir(os.path.join(out_dir, "clip_v5"), os.path.join(out_dir, "clip_v4"), lambda k: "vision_model." + k)
pixels = torch.randn(2, 3, 8, 8)
with torch.no_grad():
    out = clip(pixel_values=pixels, output_hidden_states=True)
ref = {"pixel_values": pixels, "last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output}
for i, h in enumerate(out.hidden_states):
    ref[f"hidden_states.{i}"] = h
save_ref("clip", ref)

full = perturb(CLIPModel(CLIPConfig(vision_config=vision_cfg, text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                                                  num_attention_heads=2, vocab_size=50,
                                                                                  bos_token_id=0, eos_token_id=1, pad_token_id=1), projection_dim=8)))
full.save_pretrained(os.path.join(out_dir, "clip_full"))
with torch.no_grad():
    out = full.vision_model(pixel_values=pixels)
save_ref("clip_full", {"pixel_values": pixels, "last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output})


# --- llava-hf ----------------------------------------------------------------------------------------
def llava(text_config, **kw):
    cfg = LlavaConfig(vision_config=CLIPVisionConfig(**vision_cfg), text_config=text_config, image_token_index=IMG, image_seq_length=4, **kw)
    return perturb(LlavaForConditionalGeneration(cfg))


text = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=64)
hf = llava(LlamaConfig(**text))
saved = os.path.join(out_dir, "llava_saved")
hf.save_pretrained(saved)


def to_v4(k):
    return "vision_tower.vision_model." + k[len("vision_tower."):] if k.startswith("vision_tower.") else k


def to_v5(k):
    if k.startswith("language_model.model."):
        return "model.language_model." + k[len("language_model.model."):]
    if k == "language_model.lm_head.weight":
        return "lm_head.weight"
    return "model." + k


def to_v45(k):
    k = to_v5(k)
    return "model.vision_tower.vision_model." + k[len("model.vision_tower."):] if k.startswith("model.vision_tower.") else k


for name, fn in [("llava_v4", to_v4), ("llava_v5", to_v5), ("llava_v45", to_v45)]:
    rename_dir(saved, os.path.join(out_dir, name), fn)


def tokens(n):
    return torch.randint(3, IMG, (n,))


# Training-style batch: 4 image tokens per row, right padding, labels on the answer only.
ids = torch.zeros(2, 12, dtype=torch.long)
ids[0] = torch.cat([tokens(1), torch.full((4,), IMG), tokens(7)])
ids[1, :9] = torch.cat([tokens(3), torch.full((4,), IMG), tokens(2)])
mask = (torch.arange(12) < torch.tensor([[12], [9]])).long()
labels = ids.clone()
labels[:, :7] = -100
labels[mask == 0] = -100
px = torch.randn(2, 3, 8, 8)
with torch.no_grad():
    out = hf(input_ids=ids, attention_mask=mask, pixel_values=px, labels=labels)
ref = {"input_ids": ids, "attention_mask": mask, "labels": labels, "pixel_values": px, "logits": out.logits, "loss": out.loss.reshape(1),
       "image_features": out.image_hidden_states}
# Gradients of the loss for a few parameters of each part (LN-tuning's and the projector's), as
# named in the 4.x checkpoint form.
hf.zero_grad()
hf(input_ids=ids, attention_mask=mask, pixel_values=px, labels=labels).loss.backward()
GRADS = {
    "vision_tower.vision_model.encoder.layers.0.layer_norm1.weight": hf.model.vision_tower.encoder.layers[0].layer_norm1.weight,
    "vision_tower.vision_model.pre_layrnorm.bias": hf.model.vision_tower.pre_layrnorm.bias,
    "multi_modal_projector.linear_1.weight": hf.model.multi_modal_projector.linear_1.weight,
    "language_model.model.layers.1.input_layernorm.weight": hf.model.language_model.layers[1].input_layernorm.weight,
    "language_model.model.norm.weight": hf.model.language_model.norm.weight,
    "language_model.model.embed_tokens.weight": hf.model.language_model.embed_tokens.weight,
}
for name, p in GRADS.items():
    ref[f"grad.{name}"] = p.grad.clone()
hf.zero_grad()
# Generation: left-padded prompts holding their images.
gen_ids = torch.zeros(2, 9, dtype=torch.long)
gen_ids[0] = torch.cat([tokens(2), torch.full((4,), IMG), tokens(3)])
gen_ids[1, 3:] = torch.cat([tokens(1), torch.full((4,), IMG), tokens(1)])
gen_mask = (torch.arange(9) >= torch.tensor([[0], [3]])).long()
hf.generation_config.eos_token_id = None
hf.generation_config.pad_token_id = 0
with torch.no_grad():
    greedy = hf.generate(input_ids=gen_ids, attention_mask=gen_mask, pixel_values=px, max_new_tokens=20, do_sample=False)
ref.update({"gen_input_ids": gen_ids, "gen_attention_mask": gen_mask, "greedy": greedy})
save_ref("llava", ref)

multi = llava(LlamaConfig(**text), vision_feature_layer=[-3, -1], vision_feature_select_strategy="full")
multi.save_pretrained(os.path.join(out_dir, "llava_multi"))
ids5 = ids.clone()
ids5[0] = torch.cat([tokens(1), torch.full((5,), IMG), tokens(6)])
ids5[1, :9] = torch.cat([tokens(2), torch.full((5,), IMG), tokens(2)])
with torch.no_grad():
    out = multi(input_ids=ids5, attention_mask=mask, pixel_values=px)
save_ref("llava_multi", {"input_ids": ids5, "attention_mask": mask, "pixel_values": px, "logits": out.logits})

# --- original LLaVA-Med layout --------------------------------------------------------------------
mistral_text = dict(text, sliding_window=None)
med = llava(MistralConfig(**mistral_text))
med_hf_dir = os.path.join(out_dir, "llava_med_hf")
med.save_pretrained(med_hf_dir)


def to_original(k):
    if k.startswith("language_model.model."):
        return "model." + k[len("language_model.model."):]
    if k == "language_model.lm_head.weight":
        return "lm_head.weight"
    if k.startswith("vision_tower."):
        return "model.vision_tower.vision_tower.vision_model." + k[len("vision_tower."):]
    if k.startswith("multi_modal_projector."):
        return "model.mm_projector." + k[len("multi_modal_projector."):].replace("linear_1", "0").replace("linear_2", "2")
    raise KeyError(k)


with open(os.path.join(med_hf_dir, "config.json")) as f:
    med_hf_config = json.load(f)
original_config = {
    **{k: v for k, v in med_hf_config["text_config"].items() if k not in ("architectures",)},
    "model_type": "llava_mistral",
    "architectures": ["LlavaMistralForCausalLM"],
    "mm_vision_tower": "clip",
    "mm_hidden_size": vision_cfg["hidden_size"],
    "mm_projector_type": "mlp2x_gelu",
    "mm_vision_select_layer": -2,
    "mm_vision_select_feature": "patch",
    "mm_use_im_start_end": False,
    "mm_use_im_patch_token": False,
    "image_aspect_ratio": "pad",
    "tokenizer_padding_side": "right",
    "use_mm_proj": True,
}
med_dir = os.path.join(out_dir, "llava_med")
rename_dir(med_hf_dir, med_dir, to_original, original_config)
CLIPVisionConfig(**vision_cfg).save_pretrained(os.path.join(med_dir, "clip"))

sep_dir = os.path.join(out_dir, "llava_med_sep")
rename_dir(med_hf_dir, sep_dir, lambda k: None if k.startswith("vision_tower.") else to_original(k), original_config)
rename_dir(med_hf_dir, os.path.join(sep_dir, "clip"), lambda k: "vision_model." + k[len("vision_tower."):] if k.startswith("vision_tower.") else None,
           {**CLIPVisionConfig(**vision_cfg).to_dict(), "architectures": ["CLIPVisionModel"]})


def encode_images(images):
    return med.model.get_image_features(pixel_values=images, vision_feature_layer=-2, vision_feature_select_strategy="default").pooler_output


def prepare_inputs_labels_for_multimodal(input_ids, attention_mask, labels, images, padding_side="right"):
    """LLaVA-Med's llava_arch.py, re-stated: drop padding, expand each -200 into the image's features
    (labels -100 there), re-pad to the longest row."""
    image_features = encode_images(images)
    embed = med.get_input_embeddings()
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
    attention_mask = attention_mask.bool()
    if labels is None:
        labels = torch.full_like(input_ids, -100)
    rows_ids = [r[m] for r, m in zip(input_ids, attention_mask)]
    rows_labels = [r[m] for r, m in zip(labels, attention_mask)]
    new_embeds, new_labels, cur = [], [], 0
    for row_ids, row_labels in zip(rows_ids, rows_labels):
        where = [-1] + torch.where(row_ids == IMAGE_TOKEN_INDEX)[0].tolist() + [row_ids.shape[0]]
        pieces, piece_labels = [], []
        for i in range(len(where) - 1):
            seg = row_ids[where[i] + 1:where[i + 1]]
            pieces.append(embed(seg))
            piece_labels.append(row_labels[where[i] + 1:where[i + 1]])
            if i < len(where) - 2:
                pieces.append(image_features[cur])
                piece_labels.append(torch.full((image_features[cur].shape[0],), -100, dtype=labels.dtype))
                cur += 1
        new_embeds.append(torch.cat(pieces))
        new_labels.append(torch.cat(piece_labels))
    max_len = max(e.shape[0] for e in new_embeds)
    B, D = len(new_embeds), new_embeds[0].shape[1]
    embeds = torch.zeros(B, max_len, D)
    lab = torch.full((B, max_len), -100, dtype=labels.dtype)
    mask = torch.zeros(B, max_len, dtype=torch.long)
    for i, (e, l) in enumerate(zip(new_embeds, new_labels)):
        n = e.shape[0]
        sl = slice(max_len - n, max_len) if padding_side == "left" else slice(0, n)
        embeds[i, sl], lab[i, sl], mask[i, sl] = e, l, 1
    return embeds, mask, lab


ids = torch.zeros(2, 8, dtype=torch.long)
ids[0] = torch.cat([tokens(2), torch.tensor([IMAGE_TOKEN_INDEX]), tokens(5)])
ids[1, :6] = torch.cat([tokens(1), torch.tensor([IMAGE_TOKEN_INDEX]), tokens(4)])
mask = (torch.arange(8) < torch.tensor([[8], [6]])).long()
labels = ids.clone()
labels[:, :4] = -100
labels[mask == 0] = -100
with torch.no_grad():
    embeds, new_mask, new_labels = prepare_inputs_labels_for_multimodal(ids, mask, labels, px)
    out = med(inputs_embeds=embeds, attention_mask=new_mask, labels=new_labels)
ref = {"input_ids": ids, "attention_mask": mask, "labels": labels, "pixel_values": px, "logits": out.logits, "loss": out.loss.reshape(1),
       "expanded_attention_mask": new_mask, "expanded_labels": new_labels}
# Generation from placeholder prompts, expanded and left-padded.
gen_ids = torch.zeros(2, 6, dtype=torch.long)
gen_ids[0] = torch.cat([tokens(1), torch.tensor([IMAGE_TOKEN_INDEX]), tokens(4)])
gen_ids[1, 2:] = torch.cat([tokens(1), torch.tensor([IMAGE_TOKEN_INDEX]), tokens(2)])
gen_mask = (torch.arange(6) >= torch.tensor([[0], [2]])).long()
med.generation_config.eos_token_id = None
med.generation_config.pad_token_id = 0
with torch.no_grad():
    embeds, gmask, _ = prepare_inputs_labels_for_multimodal(gen_ids, gen_mask, None, px, padding_side="left")
    new_tokens = med.generate(inputs_embeds=embeds, attention_mask=gmask, max_new_tokens=20, do_sample=False)
ref.update({"gen_input_ids": gen_ids, "gen_attention_mask": gen_mask, "greedy_tokens": new_tokens})
save_ref("llava_med", ref)
shutil.rmtree(med_hf_dir)
print("ok")
