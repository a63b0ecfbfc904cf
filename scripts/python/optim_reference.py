"""Reference trajectories of torch.optim (AdamW, SGD; single-tensor and fused) and of
torch.nn.utils.clip_grad_norm_ on small random parameters and gradients.

Prints JSON: for each case the initial parameters, and per step the learning rates of the groups,
the gradients given (null = that parameter has no gradient this step) and the parameters after
the step. medtune's test (test/train/optim.test.ts) replays the same gradients through its own
optimizers and compares.

Usage: optim_reference.py
"""

import json

import torch

SHAPES = [[3, 4], [5], [2, 3, 2], [4]]
STEPS = 5


def tolist(t):
    return t.detach().double().flatten().tolist()


def make_case(name, kind, options, groups, seed, impl="single", skip=None, lr_factors=None):
    """groups: list of (param indices, group overrides)."""
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=g).requires_grad_(True) for s in SHAPES]
    init = [tolist(p) for p in params]
    param_groups = [dict(params=[params[i] for i in idx], **over) for idx, over in groups]
    extra = {"fused": True} if impl == "fused" else {"foreach": False}
    if kind == "adamw":
        opt = torch.optim.AdamW(param_groups, **options, **extra)
    else:
        opt = torch.optim.SGD(param_groups, **options, **extra)
    base = [group["lr"] for group in opt.param_groups]
    steps = []
    for step in range(STEPS):
        factor = (lr_factors or [1.0] * STEPS)[step]
        lrs = [b * factor for b in base]
        for group, lr in zip(opt.param_groups, lrs):
            group["lr"] = lr
        grads = []
        for i, p in enumerate(params):
            if skip and (step, i) in skip:
                p.grad = None
                grads.append(None)
            else:
                p.grad = torch.randn(p.shape, generator=g)
                grads.append(tolist(p.grad))
        opt.step()
        steps.append({"lrs": lrs, "grads": grads, "params": [tolist(p) for p in params]})
    state = {}
    for gi, group in enumerate(opt.param_groups):
        for p in group["params"]:
            idx = next(i for i, q in enumerate(params) if q is p)
            for k, v in opt.state[p].items():
                state[f"p{idx}.{k}"] = tolist(v) if isinstance(v, torch.Tensor) else v
    return {
        "name": name,
        "kind": kind,
        "implementation": impl,
        "options": options,
        "groups": [{"params": idx, **over} for idx, over in groups],
        "shapes": SHAPES,
        "init": init,
        "steps": steps,
        "state": state,
    }


def clip_case(name, max_norm, norm_type, seed, dtypes):
    g = torch.Generator().manual_seed(seed)
    params = []
    for s, dt in zip(SHAPES, dtypes):
        p = torch.zeros(s, dtype=dt, requires_grad=True)
        p.grad = (torch.randn(s, generator=g) * 0.7).to(dt)
        params.append(p)
    params[2].grad = None  # parameters without a gradient are left out
    grads = [tolist(p.grad) if p.grad is not None else None for p in params]
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    return {
        "name": name,
        "max_norm": max_norm,
        "norm_type": "inf" if norm_type == float("inf") else norm_type,
        "dtypes": [str(d).replace("torch.", "") for d in dtypes],
        "shapes": SHAPES,
        "grads": grads,
        "total_norm": total.item(),
        "total_norm_dtype": str(total.dtype).replace("torch.", ""),
        "clipped": [tolist(p.grad) if p.grad is not None else None for p in params],
    }


def main():
    two_groups = [([0, 2], {}), ([1, 3], {"lr": 0.05, "weight_decay": 0.0})]
    warm = [0.0, 0.5, 1.0, 0.75, 0.25]
    cases = [
        make_case("adamw defaults", "adamw", {"lr": 1e-3}, [([0, 1, 2, 3], {})], seed=1),
        make_case("adamw groups, schedule, skipped grads", "adamw", {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.1},
                  two_groups, seed=2, skip={(1, 0), (0, 3), (3, 3)}, lr_factors=warm),
        make_case("adamw amsgrad", "adamw", {"lr": 0.02, "amsgrad": True}, two_groups, seed=3),
        make_case("sgd plain", "sgd", {"lr": 0.1}, [([0, 1, 2, 3], {})], seed=4),
        make_case("sgd momentum dampening decay", "sgd", {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.01},
                  two_groups, seed=5, skip={(0, 1), (2, 0)}, lr_factors=warm),
        make_case("sgd nesterov", "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4},
                  [([0, 1, 2, 3], {})], seed=6),
        make_case("adamw fused", "adamw", {"lr": 0.01, "weight_decay": 0.05}, two_groups, seed=7, impl="fused", lr_factors=warm),
        make_case("sgd fused momentum", "sgd", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}, two_groups, seed=8, impl="fused"),
        make_case("sgd fused nesterov", "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}, [([0, 1, 2, 3], {})], seed=13, impl="fused"),
    ]
    f32 = [torch.float32] * 4
    clips = [
        clip_case("clipping", 1.0, 2.0, seed=9, dtypes=f32),
        clip_case("below the threshold", 100.0, 2.0, seed=10, dtypes=f32),
        clip_case("inf norm", 0.5, float("inf"), seed=11, dtypes=f32),
        clip_case("mixed dtypes", 0.8, 2.0, seed=12, dtypes=[torch.float32, torch.float64, torch.float32, torch.float64]),
    ]
    print(json.dumps({"torch": torch.__version__, "cases": cases, "clip": clips}))


if __name__ == "__main__":
    main()
