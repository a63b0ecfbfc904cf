"""Fine-tuning steps of the tiny BLIP VQA model in PyTorch, as the reference for medtune's trainer.

Usage: blip_train_reference.py OUT_DIR FIXTURE_DIR METHOD STEPS BATCH LR
FIXTURE_DIR is make_blip_fixtures.py's output: the model is hf_vqa (BlipForQuestionAnswering), the
data the VQA-RAD training questions of data/, prepared by BLIP's own preprocessing
(data.reference.safetensors). METHOD 'ln' trains every nn.LayerNorm (LN-tuning), 'full' everything.
The loss is Salesforce BLIP's (blip_vqa.py): label smoothing 0.1, summed per answer, divided by the
number of questions. AdamW (torch defaults, no weight decay), constant lr, clip_grad_norm_(1.0),
batches in file order ([0, 1], [2], [0, 1] ... for 3 examples and batch 2). Writes
OUT_DIR/result.json: per-step loss and gradient norm, trainable tensor names and element count.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import BlipForQuestionAnswering

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blip_reference_fix import restore_cross_attention_mask  # noqa: E402

# Batches pad questions to the longest: mask the padding in cross-attention as BLIP does.
restore_cross_attention_mask()

out_dir, fixture, method, steps, batch, lr = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
torch.manual_seed(0)
model = BlipForQuestionAnswering.from_pretrained(os.path.join(fixture, "hf_vqa")).train()
data = load_file(os.path.join(fixture, "data.reference.safetensors"))
n = data["input_ids"].shape[0]

for p in model.parameters():
    p.requires_grad_(method == "full")
if method == "ln":
    for m in model.modules():
        if isinstance(m, torch.nn.LayerNorm):
            for p in m.parameters():
                p.requires_grad_(True)
trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
params = [p for _, p in trainable]
optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
model.text_decoder.label_smoothing = 0.1

order = list(range(n))
windows = [order[i:i + batch] for i in range(0, n, batch)]
result = {"steps": [], "trainable": [name for name, _ in trainable], "trainable_numel": sum(p.numel() for p in params)}
for step in range(steps):
    idx = torch.tensor(windows[step % len(windows)])
    b = {k: v.index_select(0, idx) for k, v in data.items() if not k.startswith("report_")}
    image = model.vision_model(pixel_values=b["pixel_values"]).last_hidden_state
    q = model.text_encoder(input_ids=b["input_ids"], attention_mask=b["attention_mask"], encoder_hidden_states=image).last_hidden_state
    out = model.text_decoder(input_ids=b["decoder_input_ids"], attention_mask=b["decoder_attention_mask"], encoder_hidden_states=q,
                             encoder_attention_mask=b["attention_mask"], labels=b["labels"], reduction="none")
    loss = out.loss.sum() / idx.numel()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad()
    result["steps"].append({"loss": loss.item(), "grad_norm": norm.item()})

os.makedirs(out_dir, exist_ok=True)
with open(os.path.join(out_dir, "result.json"), "w") as f:
    json.dump(result, f, indent=2)
