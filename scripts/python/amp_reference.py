"""The PyTorch side of medtune's mixed-precision tests: the HF Trainer's bf16 / fp16 training step
(transformers 5 + accelerate, written out) on a model loaded in the half dtype.

- the model is loaded in bf16 / fp16; the trained tensors are float32 masters (`p.data =
  p.data.float()`), so AdamW's state is float32; LoRA adapters of a half model are float32
  already (peft's autocast_adapter_dtype);
- forward (and loss) under torch.autocast(device, dtype); backward outside it;
- fp16: torch.amp.GradScaler (its defaults unless the job says otherwise): scale(loss).backward(),
  unscale_ before clip_grad_norm_ (accelerate's clip_grad_norm_), scaler.step, scaler.update; a
  step the scaler skipped does not step the lr scheduler (accelerate's optimizer_step_was_skipped);
- data in file order, micro-batches of batchSize, one micro-batch per step; token models pass
  num_items_in_batch (the HF Trainer's loss normalisation).

Usage: amp_reference.py JOBS_JSON [--cuda] -> JSON list, per job {steps: [{loss, grad_norm, lr, scale,
skipped}], trainable, dtypes: {trained: [...], frozen: [...]}}.
A job: {model, data, dtype: bf16|fp16, method: ln|lora, adapter?, extra?, steps, lr, batchSize,
schedule, warmup, maxGradNorm, device?: cpu|cuda, scaler?: {initScale, growthFactor, backoffFactor, growthInterval}}.
"""
import json
import math
import os
import sys
import warnings

if "--cuda" in sys.argv:
    # The test helper hides GPUs from reference scripts (CPU numbers); a CUDA job asks for them back.
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)

import torch
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

import transformers  # noqa: E402
from peft import PeftModel  # noqa: E402
from transformers import get_scheduler  # noqa: E402

from peft_reference import preset_names  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def load(model_dir, dtype):
    with open(os.path.join(model_dir, "config.json")) as f:
        arch = json.load(f)["architectures"][0]
    return getattr(transformers, arch).from_pretrained(model_dir, dtype=dtype)


def num(x):
    """JSON has no NaN / Infinity: non-finite numbers travel as the strings 'nan', 'inf', '-inf'."""
    x = float(x)
    return x if math.isfinite(x) else str(x)


def run(job):
    torch.manual_seed(0)
    dtype = DTYPES[job["dtype"]]
    device = torch.device(job.get("device", "cpu"))
    model = load(job["model"], dtype).to(device)
    if job["method"] == "lora":
        model = PeftModel.from_pretrained(model, job["adapter"], is_trainable=True)
    else:
        selected = preset_names(model, job["method"])
        for extra in (job.get("extra") or "").split(","):
            if extra:
                selected |= {n for n, _ in model.named_parameters() if n.startswith(extra + ".")}
        for n, p in model.named_parameters():
            p.requires_grad_(n in selected)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    with torch.no_grad():
        for _, p in params:
            if p.dtype != torch.float32:
                p.data = p.data.float()  # the float32 master
    dtypes = {"trained": sorted({str(p.dtype) for _, p in params}),
              "frozen": sorted({str(p.dtype) for _, p in model.named_parameters() if not p.requires_grad})}
    model.train()
    opt = torch.optim.AdamW([p for _, p in params], lr=job["lr"], weight_decay=0.0, fused=device.type == "cuda")
    sched = get_scheduler({"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}[job.get("schedule", "linear")], opt,
                          num_warmup_steps=job.get("warmup", 0), num_training_steps=job["steps"])
    scaler = None
    if job["dtype"] == "fp16":
        s = job.get("scaler") or {}
        scaler = torch.amp.GradScaler(device.type, init_scale=s.get("initScale", 2.0 ** 16), growth_factor=s.get("growthFactor", 2.0),
                                      backoff_factor=s.get("backoffFactor", 0.5), growth_interval=s.get("growthInterval", 2000))
    with safe_open(job["data"], "pt") as f:
        data = {k: f.get_tensor(k) for k in f.keys()}
    n = next(iter(data.values())).shape[0]
    bs = job["batchSize"]
    micro = [list(range(i, min(i + bs, n))) for i in range(0, n, bs)]
    tokens = "input_ids" in data
    steps = []
    for step in range(job["steps"]):
        idx = micro[step % len(micro)]
        batch = {k: v[idx].to(device) for k, v in data.items()}
        if tokens:
            batch["num_items_in_batch"] = int((batch["labels"][..., 1:] != -100).sum())
        lr = opt.param_groups[0]["lr"]
        with torch.autocast(device.type, dtype=dtype):
            loss = model(**batch).loss
        scale = scaler.get_scale() if scaler else None
        (scaler.scale(loss) if scaler else loss).backward()
        if scaler:
            scaler.unscale_(opt)
        norm = torch.nn.utils.clip_grad_norm_([p for _, p in params], job["maxGradNorm"])
        skipped = False
        if scaler:
            before = scaler.get_scale()
            scaler.step(opt)
            scaler.update()
            skipped = scaler.get_scale() < before
        else:
            opt.step()
        if not skipped:
            sched.step()
        opt.zero_grad(set_to_none=True)
        steps.append({"loss": num(loss.detach().float()), "grad_norm": num(norm), "lr": lr, "scale": scale, "skipped": skipped})
    return {"steps": steps, "trainable": sum(p.numel() for _, p in params), "dtypes": dtypes}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        jobs = json.load(f)
    print(json.dumps([run(j) for j in jobs], allow_nan=False))
