"""PyTorch side of scripts/bench/train-step.ts: the same training loop as train_reference.py
(AdamW, clip_grad_norm_, zero_grad(set_to_none)) on the same model files and tensors, timed per
optimizer step after warmup steps.

Usage: bench_train_step.py MODEL_DIR DATA.safetensors BATCH STEPS WARMUP THREADS
Prints JSON {step_ms: [...], loss: [...]}.
"""

import json
import sys
import time

import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageClassification


def main(model_dir, data_path, batch, steps, warmup, threads):
    batch, steps, warmup, threads = int(batch), int(steps), int(warmup), int(threads)
    torch.set_num_threads(threads)
    model = AutoModelForImageClassification.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    data = load_file(data_path)
    n = data["labels"].shape[0]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times, losses = [], []
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        idx = [(step * batch + i) % n for i in range(batch)]
        out = model(pixel_values=data["pixel_values"][idx], labels=data["labels"][idx])
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = out.loss.item()
        if step >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
            losses.append(loss)
    print(json.dumps({"step_ms": times, "loss": losses}))


if __name__ == "__main__":
    main(*sys.argv[1:7])
