"""PyTorch's side of scripts/bench/pth-load.ts.

Usage:
  bench_pth_load.py make OUT.pth        a synthetic ViT-B/16 checkpoint as MAE/MRM release them:
                                        {"model": timm-layout state dict (86M fp32), "epoch": ...}
  bench_pth_load.py time FILE.pth FILE.safetensors REPEATS
                                        median seconds of torch.load(weights_only=True) and of
                                        safetensors.torch.load_file (lazy: memory-mapped, pages
                                        read on first touch) and load_file + clone() of every
                                        tensor (all bytes in memory, as torch.load gives), as JSON
"""

import json
import statistics
import sys
import time
from collections import OrderedDict

import torch


def vit_b16_state_dict():
    g = torch.Generator().manual_seed(0)
    dim, depth, mlp, patch, image, classes = 768, 12, 3072, 16, 224, 14
    sd = OrderedDict()

    def add(name, *shape):
        sd[name] = torch.randn(*shape, generator=g) * 0.02

    add("cls_token", 1, 1, dim)
    add("pos_embed", 1, (image // patch) ** 2 + 1, dim)
    add("patch_embed.proj.weight", dim, 3, patch, patch)
    add("patch_embed.proj.bias", dim)
    for i in range(depth):
        b = f"blocks.{i}."
        add(b + "norm1.weight", dim); add(b + "norm1.bias", dim)
        add(b + "attn.qkv.weight", 3 * dim, dim); add(b + "attn.qkv.bias", 3 * dim)
        add(b + "attn.proj.weight", dim, dim); add(b + "attn.proj.bias", dim)
        add(b + "norm2.weight", dim); add(b + "norm2.bias", dim)
        add(b + "mlp.fc1.weight", mlp, dim); add(b + "mlp.fc1.bias", mlp)
        add(b + "mlp.fc2.weight", dim, mlp); add(b + "mlp.fc2.bias", dim)
    add("fc_norm.weight", dim); add("fc_norm.bias", dim)
    add("head.weight", classes, dim); add("head.bias", classes)
    return sd


def median_time(fn, repeats):
    fn()  # warm the page cache and the allocator
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        del out
    return statistics.median(times)


if sys.argv[1] == "make":
    sd = vit_b16_state_dict()
    torch.save({"model": sd, "epoch": 100}, sys.argv[2])
    print(json.dumps({"tensors": len(sd), "params": sum(t.numel() for t in sd.values())}))
elif sys.argv[1] == "time":
    from safetensors.torch import load_file

    pth, st, repeats = sys.argv[2], sys.argv[3], int(sys.argv[4])
    torch.set_num_threads(1)
    print(json.dumps({
        "torch_load": median_time(lambda: torch.load(pth, weights_only=True, map_location="cpu"), repeats),
        "safetensors_load_file": median_time(lambda: load_file(st), repeats),
        "safetensors_materialized": median_time(lambda: [t.clone() for t in load_file(st).values()], repeats),
        "threads": torch.get_num_threads(),
    }))
