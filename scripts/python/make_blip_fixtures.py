"""Tiny BLIP checkpoints in transformers' and Salesforce BLIP's layouts, with PyTorch references.

Usage: make_blip_fixtures.py OUT_DIR
Writes:
  tokenizer/          a BERT WordPiece tokenizer (uncased) with BLIP's two added tokens, made as
                      BLIP's init_tokenizer does: bos_token '[DEC]', additional special '[ENC]'
  hf_vqa/             BlipForQuestionAnswering (save_pretrained) + tokenizer + preprocessor config
  original_vqa.pth    the same weights in BLIP's own layout (visual_encoder.*, text_encoder.*,
                      text_decoder.*), torch.save'd the way BLIP's train_vqa.py does:
                      {'model', 'optimizer', 'config', 'epoch'}, tied decoder weights sharing one
                      storage, the position_ids buffers med.py registers
  pretrain_224.pth    the vision tower at a smaller image size, to check position-embedding
                      interpolation on load (BLIP's load_checkpoint)
  hf_caption/         BlipForConditionalGeneration (captioning / report generation)
  config_original.json  the config to load original_vqa.pth with
  data/               a VQA-RAD-layout dataset ('VQA_RAD Dataset Public.json' + images/) and an
                      IU-Xray-layout annotation.json, with what BLIP's own preprocessing makes of
                      them (data.reference.safetensors / data.json): pre_question / pre_caption,
                      [ENC] / [DEC] token ids, bicubic resize + CLIP normalisation (PIL, as BLIP's
                      torchvision transform on PIL images)
  bert_plain/         the WordPiece tokenizer without BLIP's [DEC] / [ENC]
  reference.safetensors, reference.json: inputs and what transformers computes from them
Every parameter is perturbed away from its initial value. References for padded questions use
blip_reference_fix.py (BLIP's cross-attention padding mask, which transformers 5.18 drops).
"""
import json
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipForQuestionAnswering,
                          BlipImageProcessor)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blip_reference_fix import restore_cross_attention_mask  # noqa: E402

torch.manual_seed(0)
out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)

# --- tokenizer ------------------------------------------------------------------------------------
WORDS = """is there a lesion in the left lung ? what organ shown this image yes no liver heart chest
x ray ct mri of an abnormality where located right upper lobe size normal are lungs clear pleural
effusion pneumothorax cardiomegaly seen findings impression frontal lateral view mild atelectasis
""".split()
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(WORDS)) + ["##s", "##ed", "##ing", "##al"]
vocab += [c for c in "abcdefghijklmnopqrstuvwxyz0123456789.,!" if c not in vocab]
tok_dir = os.path.join(out_dir, "tokenizer")
os.makedirs(tok_dir, exist_ok=True)
tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
tokenizer.add_special_tokens({"bos_token": "[DEC]"})
tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
tokenizer.save_pretrained(tok_dir)
DEC = tokenizer.convert_tokens_to_ids("[DEC]")
ENC = tokenizer.convert_tokens_to_ids("[ENC]")

IMAGE = 32
config = BlipConfig(
    vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=IMAGE,
                       patch_size=8, layer_norm_eps=1e-6),
    text_config=dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=64, bos_token_id=DEC, pad_token_id=tokenizer.pad_token_id,
                     sep_token_id=tokenizer.sep_token_id, eos_token_id=tokenizer.sep_token_id),
)


def perturb(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def write_dir(model, name):
    d = os.path.join(out_dir, name)
    model.save_pretrained(d)
    tokenizer.save_pretrained(d)
    BlipImageProcessor(size={"height": IMAGE, "width": IMAGE}).save_pretrained(d)
    return d


# --- VQA model -------------------------------------------------------------------------------------
vqa = perturb(BlipForQuestionAnswering(config)).eval()
with torch.no_grad():
    # Make [SEP] likely enough that beams end at different lengths.
    vqa.text_decoder.cls.predictions.bias[tokenizer.sep_token_id] += 1.0
write_dir(vqa, "hf_vqa")

questions = ["is there a lesion in the left lung?", "what organ is shown in this ct image?"]
answers = ["yes", "the liver"]
q = tokenizer(questions, padding="longest", return_tensors="pt")
q.input_ids[:, 0] = ENC  # BLIP: question.input_ids[:,0] = tokenizer.enc_token_id
a = tokenizer(answers, padding="longest", return_tensors="pt")
a.input_ids[:, 0] = DEC  # answer.input_ids[:,0] = tokenizer.bos_token_id
targets = a.input_ids.masked_fill(a.input_ids == tokenizer.pad_token_id, -100)
pixels = torch.randn(2, 3, IMAGE, IMAGE)

ref = {"pixel_values": pixels, "input_ids": q.input_ids, "attention_mask": q.attention_mask,
       "decoder_input_ids": a.input_ids, "decoder_attention_mask": a.attention_mask, "labels": targets}
info = {"dec": DEC, "enc": ENC, "sep": tokenizer.sep_token_id, "pad": tokenizer.pad_token_id, "questions": questions, "answers": answers}

with torch.no_grad():
    image_embeds = vqa.vision_model(pixel_values=pixels).last_hidden_state
    question_embeds = vqa.text_encoder(input_ids=q.input_ids, attention_mask=q.attention_mask, encoder_hidden_states=image_embeds).last_hidden_state
    dec = vqa.text_decoder
    # blip_vqa.py's training forward: the decoder reads the answer (padded, with its mask) against
    # the question states with the question's mask; loss with label smoothing 0.1, summed per answer.
    dec.label_smoothing = 0.1
    out = dec(input_ids=a.input_ids, attention_mask=a.attention_mask, encoder_hidden_states=question_embeds,
              encoder_attention_mask=q.attention_mask, labels=targets, reduction="none")
    ref["image_embeds"] = image_embeds
    ref["question_embeds"] = question_embeds
    ref["logits"] = out.logits
    ref["blip_loss"] = (out.loss.sum() / pixels.shape[0]).reshape(1)
    dec.label_smoothing = 0.0
    # transformers' own forward: labels are also the decoder's input, mean over all label tokens.
    hf = vqa(input_ids=q.input_ids, pixel_values=pixels, attention_mask=q.attention_mask, labels=a.input_ids)
    ref["hf_loss"] = hf.loss.reshape(1)

    gen = vqa.generate(input_ids=q.input_ids, pixel_values=pixels, attention_mask=q.attention_mask, num_beams=3, max_length=10, min_length=1)
    info["vqa_generate"] = gen.tolist()
    info["vqa_answers"] = tokenizer.batch_decode(gen, skip_special_tokens=True)
    greedy = vqa.generate(input_ids=q.input_ids, pixel_values=pixels, attention_mask=q.attention_mask, num_beams=1, max_length=10)
    info["vqa_greedy"] = greedy.tolist()
    # The captioning form of the same decoder (report generation): it cross-attends the image.
    bos = torch.full((2, 1), DEC, dtype=torch.long)
    report = dec.generate(input_ids=bos, eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id,
                          encoder_hidden_states=image_embeds, encoder_attention_mask=torch.ones(image_embeds.shape[:-1], dtype=torch.long),
                          num_beams=3, max_length=16, min_length=6, repetition_penalty=1.3)
    info["report_generate"] = report.tolist()
    report_targets = torch.tensor([[DEC] + tokenizer("the lungs are clear", add_special_tokens=False).input_ids + [tokenizer.sep_token_id],
                                   [DEC] + tokenizer("mild atelectasis seen", add_special_tokens=False).input_ids + [tokenizer.sep_token_id, 0]])
    report_labels = report_targets.masked_fill(report_targets == 0, -100)
    dec.label_smoothing = 0.1
    cap = dec(input_ids=report_targets, attention_mask=(report_targets != 0).long(), encoder_hidden_states=image_embeds, labels=report_labels,
              reduction="mean")
    dec.label_smoothing = 0.0
    ref["report_input_ids"] = report_targets
    ref["report_labels"] = report_labels
    ref["report_logits"] = cap.logits
    ref["report_blip_loss"] = cap.loss.reshape(1)

# --- padded questions ---------------------------------------------------------------------------------
# Questions of different lengths: the decoder must not attend the shorter one's padding (BLIP masks
# it). transformers 5.18 drops that mask (blip_reference_fix.py); both are recorded, the reference
# is BLIP's masking.
padded_q = tokenizer(["is the heart size normal?", "where is the lesion located in the right upper lobe?"], padding="longest", return_tensors="pt")
padded_q.input_ids[:, 0] = ENC
assert padded_q.attention_mask.sum(1).tolist()[0] < padded_q.input_ids.shape[1]


def padded_forward():
    with torch.no_grad():
        q_states = vqa.text_encoder(input_ids=padded_q.input_ids, attention_mask=padded_q.attention_mask, encoder_hidden_states=image_embeds).last_hidden_state
        vqa.text_decoder.label_smoothing = 0.1
        out = vqa.text_decoder(input_ids=a.input_ids, attention_mask=a.attention_mask, encoder_hidden_states=q_states,
                               encoder_attention_mask=padded_q.attention_mask, labels=targets, reduction="none")
        vqa.text_decoder.label_smoothing = 0.0
    return out.logits, (out.loss.sum() / pixels.shape[0]).reshape(1)


ref["padded_input_ids"] = padded_q.input_ids
ref["padded_attention_mask"] = padded_q.attention_mask
ref["padded_logits_transformers"], _ = padded_forward()
restore_cross_attention_mask()
ref["padded_logits"], ref["padded_blip_loss"] = padded_forward()
info["transformers_ignores_question_padding"] = bool((ref["padded_logits"] - ref["padded_logits_transformers"]).abs().max() > 1e-3)

# --- the same weights in BLIP's own layout ---------------------------------------------------------
def to_original(sd, vision_layers):
    out = {}
    for k, v in sd.items():
        if k.startswith("vision_model."):
            k = k[len("vision_model."):]
            k = (k.replace("embeddings.class_embedding", "cls_token").replace("embeddings.position_embedding", "pos_embed")
                 .replace("embeddings.patch_embedding", "patch_embed.proj").replace("encoder.layers.", "blocks.")
                 .replace("layer_norm1", "norm1").replace("layer_norm2", "norm2").replace("self_attn.qkv", "attn.qkv")
                 .replace("self_attn.projection", "attn.proj").replace("post_layernorm", "norm"))
            k = "visual_encoder." + k
        out[k] = v
    return out


sd = {k: v.clone() for k, v in vqa.state_dict().items()}
orig = to_original(sd, 2)
# Tied as med.py ties them: one storage under two names each.
orig["text_decoder.cls.predictions.decoder.weight"] = orig["text_decoder.bert.embeddings.word_embeddings.weight"]
orig["text_decoder.cls.predictions.decoder.bias"] = orig["text_decoder.cls.predictions.bias"]
for prefix in ["text_encoder.", "text_decoder.bert."]:
    orig[prefix + "embeddings.position_ids"] = torch.arange(64).expand((1, -1))
order = sorted(orig, key=lambda k: (not k.startswith("visual_encoder."), not k.startswith("text_encoder."), k))
orig = {k: orig[k] for k in order}
optimizer_state = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(4)}}, "param_groups": [{"lr": 2e-5}]}
torch.save({"model": orig, "optimizer": optimizer_state, "config": {"image_size": IMAGE, "vit": "base"}, "epoch": 3},
           os.path.join(out_dir, "original_vqa.pth"))
cfg = vqa.config.to_dict()
with open(os.path.join(out_dir, "config_original.json"), "w") as f:
    json.dump(cfg, f, indent=2)

# A vision tower pre-trained at 16 px (2x2 patches): loaded into the 32 px model, its position
# embeddings are interpolated as BLIP's load_checkpoint does (interpolate_pos_embed).
small = {k: v for k, v in orig.items()}
pos = small["visual_encoder.pos_embed"]
small_pos = torch.cat([pos[:, :1], F.interpolate(pos[:, 1:].reshape(1, 4, 4, 32).permute(0, 3, 1, 2), size=(2, 2), mode="bicubic",
                                                  align_corners=False).permute(0, 2, 3, 1).flatten(1, 2)], dim=1)
small["visual_encoder.pos_embed"] = small_pos
torch.save({"model": small}, os.path.join(out_dir, "pretrain_224.pth"))
extra, grid = small_pos[:, :1], small_pos[:, 1:].reshape(1, 2, 2, 32).permute(0, 3, 1, 2)
ref["interpolated_pos_embed"] = torch.cat([extra, F.interpolate(grid, size=(4, 4), mode="bicubic", align_corners=False)
                                           .permute(0, 2, 3, 1).flatten(1, 2)], dim=1)

# --- captioning model (BlipForConditionalGeneration) -------------------------------------------------
cap_model = perturb(BlipForConditionalGeneration(config)).eval()
with torch.no_grad():
    cap_model.text_decoder.cls.predictions.bias[tokenizer.sep_token_id] += 1.5
write_dir(cap_model, "hf_caption")
prompt = tokenizer(["a chest x ray", "a chest x ray"], return_tensors="pt")
caption_labels = tokenizer(["a chest x ray of the lungs", "a chest x ray with effusion"], padding="longest", return_tensors="pt")
with torch.no_grad():
    out = cap_model(pixel_values=pixels, input_ids=caption_labels.input_ids, attention_mask=caption_labels.attention_mask,
                    labels=caption_labels.input_ids)
    ref["caption_input_ids"] = caption_labels.input_ids
    ref["caption_attention_mask"] = caption_labels.attention_mask
    ref["caption_logits"] = out.logits
    ref["caption_loss"] = out.loss.reshape(1)
    ref["caption_prompt_ids"] = prompt.input_ids
    gen = cap_model.generate(pixel_values=pixels, input_ids=prompt.input_ids.clone(), num_beams=3, max_length=14)
    info["caption_generate"] = gen.tolist()


# --- data in the public layouts, and BLIP's preprocessing of it --------------------------------------
def pre_question(question, max_ques_words=50):  # BLIP data/utils.py
    question = re.sub(r"([.!\"()*#:;~])", "", question.lower())
    question = question.rstrip(" ")
    words = question.split(" ")
    return " ".join(words[:max_ques_words]) if len(words) > max_ques_words else question


def pre_caption(caption, max_words=50):  # BLIP data/utils.py
    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption)
    caption = caption.rstrip("\n").strip(" ")
    words = caption.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else caption


plain_dir = os.path.join(out_dir, "bert_plain")
BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True).save_pretrained(plain_dir)

data_dir = os.path.join(out_dir, "data")
os.makedirs(os.path.join(data_dir, "images"), exist_ok=True)
rng = np.random.default_rng(0)
names = []
for i, (w, h, mode) in enumerate([(40, 48, "RGB"), (37, 29, "L"), (64, 64, "RGB"), (50, 41, "RGB")]):
    arr = rng.integers(0, 256, size=(h, w, 3) if mode == "RGB" else (h, w), dtype=np.uint8)
    name = f"synpic{100 + i}.png"
    Image.fromarray(arr, mode).save(os.path.join(data_dir, "images", name))
    names.append(name)
rad = [
    {"qid": 1, "image_name": names[0], "question": "Is there a lesion in the left lung?", "answer": "Yes", "answer_type": "CLOSED", "phrase_type": "freeform", "image_organ": "CHEST"},
    {"qid": 2, "image_name": names[1], "question": "What organ is shown: the liver (or the heart)?", "answer": "the liver", "answer_type": "OPEN", "phrase_type": "freeform", "image_organ": "ABD"},
    {"qid": 3, "image_name": names[2], "question": "Where is the effusion located?", "answer": "right upper lobe", "answer_type": "OPEN", "phrase_type": "test_freeform", "image_organ": "CHEST"},
    {"qid": 4, "image_name": names[3], "question": "is the heart size normal", "answer": "no", "answer_type": "CLOSED", "phrase_type": "test_para", "image_organ": "CHEST"},
    {"qid": 5, "image_name": names[0], "question": " ".join(["is there a lesion in the left lung"] * 6) + "?", "answer": "yes", "answer_type": "CLOSED", "phrase_type": "freeform", "image_organ": "CHEST"},
]
with open(os.path.join(data_dir, "VQA_RAD Dataset Public.json"), "w") as f:
    json.dump(rad, f, indent=1)
reports = {"train": [{"id": "CXR1", "report": "The lungs are clear. Heart size is normal (no cardiomegaly)!", "image_path": [names[2], names[3]], "split": "train"},
                     {"id": "CXR2", "report": "Mild atelectasis; small pleural effusion: right.", "image_path": [names[0], names[1]], "split": "train"}],
           "val": [], "test": []}
with open(os.path.join(data_dir, "annotation.json"), "w") as f:
    json.dump(reports, f, indent=1)


def blip_transform(path, size):  # Resize((size, size), BICUBIC) on the PIL image, ToTensor, Normalize
    img = Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1)
    return (x - mean) / std


train = [r for r in rad if not r["phrase_type"].startswith("test")]
questions = [pre_question(r["question"]) for r in train]
q = tokenizer(questions, padding="longest", truncation=True, max_length=35, return_tensors="pt")
q.input_ids[:, 0] = ENC
a = tokenizer([r["answer"] for r in train], padding="longest", return_tensors="pt")
a.input_ids[:, 0] = DEC
data_ref = {"input_ids": q.input_ids, "attention_mask": q.attention_mask, "decoder_input_ids": a.input_ids,
            "decoder_attention_mask": a.attention_mask, "labels": a.input_ids.masked_fill(a.input_ids == tokenizer.pad_token_id, -100),
            "pixel_values": torch.stack([blip_transform(os.path.join(data_dir, "images", r["image_name"]), IMAGE) for r in train])}
prompt = "a picture of "
caps = [prompt + pre_caption(r["report"]) for r in reports["train"]]
t = tokenizer(caps, padding="longest", truncation=True, max_length=12, return_tensors="pt")
t.input_ids[:, 0] = DEC
targets = t.input_ids.masked_fill(t.input_ids == tokenizer.pad_token_id, -100)
prompt_length = len(tokenizer(prompt).input_ids) - 1
targets[:, :prompt_length] = -100
data_ref.update({"report_decoder_input_ids": t.input_ids, "report_decoder_attention_mask": t.attention_mask, "report_labels": targets,
                 "report_pixel_values": torch.stack([blip_transform(os.path.join(data_dir, "images", r["image_path"][0]), IMAGE) for r in reports["train"]])})
# Evaluation as MISS runs it: answers to the test questions by beam search (3, max_length 10, min_length 1).
test = [r for r in rad if r["phrase_type"].startswith("test")]
tq = tokenizer([pre_question(r["question"]) for r in test], padding="longest", truncation=True, max_length=35, return_tensors="pt")
tq.input_ids[:, 0] = ENC
with torch.no_grad():
    tp = torch.stack([blip_transform(os.path.join(data_dir, "images", r["image_name"]), IMAGE) for r in test])
    gen = vqa.generate(input_ids=tq.input_ids, pixel_values=tp, attention_mask=tq.attention_mask, num_beams=3, max_length=10, min_length=1)
    test_answers = tokenizer.batch_decode(gen, skip_special_tokens=True)
    # Reports from the first view, 'a picture of ' prompt, beam 3, up to the 64 positions, min_length 5.
    rp = torch.stack([blip_transform(os.path.join(data_dir, "images", r["image_path"][0]), IMAGE) for r in reports["train"]])
    image_embeds = vqa.vision_model(pixel_values=rp).last_hidden_state
    prompt_ids = tokenizer([prompt] * len(rp), return_tensors="pt").input_ids[:, :-1]
    prompt_ids[:, 0] = DEC
    rgen = vqa.text_decoder.generate(input_ids=prompt_ids, eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id,
                                     encoder_hidden_states=image_embeds, encoder_attention_mask=torch.ones(image_embeds.shape[:-1], dtype=torch.long),
                                     num_beams=3, max_length=64, min_length=5)
    report_texts = tokenizer.batch_decode(rgen[:, prompt_ids.shape[1]:], skip_special_tokens=True)
save_file({k: v.contiguous() for k, v in data_ref.items()}, os.path.join(out_dir, "data.reference.safetensors"))
with open(os.path.join(out_dir, "data.json"), "w") as f:
    json.dump({"questions": questions, "captions": caps, "prompt_length": prompt_length, "plain_added": [len(vocab), len(vocab) + 1],
               "test_answers": test_answers, "test_references": [r["answer"] for r in test], "report_predictions": report_texts}, f, indent=2)

save_file({k: v.detach().contiguous() for k, v in ref.items()}, os.path.join(out_dir, "reference.safetensors"))
with open(os.path.join(out_dir, "reference.json"), "w") as f:
    json.dump(info, f, indent=2)
