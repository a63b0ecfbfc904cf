"""The PyTorch side of the trainer's step-for-step parity: the same training loop medtune runs,
written with torch.optim, transformers' get_scheduler and clip_grad_norm_, on the same model
files and the same pre-processed tensors.

- data order: torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)) per epoch
  (file order without shuffling), micro-batches of batch_size, windows of grad_accum;
- loss scaling: 'batches' divides each micro-batch loss by the window's micro-batch count;
  'tokens' passes num_items_in_batch = sum(labels[..., 1:] != -100) over the window (HF Trainer);
- parameter groups: no-decay as the HF Trainer (get_decay_parameter_names) or MAE (1-d params,
  cls token, position embeddings), layer-wise lr decay as MAE's param_groups_lrd, groups in
  order of first appearance;
- clip_grad_norm_ over the model's parameters, then optimizer.step(), scheduler.step(),
  zero_grad(set_to_none=True).

Usage: train_reference.py OUT_DIR MODEL_DIR DATA.safetensors CONFIGS_JSON
CONFIGS_JSON is a list of run settings (medtune's TrainConfig field names, plus trainableKind
'norm' to train normalisation layers only); run i writes
OUT_DIR/<i>/result.json ({steps: [{loss, grad_norm, lr}], trainable: [module names]}) and the
trained model with save_pretrained into OUT_DIR/<i>/model (checkpoint key names).
"""

import json
import math
import os
import re
import sys

import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForImageClassification, Trainer, get_scheduler

MAE_NO_DECAY = re.compile(r"(?:^|\.)(?:cls_token|pos_embed|dist_token|position_embeddings)$")
BLOCK = re.compile(r"(?:^|\.)(?:blocks|layer|layers|h)\.(\d+)\.")
EMBEDDING = re.compile(r"(?:^|\.)(?:cls_token|pos_embed|dist_token|patch_embed|embeddings|embed_tokens)(?:$|\.)")


def load_model(model_dir, dtype=torch.float32):
    config = AutoConfig.from_pretrained(model_dir)
    if config.model_type == "llava":
        from transformers import LlavaForConditionalGeneration
        return LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=dtype)
    return AutoModelForImageClassification.from_pretrained(model_dir, dtype=dtype)


def layer_id(name, num_layers):
    if EMBEDDING.search(name):
        return 0
    m = BLOCK.search(name)
    return int(m.group(1)) + 1 if m else num_layers + 1


def param_groups(model, cfg):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    rule = cfg["noDecay"]
    decay_names = set(Trainer.get_decay_parameter_names(None, model)) if rule == "norm-bias" else None
    layer_decay = cfg.get("layerDecay") or 1.0
    blocks = [int(m.group(1)) for n, _ in model.named_parameters() if (m := BLOCK.search(n))]
    num_layers = max(blocks) + 1 if blocks else 0
    groups = {}
    for n, p in named:
        if rule == "none":
            exempt = False
        elif rule == "mae":
            exempt = p.ndim <= 1 or bool(MAE_NO_DECAY.search(n))
        else:
            exempt = n not in decay_names
        lid = None if layer_decay == 1.0 else layer_id(n, num_layers)
        key = ("" if lid is None else f"layer_{lid}_") + ("no_decay" if exempt else "decay")
        if key not in groups:
            scale = 1.0 if lid is None else layer_decay ** (num_layers + 1 - lid)
            groups[key] = {"params": [], "lr": cfg["lr"] * scale, "weight_decay": 0.0 if exempt else cfg["weightDecay"]}
        groups[key]["params"].append(p)
    return list(groups.values()), [n for n, _ in named]


def make_optimizer(model, cfg, total):
    """torch.optim AdamW / SGD over the trainable parameters (grouped as param_groups) and
    transformers' scheduler over `total` steps; returns (optimizer, scheduler, trainable names)."""
    groups, trainable = param_groups(model, cfg)
    if cfg["optimizer"] == "adamw":
        opt = torch.optim.AdamW(groups, lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"], weight_decay=cfg["weightDecay"])
    else:
        opt = torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=cfg["nesterov"], weight_decay=cfg["weightDecay"])
    w = cfg["warmup"]
    warmup = int(w) if w >= 1 else math.ceil(total * w)
    name = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}[cfg["schedule"]]
    sched = get_scheduler(name, opt, num_warmup_steps=warmup, num_training_steps=total)
    return opt, sched, trainable


def train_window(model, opt, sched, window, scaling, cfg):
    """One optimizer step over an accumulation window (a list of micro-batches, dicts of tensors):
    forward/backward of each with the HF Trainer's loss scaling, clipping, step, schedule step.
    Returns {loss, grad_norm, lr} as medtune logs them."""
    lr = opt.param_groups[0]["lr"]
    kwargs = {}
    if scaling == "tokens":
        kwargs["num_items_in_batch"] = sum(int((batch["labels"][..., 1:] != -100).sum()) for batch in window)
    loss_sum = 0.0
    for batch in window:
        out = model(**batch, **kwargs)
        loss = out.loss if scaling == "tokens" else out.loss / len(window)
        loss.backward()
        loss_sum += loss.detach().float()
    if cfg["maxGradNorm"] > 0:
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["maxGradNorm"])
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return {"loss": float(loss_sum), "grad_norm": float(norm), "lr": lr}


def run(model_dir, data_path, out_dir, cfg):
    model = load_model(model_dir)
    if cfg.get("trainableKind") == "norm":
        # Normalisation layers only (LayerNorm and RMSNorm weights and biases), as medtune's
        # parameters() kind 'norm' selects them.
        norms = {id(p) for m in model.modules() if isinstance(m, torch.nn.LayerNorm) or type(m).__name__.endswith("RMSNorm")
                 for p in m.parameters(recurse=False)}
        for p in model.parameters():
            p.requires_grad_(id(p) in norms)
    model.train()
    with safe_open(data_path, "pt") as f:
        data = {k: f.get_tensor(k) for k in f.keys()}
        scaling = (f.metadata() or {}).get("loss_scaling", "tokens" if "input_ids" in data else "batches")
    n = next(iter(data.values())).shape[0]

    bs, accum = cfg["batchSize"], cfg["gradAccum"]
    batches_per_epoch = n // bs if cfg["dropLast"] else math.ceil(n / bs)
    per_epoch = math.ceil(batches_per_epoch / accum)
    total = cfg["steps"] if cfg.get("steps") else cfg["epochs"] * per_epoch
    opt, sched, trainable = make_optimizer(model, cfg, total)
    torch.manual_seed(cfg["seed"])

    steps = []
    epoch = 0
    while len(steps) < total:
        if cfg["shuffle"]:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg["seed"] + epoch)).tolist()
        else:
            order = list(range(n))
        micro = [order[i:i + bs] for i in range(0, n, bs)]
        if cfg["dropLast"]:
            micro = [m for m in micro if len(m) == bs]
        windows = [micro[i:i + accum] for i in range(0, len(micro), accum)]
        for window in windows:
            if len(steps) >= total:
                break
            steps.append(train_window(model, opt, sched, [{k: v[idx] for k, v in data.items()} for idx in window], scaling, cfg))
        epoch += 1
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(os.path.join(out_dir, "model"), safe_serialization=True)
    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump({"steps": steps, "trainable": trainable}, f)


def main(out_dir, model_dir, data_path, configs_json):
    for i, cfg in enumerate(json.loads(configs_json)):
        run(model_dir, data_path, os.path.join(out_dir, str(i)), cfg)


if __name__ == "__main__":
    main(*sys.argv[1:5])
