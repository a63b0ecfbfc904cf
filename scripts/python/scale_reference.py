"""The PyTorch side of scripts/scale/llava-med-7b.ts: the same LLaVA-Med-layout checkpoint, batch and
methods, trained with transformers + peft the way the HF Trainer trains with bf16=True.

- model: LlavaForConditionalGeneration (Mistral text, CLIP tower, mlp2x_gelu projector as
  linear_1 / gelu / linear_2, features from layer -2 without CLS), built in bf16 on the device and
  filled from the checkpoint's shards one at a time (transformers cannot read the original LLaVA-Med
  layout: its keys are renamed here). Load time = build + fill;
- methods: ln / attn / ffn by module class and name (peft_reference.preset_names), lora = peft
  LoraConfig(r=8, lora_alpha=8, target_modules=[q_proj, v_proj]);
- trained tensors are float32 masters (float32 AdamW state; fused AdamW on CUDA, the Trainer's
  adamw_torch_fused); forward under torch.autocast(device, bfloat16), backward outside it;
  clip_grad_norm_(1.0); lr 1e-5 constant; one batch of llava-hf input_ids (576 image tokens each);
- timing: `warmup` steps, then `steps` steps between two device synchronisations; peak memory:
  torch.cuda.max_memory_allocated() from after the model is ready to the end of the steps.

Usage: scale_reference.py JOB_JSON (written by the TypeScript side; results go to job['out']).
"""
import gc
import json
import os
import re
import sys
import time
import warnings

import torch
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, MistralConfig  # noqa: E402

from peft_reference import preset_names  # noqa: E402

RULES = [
    (r"^model\.mm_projector\.0\.", "model.multi_modal_projector.linear_1."),
    (r"^model\.mm_projector\.2\.", "model.multi_modal_projector.linear_2."),
    (r"^model\.vision_tower\.vision_tower\.vision_model\.", "model.vision_tower.vision_model."),
    (r"^model\.(layers|embed_tokens|norm)\.", r"model.language_model.\1."),
]


def target_name(key, names):
    """The llava-hf parameter a checkpoint key fills (transformers 5 may drop 'vision_model.')."""
    new = key
    for pattern, repl in RULES:
        new = re.sub(pattern, repl, new)
    for cand in (new, new.replace("model.vision_tower.vision_model.", "model.vision_tower."),
                 new.replace("model.", "", 1) if new.startswith("model.language_model") else new):
        if cand in names:
            return cand
    raise KeyError(f"checkpoint tensor {key} has no place in LlavaForConditionalGeneration (tried {new})")


def shard_files(ckpt):
    index = os.path.join(ckpt, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            return [os.path.join(ckpt, s) for s in sorted(set(json.load(f)["weight_map"].values()))]
    return [os.path.join(ckpt, "model.safetensors")]


def load(job, device):
    vision = {k: v for k, v in job["vision"].items() if k != "model_type"}
    patches = (vision["image_size"] // vision["patch_size"]) ** 2
    cfg = LlavaConfig(text_config=MistralConfig(**job["text"]), vision_config=CLIPVisionConfig(**vision), image_token_index=job["image_token_index"],
                      projector_hidden_act="gelu", vision_feature_layer=-2, vision_feature_select_strategy="default", image_seq_length=patches,
                      multimodal_projector_bias=True)
    t0 = time.perf_counter()
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(cfg, dtype=torch.bfloat16)
    names = set(model.state_dict().keys())
    filled = set()
    for path in shard_files(job["checkpoint"]):
        with safe_open(path, "pt", device=str(device)) as f:
            part = {target_name(k, names): f.get_tensor(k) for k in f.keys()}
        model.load_state_dict(part, strict=False)
        filled |= set(part)
        del part
    missing = sorted(n for n in names - filled if "rotary" not in n and not n.endswith("position_ids"))
    if missing:
        raise RuntimeError(f"not filled from the checkpoint: {missing[:5]}")
    if device.type == "cuda":
        torch.cuda.synchronize()
    return model, time.perf_counter() - t0


def run_method(job, method, device, batch):
    result = {"trainable": None, "tokensPerS": None, "seconds": None, "peakGiB": None, "loadS": None, "firstLoss": None, "error": None}
    model = opt = None
    try:
        model, result["loadS"] = load(job, device)
        if method == "lora":
            model = get_peft_model(model, LoraConfig(r=8, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
        else:
            selected = preset_names(model, method)
            for n, p in model.named_parameters():
                p.requires_grad_(n in selected)
        params = [p for p in model.parameters() if p.requires_grad]
        with torch.no_grad():
            for p in params:
                if p.dtype != torch.float32:
                    p.data = p.data.float()
        result["trainable"] = sum(p.numel() for p in params)
        model.train()
        opt = torch.optim.AdamW(params, lr=1e-5, weight_decay=0.0, fused=device.type == "cuda")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        num_items = int((batch["labels"][..., 1:] != -100).sum())
        total = job["warmup"] + job["steps"]
        t0 = None
        for step in range(total):
            if step == job["warmup"]:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                loss = model(**batch, num_items_in_batch=num_items).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if step == 0:
                result["firstLoss"] = float(loss.detach().float())
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - t0) / job["steps"]
        result["seconds"] = seconds
        result["tokensPerS"] = batch["input_ids"].numel() / seconds
        if device.type == "cuda":
            result["peakGiB"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    except Exception as err:  # noqa: BLE001 (an out-of-memory row is a result, not the end of the run)
        result["error"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    finally:
        del model, opt
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    device = torch.device(job["device"])
    with safe_open(job["data"], "pt") as f:
        batch = {k: f.get_tensor(k).to(device) for k in f.keys()}
    out = {}
    for method in job["methods"]:
        torch.manual_seed(0)
        out[method] = run_method(job, method, device, batch)
        r = out[method]
        print(f"PyTorch {method}: {r['tokensPerS']} tok/s, peak {r['peakGiB']} GiB, load {r['loadS']} s, first loss {r['firstLoss']}"
              + (f", error: {r['error']}" if r["error"] else ""), flush=True)
    with open(job["out"], "w") as f:
        json.dump(out, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
