"""The PyTorch side of scripts/bench/load-checkpoint.ts: one load of a checkpoint directory, timed,
with the resident-set peak during the load (VmHWM after a reset through /proc/self/clear_refs).

Usage: bench_load.py DIR DTYPE MODE [touch]
  MODE: transformers (from_pretrained) | safetensors (load_file per shard)
  touch: include reading every parameter once (sum), when lazily mapped weights are paged in
Prints one JSON line.
"""
import glob
import json
import os
import re
import sys
import time

import torch


def status(field):
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1)) * 1024


model_dir, dtype_name, mode = sys.argv[1:4]
touch = "touch" in sys.argv[4:]
dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}[dtype_name]
if mode == "transformers":
    from transformers import AutoModelForCausalLM
else:
    from safetensors.torch import load_file
baseline = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
start = time.perf_counter()
if mode == "transformers":
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    weights = list(model.parameters())
else:
    tensors = {}
    for shard in sorted(glob.glob(os.path.join(model_dir, "*.safetensors"))):
        for k, v in load_file(shard).items():
            tensors[k] = v.to(dtype)
    weights = list(tensors.values())
if touch:
    with torch.no_grad():
        for w in weights:
            w.sum().item()
params = sum(w.numel() for w in weights)
elapsed = time.perf_counter() - start
peak = status("VmHWM")
print(json.dumps({"loadMs": elapsed * 1000, "baselineBytes": baseline, "peakBytes": peak, "peakOverBaselineBytes": peak - baseline, "params": params}))
