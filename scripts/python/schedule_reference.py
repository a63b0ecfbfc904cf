"""Learning rates of transformers' get_scheduler (constant_with_warmup, linear, cosine) stepped
through a real optimizer and LambdaLR, with warmup given as steps or as a ratio the way
TrainingArguments.get_warmup_steps resolves it, for test/train/schedule.test.ts.

Usage: schedule_reference.py OUT_DIR   (writes OUT_DIR/schedules.json)
"""

import json
import math
import os
import sys

import torch
from transformers import get_scheduler


def warmup_steps(warmup, total):
    return int(warmup) if warmup >= 1 else math.ceil(total * warmup)


def run(name, total, warmup, base_lrs):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in base_lrs]
    opt = torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, base_lrs)])
    hf_name = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}[name]
    sched = get_scheduler(hf_name, opt, num_warmup_steps=warmup_steps(warmup, total), num_training_steps=total)
    lrs = []
    for _ in range(total + 2):  # two steps past the end: the schedules stay at their floor
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return {"name": name, "total": total, "warmup": warmup, "base_lrs": base_lrs, "lrs": lrs}


cases = []
for name in ["constant", "linear", "cosine"]:
    for total, warmup in [(10, 0), (10, 3), (17, 0.1), (7, 0.5), (1, 0), (50, 0.06), (5, 5), (5, 8)]:
        cases.append(run(name, total, warmup, [1e-3, 3e-4 * 0.75**3]))
with open(os.path.join(sys.argv[1], "schedules.json"), "w") as f:
    json.dump(cases, f)
