"""torch.save checkpoints for medtune's .pth loader tests, written by PyTorch itself.

Usage: make_pth_fixtures.py OUT_DIR

Writes OUT_DIR/*.pth (state dicts in every layout the loader must find, dtypes, views, both
container formats, pickle protocols 1-5, big-endian data), malicious checkpoints whose payloads
would create marker files, damaged archives, and OUT_DIR/expected.json with what PyTorch saved:
for every tensor its dtype, shape, stride, storage offset, which storage it shares, and its
exact bytes (hex, row-major, little-endian).
"""

import argparse
import io
import json
import os
import pathlib
import pickle
import secrets
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import torch

OUT = pathlib.Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
# Payload markers go to the system temp dir (always writable, unlike OUT, which is renamed after
# this script), under a name unique to this fixture set.
MARKERS = pathlib.Path(tempfile.gettempdir())
TOKEN = secrets.token_hex(6)
warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
torch.manual_seed(0)
expected = {"files": {}, "pickles": {}, "markers": {}}


def tensor_bytes(t):
    t = t.detach().contiguous()
    if t.dtype == torch.bool:
        t = t.view(torch.uint8)
    return t.reshape(-1).view(torch.uint8).numpy().tobytes().hex()


def describe_state_dict(sd):
    """What the loader must reproduce for each tensor, and which tensors share a storage."""
    storages = {}
    out = {}
    for name, t in sd.items():
        ptr = t.untyped_storage().data_ptr()
        group = storages.setdefault(ptr, len(storages))
        out[name] = {
            "dtype": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "stride": list(t.stride()),
            "offset": t.storage_offset(),
            "storage": group,
            "hex": tensor_bytes(t),
        }
    return out


def save(name, obj, sd=None, **kwargs):
    path = OUT / name
    torch.save(obj, path, **kwargs)
    # What PyTorch itself reads back (weights_only=False: these files are ours).
    loaded = torch.load(path, weights_only=False)
    if sd is not None:
        expected["files"][name] = describe_state_dict(sd(loaded) if callable(sd) else sd)
    return path


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(4, 3)
        self.norm = torch.nn.LayerNorm(3)
        self.bn = torch.nn.BatchNorm1d(3)
        self.head = torch.nn.Linear(3, 2)
        self.register_buffer("scratch", torch.zeros(2), persistent=False)

    def forward(self, x):
        return self.head(self.bn(self.norm(self.proj(x))))


model = Tiny()
with torch.no_grad():
    model(torch.randn(5, 4))  # BatchNorm running stats and num_batches_tracked become non-trivial
model.bn.running_mean.add_(0.25)
# A snapshot: state_dict() shares memory with the parameters that training changes below.
sd = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())

# 1. a bare state dict
save("bare.pth", sd, sd)

# 2. a training checkpoint: {model, optimizer, epoch, args: Namespace, numpy values}
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
model.train()
model(torch.randn(5, 4)).sum().backward()
opt.step()
sd_trained = model.state_dict()
args = argparse.Namespace(lr=1e-3, model="vit_base_patch16", epochs=100, data_path=pathlib.PosixPath("/data/cxr"), layers=[1, 2])
save(
    "training.pth",
    {
        "model": sd_trained,
        "optimizer": opt.state_dict(),
        "epoch": 7,
        "args": args,
        "best_auc": np.float64(0.8125),
        "class_weights": np.arange(3, dtype=np.float32),
    },
    sd_trained,
)

# 3. DDP-style keys (DataParallel gives the same "module." names as DistributedDataParallel)
dp_sd = torch.nn.DataParallel(model).state_dict()
assert all(k.startswith("module.") for k in dp_sd)
save("ddp.pth", {"state_dict": dp_sd, "epoch": 1}, sd_trained)

# 4. every dtype medtune has, with special values
special = torch.tensor([0.0, -0.0, 1.5, -2.25, float("inf"), float("-inf"), float("nan"), 6.1e-5, 3.0e-8, 65504.0])
dtypes = OrderedDict(
    f32=special.clone(),
    f16=special.to(torch.float16),
    bf16=(special * 3.3).to(torch.bfloat16),
    f64=special.to(torch.float64) / 3,
    i64=torch.tensor([0, -1, 2**53 + 1, -(2**62), 2**63 - 1], dtype=torch.int64),
    i32=torch.tensor([-(2**31), 2**31 - 1, 5], dtype=torch.int32),
    i16=torch.tensor([-32768, 32767, 7], dtype=torch.int16),
    i8=torch.tensor([-128, 127, 0], dtype=torch.int8),
    u8=torch.tensor([0, 255, 17], dtype=torch.uint8),
    bool=torch.tensor([True, False, True]),
    scalar=torch.tensor(2.5),
    empty=torch.zeros(0, 3),
    bf16_matrix=torch.randn(4, 5).to(torch.bfloat16),
    f16_matrix=torch.randn(3, 2).to(torch.float16),
)
save("dtypes.pth", dtypes, dtypes)

# 5. views sharing storages: offsets, non-contiguous strides, expand (stride 0), tied weights
base = torch.arange(60, dtype=torch.float32).reshape(6, 10) / 7
bf = torch.randn(8, 6).to(torch.bfloat16)
embedding = torch.randn(5, 3)
views = OrderedDict(
    base=base,
    row=base[2],
    col=base[:, 3],
    transposed=base.t(),
    strided=base[1:4, 2:8:2],
    expanded=base[0:1].expand(4, 10),
    bf=bf,
    bf_t=bf.t(),
    bf_block=bf[2:6, 1:4],
    embed=embedding,
    lm_head=embedding,
    alone=torch.randn(3),
)
save("views.pth", views, views)

# 6. the legacy (pre-1.6) stream format
legacy = OrderedDict(list(views.items()) + [(f"dt_{k}", v) for k, v in dtypes.items()])
save("legacy.pth", legacy, legacy, _use_new_zipfile_serialization=False)
save("legacy_training.pth", {"model": sd_trained, "epoch": 3, "args": args}, sd_trained, _use_new_zipfile_serialization=False)

# 7. pickle protocols other than torch's default 2
for p in (1, 4, 5):
    save(f"protocol{p}.pth", {"state_dict": views}, views, pickle_protocol=p)

# 8. nested and alternative layouts
teacher = OrderedDict((k, v + 1) for k, v in sd.items())
save("dino.pth", {"student": sd, "teacher": teacher, "epoch": 5, "dino_loss": {"center": torch.zeros(1, 4)}}, teacher)
save("ema.pth", {"model_ema": teacher, "model": sd}, sd)
save("custom_key.pth", {"weights_of_run": sd, "step": 10}, sd)
save("whole_model.pth", model, sd_trained)

# An MAE pre-training checkpoint in timm's ViT key layout (as MAE / MRM release them): encoder,
# decoder, optimizer, loss scaler and args.
def timm_vit(dim, depth, patch, image, chans=3, mlp=4, decoder=False):
    g = torch.Generator().manual_seed(1)
    r = lambda *shape: torch.randn(*shape, generator=g)
    out = OrderedDict(cls_token=r(1, 1, dim), pos_embed=r(1, (image // patch) ** 2 + 1, dim))
    out["patch_embed.proj.weight"] = r(dim, chans, patch, patch)
    out["patch_embed.proj.bias"] = r(dim)
    for i in range(depth):
        b = f"blocks.{i}."
        for n, shape in [("norm1.weight", (dim,)), ("norm1.bias", (dim,)), ("attn.qkv.weight", (3 * dim, dim)), ("attn.qkv.bias", (3 * dim,)),
                         ("attn.proj.weight", (dim, dim)), ("attn.proj.bias", (dim,)), ("norm2.weight", (dim,)), ("norm2.bias", (dim,)),
                         ("mlp.fc1.weight", (mlp * dim, dim)), ("mlp.fc1.bias", (mlp * dim,)), ("mlp.fc2.weight", (dim, mlp * dim)), ("mlp.fc2.bias", (dim,))]:
            out[b + n] = r(*shape)
    out["norm.weight"], out["norm.bias"] = r(dim), r(dim)
    if decoder:
        out["mask_token"] = r(1, 1, dim // 2)
        out["decoder_embed.weight"], out["decoder_embed.bias"] = r(dim // 2, dim), r(dim // 2)
        out["decoder_pos_embed"] = r(1, (image // patch) ** 2 + 1, dim // 2)
        out["decoder_blocks.0.norm1.weight"] = r(dim // 2)
        out["decoder_norm.weight"] = r(dim // 2)
        out["decoder_pred.weight"] = r(patch * patch * chans, dim // 2)
    return out


mae = timm_vit(32, 2, 4, 16, decoder=True)
save(
    "mae_tiny.pth",
    {"model": mae, "optimizer": {"state": {}, "param_groups": [{"lr": 1.5e-4, "params": list(range(len(mae)))}]}, "epoch": 799,
     "scaler": {"scale": 65536.0, "growth_factor": 2.0, "_growth_tracker": 0}, "args": argparse.Namespace(model="mae_vit_tiny", mask_ratio=0.75)},
    mae,
)

# 9. big-endian storages: the same tensors with byteorder "big" and byte-swapped records
def rewrite_zip(src, dst, transform):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = transform(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)

be_src = OUT / "dtypes.pth"
with zipfile.ZipFile(be_src) as z:
    prefix = z.namelist()[0].split("/")[0]
# Element size of each storage record, from its storage type in the pickle.
keys = {}


class KeyRecorder(pickle.Unpickler):
    def persistent_load(self, pid):
        _, storage_type, key, _, numel = pid
        keys[key] = storage_type.dtype.itemsize
        return None

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return lambda *a: None
        return super().find_class(module, name)

with zipfile.ZipFile(be_src) as z:
    KeyRecorder(io.BytesIO(z.read(f"{prefix}/data.pkl"))).load()


def to_big(name, data):
    if name.endswith("/byteorder"):
        return b"big"
    key = name.split("/data/")[-1] if "/data/" in name else None
    if key is not None and key in keys and keys[key] > 1:
        return np.frombuffer(data, dtype=f"<u{keys[key]}").byteswap().tobytes()
    return data


rewrite_zip(be_src, OUT / "bigendian.pth", to_big)
be_loaded = torch.load(OUT / "bigendian.pth", weights_only=True)
assert all(torch.equal(be_loaded[k], v) or (v.is_floating_point() and torch.equal(be_loaded[k].isnan(), v.isnan())) for k, v in dtypes.items())
expected["files"]["bigendian.pth"] = describe_state_dict(be_loaded)

# Archives rewritten by other zip tools: deflated records, ZIP64 local headers, no alignment.
def rewrite_zip_with(src, dst, compression, force_zip64=False):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            with zout.open(info.filename, "w", force_zip64=force_zip64) as f:
                f.write(zin.read(info.filename))


rewrite_zip_with(OUT / "views.pth", OUT / "deflated.pth", zipfile.ZIP_DEFLATED)
rewrite_zip_with(OUT / "views.pth", OUT / "zip64.pth", zipfile.ZIP_STORED, force_zip64=True)
for name in ("deflated.pth", "zip64.pth"):
    expected["files"][name] = describe_state_dict(torch.load(OUT / name, weights_only=True))

# A legacy checkpoint saved from a GPU by an old PyTorch: torch.cuda.FloatStorage on "cuda:0".
raw = (OUT / "legacy.pth").read_bytes()
assert b"ctorch\nFloatStorage\n" in raw
raw = raw.replace(b"ctorch\nFloatStorage\n", b"ctorch.cuda\nFloatStorage\n").replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
(OUT / "legacy_cuda.pth").write_bytes(raw)
expected["files"]["legacy_cuda.pth"] = describe_state_dict(torch.load(OUT / "legacy_cuda.pth", weights_only=False, map_location="cpu"))

# 10. damaged archives
rewrite_zip(OUT / "bare.pth", OUT / "truncated_pickle.pth", lambda n, d: d[: len(d) // 2] if n.endswith("data.pkl") else d)
rewrite_zip(OUT / "bare.pth", OUT / "unknown_opcode.pth", lambda n, d: d[:2] + b"\xff" + d[3:] if n.endswith("data.pkl") else d)
rewrite_zip(OUT / "bare.pth", OUT / "missing_storage.pth", lambda n, d: None if n.endswith("/data/1") else d)
# A flipped bit inside a storage record (the zip directory keeps the original CRC-32).
damaged = bytearray((OUT / "bare.pth").read_bytes())
with zipfile.ZipFile(OUT / "bare.pth") as z:
    info = z.getinfo(f"{z.namelist()[0].split('/')[0]}/data/0")
    local = info.header_offset
    name_len = int.from_bytes(damaged[local + 26 : local + 28], "little")
    extra_len = int.from_bytes(damaged[local + 28 : local + 30], "little")
    damaged[local + 30 + name_len + extra_len + 1] ^= 0x10
(OUT / "bad_crc.pth").write_bytes(bytes(damaged))

# 11. malicious checkpoints: each payload would create its marker file when torch.load
# (weights_only=False) unpickles it.
class Payload:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def payloads(marker):
    return {
        "os_system": (os.system, (f"touch {marker}",)),
        "exec": (exec, (f"open({str(marker)!r}, 'w').write('pwned')",)),
        "subprocess": (subprocess.call, (["touch", str(marker)],)),
    }


for kind in ("os_system", "exec", "subprocess"):
    marker = MARKERS / f"medtune-marker-{TOKEN}-{kind}"
    fn, a = payloads(marker)[kind]
    torch.save({"model": sd, "payload": Payload(fn, a)}, OUT / f"evil_{kind}.pth")
    expected["markers"][f"evil_{kind}.pth"] = str(marker)
    # Prove the payload is live: PyTorch's unrestricted loader runs it (on another marker).
    live = MARKERS / f"medtune-live-{TOKEN}-{kind}"
    lf, la = payloads(live)[kind]
    buf = io.BytesIO()
    torch.save({"payload": Payload(lf, la)}, buf)
    buf.seek(0)
    torch.load(buf, weights_only=False)
    expected["markers"][f"live_{kind}"] = live.exists()
    live.unlink(missing_ok=True)

marker = MARKERS / f"medtune-marker-{TOKEN}-legacy"
torch.save({"model": sd, "payload": Payload(os.system, (f"touch {marker}",))}, OUT / "evil_legacy.pth", _use_new_zipfile_serialization=False)
expected["markers"]["evil_legacy.pth"] = str(marker)
marker = MARKERS / f"medtune-marker-{TOKEN}-proto4"
torch.save([Payload(os.system, (f"touch {marker}",))], OUT / "evil_proto4.pth", pickle_protocol=4)
expected["markers"]["evil_proto4.pth"] = str(marker)

# 12. plain pickles of Python data in every protocol, with how Python sees them
def as_json(v):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v if abs(v) <= 2**53 - 1 else {"$int": str(v)}
    if isinstance(v, float):
        return v if v == v and abs(v) != float("inf") else {"$float": repr(v)}
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, tuple):
        return {"$tuple": [as_json(x) for x in v]}
    if isinstance(v, list):
        return [as_json(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return {"$set": sorted(as_json(x) for x in v)}
    if isinstance(v, dict):
        return {"$dict": [[as_json(k), as_json(x)] for k, x in v.items()]}
    raise TypeError(type(v))


data = {
    "ints": [0, 1, -1, 255, 256, 65535, 65536, -(2**31), 2**31 - 1, 2**31, 2**53 + 1, -(2**64) - 5, 10**40],
    "floats": [0.0, -0.0, 1.5, 1e-310, 1e300, float("inf"), float("-inf"), float("nan")],
    "text": ["", "plain", "ünïcødé ✓", "line\nbreak", "back\\slash", "quote'\"", "x" * 300],
    "bytes": [b"", b"\x00\xffabc", bytearray(b"mutable")],
    "tuple": (1, (2, (3,)), ()),
    "sets": [{1, 2, 3}, frozenset({"a", "b"})],
    "nested": {"a": {"b": {"c": [None, True, False]}}},
    "int_keys": {0: "zero", -7: "neg", (1, 2): "tuple key"},
    "ordered": OrderedDict([("z", 1), ("a", 2)]),
    "shared": None,
}
shared = [1, 2]
data["shared"] = [shared, shared]
for p in range(6):
    (OUT / f"data-p{p}.pkl").write_bytes(pickle.dumps(data, protocol=p))
expected["pickles"]["data"] = as_json(data)

# Non-allowlisted globals in data pickles: they must come back as inert placeholders.
(OUT / "placeholders.pkl").write_bytes(pickle.dumps({"args": args, "scalar": np.float32(1.5), "array": np.ones((2, 2)), "path": pathlib.PurePosixPath("/x")}, protocol=2))

(OUT / "expected.json").write_text(json.dumps(expected, indent=1))
