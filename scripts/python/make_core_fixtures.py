"""Reference values for the tensor-core tests (test/torch/*.test.ts), computed by PyTorch.

Run: .venv/bin/python scripts/python/make_core_fixtures.py > test/fixtures/core-reference.json
The inputs are written out literally so the TypeScript tests build the same tensors.
"""
import json

import torch

torch.manual_seed(0)


def lst(t):
    return t.detach().to(torch.float64).tolist()


x = torch.randn(3, 4, dtype=torch.float32)
w = torch.randn(4, 5, dtype=torch.float32)
b = torch.randn(5, dtype=torch.float32)

out = {"torch": torch.__version__, "inputs": {"x": lst(x), "w": lst(w), "b": lst(b)}}

# Forward ops.
y = x @ w
out["matmul"] = lst(y)
out["linear"] = lst(torch.nn.functional.linear(x, w.T, b))
out["softmax_dim1"] = lst(torch.softmax(y, dim=1))
out["log_softmax_dim0"] = lst(torch.log_softmax(y, dim=0))
out["sum"] = y.sum().item()
out["sum_dim0"] = lst(y.sum(0))
out["mean_dim1_keepdim"] = lst(y.mean(1, keepdim=True))
out["std_dim1"] = lst(y.std(1))
out["var_all"] = y.var().item()
out["norm_dim1"] = lst(y.norm(dim=1))
out["logsumexp_dim1"] = lst(torch.logsumexp(y, dim=1))
out["amax_dim0"] = lst(y.amax(0))
out["argmax_dim1"] = y.argmax(1).tolist()
out["cumsum_dim1"] = lst(y.cumsum(1))
out["layer_norm"] = lst(torch.nn.functional.layer_norm(y, (5,), eps=1e-5))
out["gelu"] = lst(torch.nn.functional.gelu(y))
out["gelu_tanh"] = lst(torch.nn.functional.gelu(y, approximate="tanh"))
target = torch.tensor([1, 4, 0])
out["cross_entropy"] = torch.nn.functional.cross_entropy(y, target).item()
out["cross_entropy_smooth"] = torch.nn.functional.cross_entropy(y, target, label_smoothing=0.1).item()
labels = (torch.arange(15).reshape(3, 5) % 3 == 0).float()
out["bce_with_logits"] = torch.nn.functional.binary_cross_entropy_with_logits(y, labels).item()

# Gradient of a composite function: f = sum(softmax(xW + b) * logsigmoid(xW + b)) + mean(tanh(W)^2)
xg = x.clone().requires_grad_(True)
wg = w.clone().requires_grad_(True)
bg = b.clone().requires_grad_(True)
z = xg @ wg + bg
f = (torch.softmax(z, dim=-1) * torch.nn.functional.logsigmoid(z)).sum() + torch.tanh(wg).pow(2).mean()
f.backward()
out["composite"] = {"value": f.item(), "grad_x": lst(xg.grad), "grad_w": lst(wg.grad), "grad_b": lst(bg.grad)}

# bfloat16 and float16 rounding of chosen values (round-to-nearest-even).
values = [1.0, 3.14159265, -2.71828, 1e-3, 65504.0, 1.00390625, 1.01171875, 300.5]
out["bf16_values"] = values
out["bf16_rounded"] = torch.tensor(values, dtype=torch.float32).to(torch.bfloat16).to(torch.float64).tolist()
out["f16_rounded"] = torch.tensor(values, dtype=torch.float32).to(torch.float16).to(torch.float64).tolist()

print(json.dumps(out, indent=1))
