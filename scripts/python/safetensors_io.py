"""The Python `safetensors` side of medtune's safetensors tests.

  safetensors_io.py WRITE_FILE READ_FILE
writes tensors of every common dtype to WRITE_FILE and reads READ_FILE (written by medtune), and
prints {"written": {name: {dtype, shape, values}}, "read": {"metadata": ..., "tensors": {...}}}
(one interpreter start for both directions).
"""
import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def describe(t):
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": t.to(torch.float64).flatten().tolist()}


write_path, read_path = sys.argv[1], sys.argv[2]
g = torch.Generator().manual_seed(0)
tensors = {
    "f32": torch.randn(2, 3, generator=g),
    "f64": torch.randn(4, generator=g, dtype=torch.float64),
    "bf16": torch.randn(3, 2, generator=g).to(torch.bfloat16),
    "f16": torch.randn(5, generator=g).to(torch.float16),
    "i64": torch.tensor([[1, -2], [3, 2**40]], dtype=torch.int64),
    "i32": torch.tensor([7, -8, 9], dtype=torch.int32),
    "u8": torch.tensor([0, 255, 17], dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "scalar": torch.tensor(3.5),
    "empty": torch.zeros(0, 4),
}
save_file(tensors, write_path, metadata={"format": "pt", "note": "written by safetensors"})
read = {"tensors": {}}
with safe_open(read_path, "pt") as f:
    read["metadata"] = f.metadata()
    for k in f.keys():
        read["tensors"][k] = describe(f.get_tensor(k))
print(json.dumps({"written": {k: describe(v) for k, v in tensors.items()}, "read": read}))
