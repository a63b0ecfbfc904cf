"""Reads a safetensors file with the reference safetensors library and prints what it holds.

Usage: dump_safetensors.py FILE.safetensors [MORE.safetensors ...]

Prints JSON: {"metadata": {...}, "header_bytes": N, "tensors": {name: {dtype, shape, offsets,
hex}}} where hex is the tensor's row-major little-endian bytes, and offsets are the header's
data_offsets (to check layout and alignment). With several files, a list of those in order.
"""

import json
import struct
import sys

import torch
from safetensors import safe_open



def dump(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    out = {"metadata": header.get("__metadata__"), "header_bytes": n, "tensors": {}}
    with safe_open(path, framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name)
            raw = t.view(torch.uint8) if t.dtype == torch.bool else t
            out["tensors"][name] = {
                "dtype": str(t.dtype).replace("torch.", ""),
                "shape": list(t.shape),
                "offsets": header[name]["data_offsets"],
                "hex": raw.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex(),
            }
    return out


dumps = [dump(p) for p in sys.argv[1:]]
print(json.dumps(dumps[0] if len(dumps) == 1 else dumps))
