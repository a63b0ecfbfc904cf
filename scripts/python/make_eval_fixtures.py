"""Tiny LLaVA checkpoints with their tokenizers and image processors, VQA-RAD- and IU-Xray-style
test sets, and transformers' greedy answers to them, for `medtune eval`'s tests.

Usage: make_eval_fixtures.py OUT_DIR

OUT_DIR/
  data/vqa_rad.json       VQA-RAD layout: 6 test questions (test_* phrase types, closed and open) and
                          2 training ones, on data/images/*.png of different sizes
  data/annotation.json    R2Gen / IU-Xray layout: 3 test studies (two views each), 1 training study
  llava/                  llava-hf LlavaForConditionalGeneration (LLaMA text, CLIP tower at 8 px, 4
                          image tokens) with a BPE tokenizer.json whose post-processor adds <s> (as
                          llava-1.5-hf's does), llava-1.5-hf's chat template, preprocessor_config.json
                          (CLIP) and generation_config.json; the EOS row of the LM head is scaled so
                          that greedy answers of different lengths end at EOS within 12 tokens
  llava_lora/             a peft LoRA adapter (q_proj, v_proj of both towers; B not zero) for llava/
  llava_med/              the original LLaVA-Med layout (LlavaMistralForCausalLM: model.layers.*,
                          model.mm_projector.*, the CLIP tower under model.vision_tower.vision_tower),
                          image_aspect_ratio 'pad', mm_vision_tower 'clip' (clip/ holds the tower's
                          config and preprocessor_config.json), a SentencePiece tokenizer.model only
  reference.json          transformers' answers, greedy, max_new_tokens 12, one example at a time:
                          llava: the processor's prompt (chat template, add_generation_prompt, the
                          image token expanded, BOS by the tokenizer), generate(), the new tokens
                          decoded without special tokens, stripped;
                          llava_lora: the same through PeftModel;
                          llava_med: LLaVA-Med's model_vqa.py restated: '<image>\\n' + question in
                          the mistral_instruct conversation template, tokenizer_image_token,
                          expand2square with the mean colour, the CLIP processor, the -200
                          placeholder replaced by the image features, generate(inputs_embeds)
"""
import json
import os
import sys

import numpy as np
import torch
from PIL import Image
from tokenizers import Tokenizer
from tokenizers.processors import TemplateProcessing
from transformers import (AutoImageProcessor, AutoTokenizer, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                          LlavaForConditionalGeneration, MistralConfig)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizers import LLAVA15_TEMPLATE, messages_of, render_conv, train_hf, train_spm  # noqa: E402

MAX_NEW = 12
IMAGE_TOKEN_INDEX = -200
REPORT_PROMPT = "Describe the findings of this chest X-ray."  # medtune eval's default for report data

QUESTIONS = [  # (qid, image, question, answer, answer_type, phrase_type)
    (101, "synpic1.png", "Is there evidence of cardiomegaly?", "yes", "CLOSED", "test_freeform"),
    (102, "synpic2.png", "What organ is shown in this CT image?", "the liver", "OPEN", "test_freeform"),
    (103, "synpic3.png", "Which side is the lesion on?", "left", "OPEN", "test_para"),
    (104, "synpic4.png", "Does the MRI show edema?", "no", "CLOSED", "test_para"),
    (105, "synpic1.png", "Is there a pleural effusion?", "no", "CLOSED", "test_freeform"),
    (106, "synpic2.png", "What organ is shown?", "liver", "OPEN", "test_freeform"),
    (1, "synpic3.png", "Are the lungs clear?", "yes", "CLOSED", "freeform"),
    (2, "synpic4.png", "Is the heart size normal?", "yes", "CLOSED", "para"),
]
IMAGE_SIZES = {"synpic1.png": (12, 10), "synpic2.png": (9, 14), "synpic3.png": (16, 16), "synpic4.png": (10, 7)}
REPORTS = [  # (id, report, split)
    ("CXR1_1", "The lungs are clear bilaterally. Heart size is normal.", "test"),
    ("CXR2_1", "Mild bibasilar atelectasis. No acute cardiopulmonary process.", "test"),
    ("CXR3_1", "No focal consolidation, pleural effusion or pneumothorax.", "test"),
    ("CXR4_1", "Heart size is normal. Osseous structures are intact.", "train"),
]


def write_data(out):
    data = os.path.join(out, "data")
    rng = np.random.default_rng(7)
    os.makedirs(os.path.join(data, "images"), exist_ok=True)
    for name, (w, h) in IMAGE_SIZES.items():
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8), "RGB").save(os.path.join(data, "images", name))
    for rid, _, _ in REPORTS:
        os.makedirs(os.path.join(data, "images", rid), exist_ok=True)
        for view in range(2):
            Image.fromarray(rng.integers(0, 256, size=(11 + view, 13, 3)).astype(np.uint8), "RGB").save(os.path.join(data, "images", rid, f"{view}.png"))
    records = [{"qid": q, "image_name": img, "image_organ": "CHEST", "answer": a, "answer_type": t, "question_type": "PRES",
                "question": text, "phrase_type": p} for q, img, text, a, t, p in QUESTIONS]
    with open(os.path.join(data, "vqa_rad.json"), "w") as f:
        json.dump(records, f, indent=1)
    ann = {"train": [], "val": [], "test": []}
    for rid, report, split in REPORTS:
        ann[split].append({"id": rid, "report": report, "image_path": [f"{rid}/0.png", f"{rid}/1.png"], "split": split})
    with open(os.path.join(data, "annotation.json"), "w") as f:
        json.dump(ann, f, indent=1)
    vqa = [{"image": os.path.join(data, "images", img), "conv": [{"from": "human", "value": f"<image>\n{text}"}]}
           for _, img, text, _, _, p in QUESTIONS if p.startswith("test")]
    reports = [{"image": os.path.join(data, "images", rid, "0.png"), "conv": [{"from": "human", "value": f"<image>\n{REPORT_PROMPT}"}]}
               for rid, _, split in REPORTS if split == "test"]
    return vqa, reports


def perturb(model, scale=0.1):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model.eval()


vision_cfg = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=8, patch_size=4)
CLIP_PROCESSOR = {"image_processor_type": "CLIPImageProcessor", "do_resize": True, "size": {"shortest_edge": 8}, "resample": 3,
                  "do_center_crop": True, "crop_size": {"height": 8, "width": 8}, "do_rescale": True, "rescale_factor": 1 / 255,
                  "do_normalize": True, "image_mean": [0.48145466, 0.4578275, 0.40821073],
                  "image_std": [0.26862954, 0.26130258, 0.27577711], "do_convert_rgb": True}


def tune_eos(model, lm_head, eos, answer_all):
    """Scales the EOS row of the LM head until some greedy answers end at EOS after a few tokens
    and others run to the length limit."""
    orig = lm_head.weight[eos].detach().clone()
    for scale in [1 + 0.05 * k for k in range(60)]:
        with torch.no_grad():
            lm_head.weight[eos] = orig * scale
        lengths = [len(ids) for ids in answer_all()]
        if any(2 < n < MAX_NEW for n in lengths) and any(n == MAX_NEW for n in lengths):
            return scale, lengths
    raise RuntimeError("no EOS scale gives answers of different lengths")


# --- llava-hf --------------------------------------------------------------------------------------
def make_llava(out, vqa, reports):
    d = os.path.join(out, "llava")
    train_hf("bpe", d, LLAVA15_TEMPLATE, parts=False)
    tok_file = os.path.join(d, "tokenizer.json")
    t = Tokenizer.from_file(tok_file)
    bos, eos, pad, img = t.token_to_id("<s>"), t.token_to_id("</s>"), t.token_to_id("<pad>"), t.token_to_id("<image>")
    t.post_processor = TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    t.save(tok_file)
    torch.manual_seed(0)
    text = LlamaConfig(vocab_size=t.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=256, bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    model = perturb(LlavaForConditionalGeneration(LlavaConfig(vision_config=CLIPVisionConfig(**vision_cfg), text_config=text,
                                                              image_token_index=img, image_seq_length=4)))
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump(CLIP_PROCESSOR, f, indent=1)
    tok = AutoTokenizer.from_pretrained(d)
    proc = AutoImageProcessor.from_pretrained(d)
    model.generation_config.eos_token_id = eos
    model.generation_config.pad_token_id = pad

    def inputs(ex):
        # LlavaProcessor's steps: the chat template's prompt, each <image> expanded to the image
        # tokens, tokenized with the tokenizer's special tokens unless the prompt begins with BOS.
        prompt = tok.apply_chat_template(messages_of(ex["conv"], True), add_generation_prompt=True, tokenize=False)
        expanded = prompt.replace("<image>", "<image>" * 4)
        ids = tok(expanded, add_special_tokens=not prompt.startswith(tok.bos_token), return_tensors="pt")
        pixel_values = proc(Image.open(ex["image"]), return_tensors="pt")["pixel_values"]
        return {"input_ids": ids["input_ids"], "attention_mask": ids["attention_mask"], "pixel_values": pixel_values}

    def answer_ids(m, ex):
        x = inputs(ex)
        with torch.no_grad():
            outp = m.generate(**x, max_new_tokens=MAX_NEW, do_sample=False)
        new = outp[0, x["input_ids"].shape[1]:].tolist()
        return new[:new.index(eos) + 1] if eos in new else new

    def decode(ids):
        return tok.decode(ids, skip_special_tokens=True).strip()

    lm_head = model.lm_head if hasattr(model, "lm_head") else model.language_model.lm_head
    scale, lengths = tune_eos(model, lm_head, eos, lambda: [answer_ids(model, ex) for ex in vqa + reports])
    model.save_pretrained(d)
    ref = {"eos_scale": scale, "lengths": lengths, "vqa_prompt_ids": inputs(vqa[0])["input_ids"][0].tolist()}
    ref["vqa"] = [decode(answer_ids(model, ex)) for ex in vqa]
    ref["report"] = [decode(answer_ids(model, ex)) for ex in reports]

    from peft import LoraConfig, get_peft_model
    torch.manual_seed(1)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.eval()
    peft_model.save_pretrained(os.path.join(out, "llava_lora"))
    ref["lora_vqa"] = [decode(answer_ids(peft_model, ex)) for ex in vqa]
    if ref["lora_vqa"] == ref["vqa"]:
        raise RuntimeError("the LoRA adapter changes no answer")
    return ref


# --- original LLaVA-Med layout ----------------------------------------------------------------------
def to_original(k):
    if k.startswith("model.language_model."):
        return "model." + k[len("model.language_model."):]
    if k.startswith("language_model.model."):
        return "model." + k[len("language_model.model."):]
    if k in ("lm_head.weight", "language_model.lm_head.weight"):
        return "lm_head.weight"
    for p in ("model.vision_tower.", "vision_tower."):
        if k.startswith(p):
            return "model.vision_tower.vision_tower.vision_model." + k[len(p):]
    for p in ("model.multi_modal_projector.", "multi_modal_projector."):
        if k.startswith(p):
            return "model.mm_projector." + k[len(p):].replace("linear_1", "0").replace("linear_2", "2")
    raise KeyError(k)


def expand2square(img, background):
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    result = Image.new(img.mode, (side, side), background)
    result.paste(img, (0, (w - h) // 2) if w > h else ((h - w) // 2, 0))
    return result


def tokenizer_image_token(prompt, tok):
    """LLaVA's mm_utils.tokenizer_image_token: chunks tokenized with BOS, -200 between them, one BOS."""
    chunks = [tok(c).input_ids for c in prompt.split("<image>")]
    ids, offset = [], 0
    if chunks and chunks[0] and chunks[0][0] == tok.bos_token_id:
        offset = 1
        ids.append(chunks[0][0])
    sep = [IMAGE_TOKEN_INDEX] * (offset + 1)
    interleaved = [e for pair in zip(chunks, [sep] * len(chunks)) for e in pair][:-1]
    for x in interleaved:
        ids.extend(x[offset:])
    return ids


def make_llava_med(out, vqa):
    from safetensors.torch import save_file
    d = os.path.join(out, "llava_med")
    train_spm(d, legacy=False)
    tok = AutoTokenizer.from_pretrained(d)
    torch.manual_seed(2)
    text = MistralConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256, sliding_window=None, bos_token_id=1, eos_token_id=2)
    med = perturb(LlavaForConditionalGeneration(LlavaConfig(vision_config=CLIPVisionConfig(**vision_cfg), text_config=text,
                                                            image_token_index=len(tok) - 1, image_seq_length=4)))
    clip_dir = os.path.join(d, "clip")
    CLIPVisionConfig(**vision_cfg).save_pretrained(clip_dir)
    with open(os.path.join(clip_dir, "preprocessor_config.json"), "w") as f:
        json.dump(CLIP_PROCESSOR, f, indent=1)
    proc = AutoImageProcessor.from_pretrained(clip_dir)
    embed = med.get_input_embeddings()

    def answer_ids(ex):
        question = ex["conv"][0]["value"].replace("<image>", "").strip()
        prompt = render_conv("mistral_instruct", [("USER", "<image>\n" + question), ("ASSISTANT", None)])
        ids = tokenizer_image_token(prompt, tok)
        img = expand2square(Image.open(ex["image"]).convert("RGB"), tuple(int(x * 255) for x in proc.image_mean))
        px = proc.preprocess(img, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            feats = med.model.get_image_features(pixel_values=px, vision_feature_layer=-2, vision_feature_select_strategy="default")
            feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
            feats = feats[0] if isinstance(feats, (list, tuple)) else feats
            feats = feats.reshape(-1, feats.shape[-1])
            at = ids.index(IMAGE_TOKEN_INDEX)
            pieces = [embed(torch.tensor(ids[:at])), feats, embed(torch.tensor(ids[at + 1:]))]
            embeds = torch.cat(pieces)[None]
            outp = med.generate(inputs_embeds=embeds, attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long),
                                max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=2, pad_token_id=0)
        new = outp[0].tolist()
        return new[:new.index(2) + 1] if 2 in new else new

    lm_head = med.lm_head if hasattr(med, "lm_head") else med.language_model.lm_head
    scale, lengths = tune_eos(med, lm_head, 2, lambda: [answer_ids(ex) for ex in vqa])
    tmp = os.path.join(out, "llava_med_hf")
    med.save_pretrained(tmp)
    from safetensors.torch import load_file
    tensors = {to_original(k): v for k, v in load_file(os.path.join(tmp, "model.safetensors")).items()}
    save_file(tensors, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    config = {
        **{k: v for k, v in text.to_dict().items() if k not in ("architectures", "model_type", "transformers_version")},
        "model_type": "llava_mistral", "architectures": ["LlavaMistralForCausalLM"],
        "mm_vision_tower": "clip", "mm_hidden_size": vision_cfg["hidden_size"], "mm_projector_type": "mlp2x_gelu",
        "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch", "mm_use_im_start_end": False, "mm_use_im_patch_token": False,
        "image_aspect_ratio": "pad", "tokenizer_padding_side": "right", "use_mm_proj": True,
    }
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    import shutil
    shutil.rmtree(tmp)
    return {"eos_scale": scale, "lengths": lengths, "vqa": [tok.decode(answer_ids(ex), skip_special_tokens=True).strip() for ex in vqa]}


def main(out):
    vqa, reports = write_data(out)
    ref = {"llava": make_llava(out, vqa, reports), "llava_med": make_llava_med(out, vqa)}
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
