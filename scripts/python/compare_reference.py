"""The PyTorch side of `medtune compare`: the same run as medtune's, in transformers + peft.

Usage: compare_reference.py JOB_JSON

The job (written by lib/compare/python-side.ts) names:
  model       model directory (transformers layout: config.json with model_type)
  dtype       fp32 | bf16 | fp16;  device  cpu | cuda | cuda:N
  method      medtune's method name; scope and train_extra as given to medtune
  init        the trainable weights medtune wrote before its step 1:
              {"kind": "adapter", "dir": D}  a PEFT adapter directory, loaded with
                                             PeftModel.from_pretrained(is_trainable=True)
              {"kind": "tensors", "file": F, "names": {checkpoint name: transformers-5 name}}
                                             trainable.safetensors, copied into the model; which
                                             parameters train is chosen here, by the method
  batches     the safetensors file of medtune's batches in its order: "step{S}/micro{M}/{key}",
              metadata steps, loss_scaling
  config      medtune's resolved TrainConfig (optimizer, schedule, clipping, accumulation ...)
  lr          (tests only) a learning rate other than config.lr, to provoke a divergence
  out         output directory: result.json (per-step loss, grad norm, lr, step time; counts;
              peak memory) and the trained weights (adapter, or trainable.safetensors)

The optimizer, the schedule and one optimizer step are train_reference.py's; the presets are
peft_reference.py's. Peak memory is this process's: getrusage's max RSS on CPU, the CUDA caching
allocator's peak (torch.cuda.max_memory_allocated) on GPU.
"""
import fnmatch
import json
import os
import resource
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
warnings.filterwarnings("ignore")

import torch  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from peft_reference import preset_names  # noqa: E402
from train_reference import load_model, make_optimizer, train_window  # noqa: E402

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# medtune's scopes as module prefixes of transformers 5's parameter names (the families compare
# runs: llava-hf LLaVA and ViT classifiers).
SCOPE_PREFIXES = {
    "llava": {"vision": ["model.vision_tower."], "language": ["model.language_model.", "lm_head."],
              "projector": ["model.multi_modal_projector."]},
    "vit": {"vision": ["vit."]},
}


def rss_now():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return None


def extra_names(model, patterns):
    """Parameters of --train-extra: those under a module whose name is the pattern or ends with
    '.' + pattern (peft's modules_to_save rule; globs allowed), or named by it."""
    out = set()
    for n, _ in model.named_parameters():
        parts = n.split(".")
        ancestors = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatchcase(a, pat) or fnmatch.fnmatchcase(a, "*." + pat) for a in ancestors for pat in patterns):
            out.add(n)
    return out


def select_trainable(model, job, model_type):
    selected = preset_names(model, job["method"])
    scope = job.get("scope") or "all"
    if scope != "all":
        prefixes = SCOPE_PREFIXES.get(model_type, {}).get(scope)
        if prefixes is None:
            raise SystemExit(f"compare_reference: scope '{scope}' is not known for {model_type} models here")
        selected = {n for n in selected if any(n.startswith(p) for p in prefixes)}
    selected |= extra_names(model, job.get("train_extra") or [])
    for n, p in model.named_parameters():
        p.requires_grad_(n in selected)
    return selected


def load_init_tensors(model, init):
    tensors = load_file(init["file"])
    params = dict(model.named_parameters())
    loaded = set()
    with torch.no_grad():
        for key, t in tensors.items():
            name = init["names"].get(key, key)
            if name not in params:
                raise SystemExit(f"compare_reference: {init['file']}: tensor '{key}' (transformers name '{name}') is not a parameter of the PyTorch model")
            params[name].copy_(t)
            loaded.add(name)
    return loaded


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    cfg = job["config"]
    if job.get("lr") is not None:
        cfg = {**cfg, "lr": job["lr"]}
    if job.get("threads"):
        torch.set_num_threads(int(job["threads"]))
    device = torch.device(job.get("device") or "cpu")
    cuda = device.type == "cuda"
    with open(os.path.join(job["model"], "config.json")) as f:
        model_type = json.load(f).get("model_type")
    if model_type is None:
        raise SystemExit(f"compare_reference: {job['model']}: config.json has no model_type (compare runs transformers-layout checkpoints)")

    t_load = time.perf_counter()
    model = load_model(job["model"], DTYPES[job.get("dtype") or "fp32"]).to(device)
    init = job["init"]
    mismatch = None
    if init["kind"] == "adapter":
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, init["dir"], is_trainable=True).to(device)
        trainable, total = model.get_nb_trainable_parameters()
    else:
        selected = select_trainable(model, job, model_type)
        loaded = load_init_tensors(model, init)
        if loaded != selected:
            mismatch = {"only_pytorch": sorted(selected - loaded)[:20], "only_medtune": sorted(loaded - selected)[:20]}
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
    load_s = time.perf_counter() - t_load
    model.train()

    with safe_open(job["batches"], "pt") as f:
        meta = f.metadata() or {}
        steps = int(meta["steps"])
        scaling = meta["loss_scaling"]
        windows = json.loads(meta["windows"])
        rss_before = rss_now()
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        opt, sched, names = make_optimizer(model, cfg, steps)
        torch.manual_seed(cfg["seed"])
        records = []
        every = max(1, -(-steps // 20))  # about 20 progress lines, as medtune's side prints
        for s in range(1, steps + 1):
            t0 = time.perf_counter()
            window = []
            for m in range(len(windows[s - 1])):
                prefix = f"step{s}/micro{m}/"
                window.append({k[len(prefix):]: f.get_tensor(k).to(device) for k in f.keys() if k.startswith(prefix)})
            rec = train_window(model, opt, sched, window, scaling, cfg)
            if cuda:
                torch.cuda.synchronize(device)
            rec["step_ms"] = (time.perf_counter() - t0) * 1000
            rec["samples"] = sum(int(next(iter(b.values())).shape[0]) for b in window)
            if all("attention_mask" in b for b in window):
                rec["tokens"] = sum(int(b["attention_mask"].sum()) for b in window)
            records.append(rec)
            if s == 1 or s % every == 0 or s == steps:
                print(f"step {s:>{len(str(steps))}}/{steps}  loss {rec['loss']:.4f}  lr {rec['lr']:.2e}  grad_norm {rec['grad_norm']:.3f}", flush=True)

    os.makedirs(job["out"], exist_ok=True)
    if init["kind"] == "adapter":
        model.save_pretrained(job["out"])
    else:
        save_file({n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad},
                  os.path.join(job["out"], "trainable.safetensors"), metadata={"format": "pt"})
    result = {
        "steps": records,
        "trainable": {"count": int(trainable), "total": int(total), "tensors": len(names)},
        "selection_mismatch": mismatch,
        "memory": {
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "rss_before_training_bytes": rss_before,
            "cuda_peak_allocated_bytes": int(torch.cuda.max_memory_allocated(device)) if cuda else None,
        },
        "load_s": load_s,
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
                     "peft": __import__("peft").__version__, "python": sys.version.split()[0]},
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    with open(os.path.join(job["out"], "result.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
