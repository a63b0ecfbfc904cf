"""The PyTorch side of `npm run bench` (scripts/bench/run.ts): one long-lived interpreter per case
family, so that interpreter start and imports never land inside a measurement. Reads one JSON
command per line on stdin and answers one JSON line on stdout (errors as {"error": ...}).

Commands (model directories and tensor files are the ones the medtune side uses):
  {"cmd": "threads", "n": N}                          torch.set_num_threads(N); -> versions
  {"cmd": "train", "model": DIR, "data": FILE, "method": M, "batch": B, "steps": S, "warmup": W}
      loads the model, applies the tuning method as a PyTorch user would (ln / ffn / attn / full by
      module classes and names, peft_reference.preset_names; lora via peft's get_peft_model with
      medtune's defaults r 8, alpha 8, dropout 0 on q_proj and v_proj), then runs the trainer's
      loop (AdamW lr 1e-4 wd 0.01 over the trainable parameters, clip_grad_norm_ 1.0, zero_grad
      set_to_none, loss read back every step). -> {step_ms: [...] (time between the ends of
      consecutive steps, W warmup steps not counted), loss: [...], trainable: N,
      forward_backward_ms / optimizer_ms: [...] (the step split where medtune's native step
      splits it: batch, forward and backward | clipping, update, zero_grad, loss read-back)}
  {"cmd": "forward", "model": DIR, "data": FILE, "batch": B, "iters": I, "warmup": W}
      inference forward (no_grad, eval) on the first B examples -> {ms: [...]}
  {"cmd": "generate", "model": DIR, "data": FILE, "new_tokens": N, "iters": I, "warmup": W}
      greedy generate(use_cache=True) of exactly N tokens (EOS disabled) on the data's first row
      -> {ms: [...], tokens: [...]}
"""
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from peft_reference import preset_names  # noqa: E402

_models = {}


def load(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        arch = json.load(f)["architectures"][0]
    return getattr(transformers, arch).from_pretrained(model_dir, dtype=torch.float32)


def apply_method(model, method):
    if method == "lora":
        from peft import LoraConfig, get_peft_model
        return get_peft_model(model, LoraConfig(r=8, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    selected = preset_names(model, method)
    for n, p in model.named_parameters():
        p.requires_grad_(n in selected)
    return model


def rows(data, idx):
    return {k: v[idx] for k, v in data.items()}


def train(model_dir, data_path, method, batch, steps, warmup):
    model = apply_method(load(model_dir), method)
    model.train()
    data = load_file(data_path)
    n = next(iter(data.values())).shape[0]
    tokens = "input_ids" in data
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
    times, losses, fb_ms, opt_ms = [], [], [], []
    last = time.perf_counter()
    for step in range(warmup + steps):
        idx = [(step * batch + i) % n for i in range(batch)]
        b = rows(data, idx)
        kwargs = {}
        if tokens:  # the HF Trainer's token-mean loss (what medtune's 'tokens' scaling computes)
            kwargs["num_items_in_batch"] = (b["labels"][..., 1:] != -100).sum()
        out = model(**b, **kwargs)
        out.loss.backward()
        t1 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = out.loss.item()
        now = time.perf_counter()
        if step >= warmup:
            times.append((now - last) * 1000)
            fb_ms.append((t1 - last) * 1000)
            opt_ms.append((now - t1) * 1000)
            losses.append(loss)
        last = now
    return {"step_ms": times, "loss": losses, "trainable": sum(p.numel() for p in params), "forward_backward_ms": fb_ms, "optimizer_ms": opt_ms}


def cached(model_dir):
    if model_dir not in _models:
        _models[model_dir] = load(model_dir).eval()
    return _models[model_dir]


def forward(model_dir, data_path, batch, iters, warmup):
    model = cached(model_dir)
    data = load_file(data_path)
    b = {k: v[:batch] for k, v in data.items() if k != "labels"}
    times = []
    with torch.no_grad():
        for i in range(warmup + iters):
            t0 = time.perf_counter()
            model(**b)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
    return {"ms": times}


def generate(model_dir, data_path, new_tokens, iters, warmup):
    model = cached(model_dir)
    model.generation_config.eos_token_id = None  # exactly new_tokens tokens, as medtune with no EOS ids
    model.generation_config.pad_token_id = 0
    data = load_file(data_path)
    b = {k: data[k][:1] for k in ("input_ids", "attention_mask", "pixel_values") if k in data}
    times, tokens = [], None
    with torch.no_grad():
        for i in range(warmup + iters):
            t0 = time.perf_counter()
            out = model.generate(**b, max_new_tokens=new_tokens, do_sample=False, use_cache=True)
            if i >= warmup:
                times.append((time.perf_counter() - t0) * 1000)
            tokens = out[0, b["input_ids"].shape[1]:].tolist()
    return {"ms": times, "tokens": tokens}


def handle(cmd):
    c = cmd["cmd"]
    if c == "threads":
        torch.set_num_threads(int(cmd["n"]))
        return {"threads": torch.get_num_threads(), "torch": torch.__version__, "transformers": transformers.__version__,
                "python": sys.version.split()[0]}
    if c == "train":
        return train(cmd["model"], cmd["data"], cmd["method"], int(cmd["batch"]), int(cmd["steps"]), int(cmd["warmup"]))
    if c == "forward":
        return forward(cmd["model"], cmd["data"], int(cmd["batch"]), int(cmd["iters"]), int(cmd["warmup"]))
    if c == "generate":
        return generate(cmd["model"], cmd["data"], int(cmd["new_tokens"]), int(cmd["iters"]), int(cmd["warmup"]))
    raise ValueError(f"unknown command {c!r}")


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = handle(json.loads(line))
        except Exception as e:  # the TypeScript side raises it with the command that failed
            reply = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
