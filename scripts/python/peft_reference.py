"""The PyTorch + peft side of medtune's PEFT tests (transformers 5, peft 0.21).

Usage: peft_reference.py COMMAND ...
  fixtures OUT_DIR                  tiny models and peft-written adapters with reference outputs:
      vit/                          ViTForImageClassification, 3 labels, multi-label
      timm/                         timm / MAE layout (scripts/python/timm_vit_reference.py)
      inputs.safetensors            pixel_values, labels
      vit_lora/  vit_dora/  vit_rslora/    adapters written by peft (B perturbed so they act)
      vit_lora_v4/                  vit_lora with transformers 4.x key and target names
      <adapter>.reference.safetensors      logits with the adapter, and after merge_and_unload
  counts MODEL_DIR...               JSON {dir: {preset: {trainable, all}}}: counts for each preset as
                                    PyTorch + peft count them (preset_names below; LoRA via peft)
  forward JOBS_JSON                 for each {model, adapter, inputs, out, merged?}: loads the adapter
                                    with PeftModel.from_pretrained and writes its logits to `out`
                                    (and merge_and_unload()'s model to `merged`, with its logits)
  names MODEL_DIR...                JSON {dir: {checkpoint key: transformers-5 parameter name}}
  train JOBS_JSON                   for each {model, inputs, steps, lr, method, adapter?, extra?}: AdamW
                                    (weight decay 0) on one batch; JSON list of {losses, trainable}
  hf JOBS_JSON                      for each {model, inputs, out}: transformers' logits of a model dir
  batch JOBS_JSON                   several of the above in one process (one interpreter start):
                                    [{"cmd": "counts" | "names" | "train" | "hf", ...}] -> JSON list
Models are loaded with transformers when config.json has "model_type", else as the timm reference.
"""
import json
import os
import re
import sys
import warnings

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

from timm_vit_reference import VisionTransformer  # noqa: E402

import transformers  # noqa: E402
from peft import LoraConfig, PeftModel, get_peft_model  # noqa: E402


def load_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    if "model_type" not in cfg:
        model = VisionTransformer(**cfg["model_args"])
        model.load_state_dict(load_file(os.path.join(model_dir, "model.safetensors")))
        return model.eval(), "timm"
    arch = cfg["architectures"][0]
    return getattr(transformers, arch).from_pretrained(model_dir, dtype=torch.float32).eval(), cfg["model_type"]


def _is_timm(model):
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return isinstance(inner, VisionTransformer)


def forward_logits(model, inputs):
    with torch.no_grad():
        if _is_timm(model):
            return model(inputs["pixel_values"])
        return model(**{k: v for k, v in inputs.items() if k != "labels"}).logits


def perturb_lora(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n or "lora_magnitude" in n or "modules_to_save" in n:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)


# ---- presets as PyTorch users write them (module classes and names, independent of medtune) ------

def is_norm(module):
    return isinstance(module, torch.nn.LayerNorm) or type(module).__name__.endswith("RMSNorm")


ATTN = re.compile(r"(attention\.(q_proj|k_proj|v_proj|o_proj)|attn\.(qkv|proj)|self_attn\.(q_proj|k_proj|v_proj|o_proj|out_proj))$")
FFN = re.compile(r"(mlp\.(fc1|fc2|gate_proj|up_proj|down_proj))$")


def preset_names(model, preset):
    names = set()
    for mname, module in model.named_modules():
        own = [f"{mname}.{n}" if mname else n for n, _ in module.named_parameters(recurse=False)]
        if preset == "ln" and is_norm(module):
            names.update(own)
        elif preset == "attn" and ATTN.search(mname):
            names.update(own)
        elif preset == "ffn" and FFN.search(mname):
            names.update(own)
    if preset == "bitfit":
        names = {n for n, _ in model.named_parameters() if n.endswith(".bias")}
    if preset == "full":
        names = {n for n, _ in model.named_parameters()}
    return names


def counts(model_dir):
    out = {}
    for preset in ["ln", "ffn", "attn", "bitfit", "full"]:
        model, _ = load_model(model_dir)
        selected = preset_names(model, preset)
        for n, p in model.named_parameters():
            p.requires_grad_(n in selected)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        out[preset] = {"trainable": trainable, "all": total}
    model, kind = load_model(model_dir)
    head = {"timm": ["head", "fc_norm"], "llava": ["multi_modal_projector"]}.get(kind, ["classifier"])
    targets = ["q_proj", "v_proj"] if kind != "timm" else ["qkv"]
    for name, cfg in {
        "lora": dict(r=4, lora_alpha=8, target_modules=targets),
        "lora_extra": dict(r=4, lora_alpha=8, target_modules=targets, modules_to_save=head),
        "dora": dict(r=2, lora_alpha=4, target_modules=targets, use_dora=True),
    }.items():
        model, _ = load_model(model_dir)
        pm = get_peft_model(model, LoraConfig(**cfg))
        trainable, total = pm.get_nb_trainable_parameters()
        out[name] = {"trainable": trainable, "all": total}
    return out


# ---- fixtures ------------------------------------------------------------------------------------

def save_timm(d, model, args):
    os.makedirs(d, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    cfg = {"architecture": "vit_base_patch16_224", "num_classes": args["num_classes"], "global_pool": args["global_pool"],
           "model_args": args, "problem_type": "multi_label_classification"}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def to_v4(key):
    key = key.replace("vit.layers.", "vit.encoder.layer.")
    key = key.replace("attention.q_proj", "attention.attention.query").replace("attention.v_proj", "attention.attention.value")
    return key


def fixtures(out):
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=16, patch_size=8,
                                 num_labels=3, problem_type="multi_label_classification")
    vit = transformers.ViTForImageClassification(cfg)
    with torch.no_grad():
        for p in vit.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    vit.save_pretrained(os.path.join(out, "vit"))
    args = dict(img_size=16, patch_size=8, embed_dim=32, depth=2, num_heads=4, num_classes=3, global_pool="avg", fc_norm=True)
    timm = VisionTransformer(**args)
    with torch.no_grad():
        for p in timm.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    save_timm(os.path.join(out, "timm"), timm.eval(), args)
    inputs = {"pixel_values": torch.randn(2, 3, 16, 16), "labels": torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])}
    save_file(inputs, os.path.join(out, "inputs.safetensors"))

    variants = {
        "vit_lora": dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"]),
        "vit_dora": dict(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], use_dora=True,
                         rank_pattern={r"layers\.1\.attention\.v_proj": 4}, alpha_pattern={r"layers\.1\.attention\.v_proj": 16}),
        "vit_rslora": dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "fc1"], use_rslora=True),
    }
    for i, (name, lc) in enumerate(variants.items()):
        base, _ = load_model(os.path.join(out, "vit"))
        pm = get_peft_model(base, LoraConfig(**lc))
        perturb_lora(pm, 10 + i)
        pm.eval()
        pm.save_pretrained(os.path.join(out, name))
        logits = forward_logits(pm, inputs)
        merged = pm.merge_and_unload()
        save_file({"logits": logits, "merged_logits": forward_logits(merged, inputs)}, os.path.join(out, f"{name}.reference.safetensors"))

    # NIH ChestX-ray14-style multi-label data: 14 findings, "Finding Labels" joined with "|"
    nih = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
           "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia"]
    findings = ["Atelectasis|Effusion", "No Finding", "Cardiomegaly|Edema|Effusion", "Infiltration|Mass|Nodule"]
    labels = torch.tensor([[1.0 if name in f.split("|") else 0.0 for name in nih] for f in findings])
    cfg14 = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=16,
                                   patch_size=8, num_labels=14, problem_type="multi_label_classification",
                                   id2label={i: n for i, n in enumerate(nih)}, label2id={n: i for i, n in enumerate(nih)})
    vit14 = transformers.ViTForImageClassification(cfg14)
    with torch.no_grad():
        for p in vit14.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    vit14.save_pretrained(os.path.join(out, "vit_nih"))
    save_file({"pixel_values": torch.randn(4, 3, 16, 16), "labels": labels}, os.path.join(out, "nih.safetensors"))
    pm = get_peft_model(transformers.ViTForImageClassification.from_pretrained(os.path.join(out, "vit_nih")),
                        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"]))
    perturb_lora(pm, 20)
    pm.save_pretrained(os.path.join(out, "vit_nih_lora"))
    pm = get_peft_model(transformers.ViTForImageClassification.from_pretrained(os.path.join(out, "vit_nih")),
                        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], use_dora=True, use_rslora=True))
    perturb_lora(pm, 21)
    pm.save_pretrained(os.path.join(out, "vit_nih_dora"))

    # the same LoRA adapter as a transformers 4.x stack writes it (hub adapters look like this)
    src = os.path.join(out, "vit_lora")
    dst = os.path.join(out, "vit_lora_v4")
    os.makedirs(dst, exist_ok=True)
    save_file({to_v4(k): v for k, v in load_file(os.path.join(src, "adapter_model.safetensors")).items()}, os.path.join(dst, "adapter_model.safetensors"))
    with open(os.path.join(src, "adapter_config.json")) as f:
        ac = json.load(f)
    ac["target_modules"] = ["query", "value"]
    with open(os.path.join(dst, "adapter_config.json"), "w") as f:
        json.dump(ac, f, indent=2)
    print("ok")


def forward_jobs(jobs_path):
    with open(jobs_path) as f:
        for job in json.load(f):
            forward(job["model"], job["adapter"], job["inputs"], job["out"], job.get("merged"))
    print("ok")


def forward(model_dir, adapter_dir, inputs_path, out_path, merged_dir=None):
    model, _ = load_model(model_dir)
    pm = PeftModel.from_pretrained(model, adapter_dir).eval()
    inputs = load_file(inputs_path)
    result = {"logits": forward_logits(pm, inputs)}
    trainable, total = pm.get_nb_trainable_parameters()
    meta = {"lora_modules": json.dumps(sorted(n for n, _ in pm.named_modules() if n.endswith(".lora_A.default")))}
    if merged_dir:
        merged = pm.merge_and_unload()
        result["merged_logits"] = forward_logits(merged, inputs)
        merged.save_pretrained(merged_dir)
    save_file(result, out_path, metadata=meta)


def llava_fixtures(out):
    """A tiny llava-hf (CLIP tower, LLaMA with GQA) saved by transformers 5.18, the same weights under
    transformers 4.x names, a training batch (image tokens, right padding, labels on the answer),
    and a peft LoRA adapter (q_proj, v_proj of both towers; the projector as modules_to_save)."""
    torch.manual_seed(0)
    vocab, img = 96, 95
    vision = transformers.CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=8, patch_size=4)
    text = transformers.LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                    num_key_value_heads=2, max_position_embeddings=64)
    cfg = transformers.LlavaConfig(vision_config=vision, text_config=text, image_token_index=img, image_seq_length=4)
    model = transformers.LlavaForConditionalGeneration(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(os.path.join(out, "llava"))
    v4 = os.path.join(out, "llava_v4")
    os.makedirs(v4, exist_ok=True)
    weights = load_file(os.path.join(out, "llava", "model.safetensors"))
    save_file({("vision_tower.vision_model." + k[len("vision_tower."):] if k.startswith("vision_tower.") else k): v for k, v in weights.items()},
              os.path.join(v4, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "llava", "config.json")) as f, open(os.path.join(v4, "config.json"), "w") as g:
        g.write(f.read())
    tok = lambda n: torch.randint(3, img, (n,))  # noqa: E731
    ids = torch.zeros(2, 12, dtype=torch.long)
    ids[0] = torch.cat([tok(1), torch.full((4,), img), tok(7)])
    ids[1, :9] = torch.cat([tok(3), torch.full((4,), img), tok(2)])
    mask = (torch.arange(12) < torch.tensor([[12], [9]])).long()
    labels = ids.clone()
    labels[:, :7] = -100
    labels[mask == 0] = -100
    save_file({"input_ids": ids, "attention_mask": mask, "pixel_values": torch.randn(2, 3, 8, 8), "labels": labels},
              os.path.join(out, "llava_batch.safetensors"))
    pm = get_peft_model(load_model(os.path.join(out, "llava"))[0],
                        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["multi_modal_projector"]))
    perturb_lora(pm, 30)
    pm.save_pretrained(os.path.join(out, "llava_lora"))
    print("ok")


def names(model_dir):
    """Which checkpoint tensor each transformers-5 parameter was loaded from, by value."""
    weights = {}
    for fname in sorted(os.listdir(model_dir)):
        if fname.endswith(".safetensors"):
            weights.update(load_file(os.path.join(model_dir, fname)))
    model, _ = load_model(model_dir)
    mapping = {}
    for pname, p in model.named_parameters():
        hits = [k for k, v in weights.items() if v.shape == p.shape and torch.equal(v.to(p.dtype), p.detach())]
        if len(hits) == 1:
            mapping[hits[0]] = pname
    return mapping


def train(model_dir, inputs_path, steps, lr, method, adapter_dir=None, extra=None):
    """AdamW (torch defaults but weight_decay 0.0) on one fixed batch; losses per step. LoRA starts
    from `adapter_dir` (PeftModel.from_pretrained(..., is_trainable=True): its LoRA weights and
    modules_to_save train); other methods train preset_names() plus the `extra` modules."""
    torch.manual_seed(0)
    model, kind = load_model(model_dir)
    inputs = load_file(inputs_path)
    if method == "lora":
        model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=True)
    else:
        selected = preset_names(model, method)
        if extra:
            selected |= {n for n, _ in model.named_parameters() if any(n.startswith(e + ".") for e in extra.split(","))}
        for n, p in model.named_parameters():
            p.requires_grad_(n in selected)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        if kind == "timm":
            logits = model(inputs["pixel_values"])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, inputs["labels"])
        else:
            loss = model(**inputs).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"losses": losses, "trainable": sum(p.numel() for p in params)}


def hf(model_dir, inputs_path, out_path):
    model, _ = load_model(model_dir)
    save_file({"logits": forward_logits(model, load_file(inputs_path))}, out_path)
    return out_path


def lora_init(seed, shapes):
    """What LoRA A matrices peft's init gives after torch.manual_seed(seed), drawn in order:
    nn.init.kaiming_uniform_(A, a=math.sqrt(5)) on each (r, in_features)."""
    import math
    torch.manual_seed(seed)
    out = []
    for shape in shapes:
        a = torch.empty(shape)
        torch.nn.init.kaiming_uniform_(a, a=math.sqrt(5))
        out.append(a.flatten().tolist())
    return out


def run_job(job):
    cmd = job["cmd"]
    if cmd == "lora_init":
        return lora_init(job["seed"], job["shapes"])
    if cmd == "counts":
        return counts(job["model"])
    if cmd == "names":
        return names(job["model"])
    if cmd == "train":
        return train(job["model"], job["inputs"], job["steps"], job["lr"], job["method"], job.get("adapter"), job.get("extra"))
    if cmd == "hf":
        return hf(job["model"], job["inputs"], job["out"])
    if cmd == "forward":
        forward(job["model"], job["adapter"], job["inputs"], job["out"], job.get("merged"))
        return job["out"]
    raise SystemExit(f"unknown batch command {cmd}")


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "fixtures":
        fixtures(rest[0])
    elif cmd == "counts":
        print(json.dumps({d: counts(d) for d in rest}))
    elif cmd == "forward":
        forward_jobs(rest[0])
    elif cmd == "names":
        print(json.dumps({d: names(d) for d in rest}))
    elif cmd in ("hf", "batch"):
        with open(rest[0]) as f:
            jobs = json.load(f)
        print(json.dumps([run_job(j if cmd == "batch" else {"cmd": "hf", **j}) for j in jobs]))
    elif cmd == "train":
        with open(rest[0]) as f:
            jobs = json.load(f)
        print(json.dumps([train(j["model"], j["inputs"], j["steps"], j["lr"], j["method"], j.get("adapter"), j.get("extra")) for j in jobs]))
    else:
        raise SystemExit(f"unknown command {cmd}")
