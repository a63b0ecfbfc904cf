"""Tiny tokenizers in the real Hugging Face layouts, and what transformers makes of them.

OUT_DIR/
  bpe/      tokenizers-library BPE (Metaspace, Llama-like) trained here on a few sentences:
            tokenizer.json + tokenizer_config.json with a Mistral-style chat template, '<image>'
            as an added special token, and a llava-hf style config.json (image_token_index,
            image_seq_length).
  unigram/  tokenizers-library Unigram (ByteLevel pre-tokenizer off, Metaspace) with a ChatML
            template that takes content as a list of parts ({'type': 'image'} / 'text').
  spm/      a SentencePiece BPE model trained by the sentencepiece package (byte fallback), only
            tokenizer.model + tokenizer_config.json (LlamaTokenizer, legacy false): no tokenizer.json.
  spm-legacy/ the same model with legacy true.
  reference.json  ids from AutoTokenizer for test strings, with and without special tokens, and
            VLM training examples (input_ids, labels) built with apply_chat_template or, for the
            template-less checkpoints, LLaVA-Med's conversation templates written out here.
usage: make_tokenizers.py OUT_DIR
"""
import json
import os
import shutil
import sys

import sentencepiece as spm
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer

CORPUS = [
    "The chest radiograph shows no focal consolidation, pleural effusion or pneumothorax.",
    "Is there evidence of cardiomegaly? Yes, the cardiac silhouette is enlarged.",
    "What organ is shown in this CT image? The liver, with a hypodense lesion in segment 4.",
    "Mild bibasilar atelectasis. No acute cardiopulmonary process.",
    "The lungs are clear bilaterally. Heart size is normal. Osseous structures are intact.",
    "Which side is the lesion on? Left. Does the MRI show edema? No.",
    "Pathology slide: hematoxylin and eosin stain demonstrates glandular architecture.",
    "USER: describe the image ASSISTANT: a frontal chest x-ray of an adult patient",
] * 3

MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'] + eos_token }}"
    "{% elif message['role'] == 'system' %}{{ message['content'] + '\n\n' }}{% endif %}{% endfor %}"
)
CHATML_PARTS_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# llava-hf/llava-1.5-7b-hf's template: content as typed parts, images first, {% generation %} blocks.
LLAVA15_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{# Render all images first #}{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}{# Render all text next #}{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{% generation %}"
    "{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

TEST_STRINGS = [
    "The chest radiograph shows no focal consolidation.",
    "  leading spaces and  double  spaces ",
    "Unseen words: zygomatic, Ünïcödé, 漢字, emoji 🩻!",
    "tabs\tand\nnewlines\n\nhere",
    "<s>special</s> tokens <image> inline <unk>",
    "",
    " ",
    "USER: <image>\nWhat is shown? ASSISTANT:",
]

CONVERSATIONS = [
    [{"from": "human", "value": "<image>\nIs there a pleural effusion?"}, {"from": "gpt", "value": "No."}],
    [{"from": "human", "value": "<image>\nWhat organ is shown?"}, {"from": "gpt", "value": "The liver, with a hypodense lesion."},
     {"from": "human", "value": "Which segment?"}, {"from": "gpt", "value": "Segment 4."}],
    [{"from": "human", "value": "Describe the chest radiograph.\n<image>"}, {"from": "gpt", "value": "Mild bibasilar atelectasis. No acute process."}],
]
ROLE = {"human": "user", "gpt": "assistant", "system": "system"}


def train_hf(kind, out, template, parts):
    special = ["<unk>", "<s>", "</s>", "<pad>"]
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=special, initial_alphabet=[], min_frequency=1)
    else:
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=special, unk_token="<unk>")
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.train_from_iterator(CORPUS, trainer)
    extra = ["<image>"] + (["<|im_start|>", "<|im_end|>"] if parts else [])
    from tokenizers import AddedToken
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in extra])
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
        "chat_template": template, "model_max_length": 512,
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=1)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump({"model_type": "llava", "image_token_index": tok.token_to_id("<image>"), "image_seq_length": 5}, f, indent=1)


def train_spm(out, legacy):
    os.makedirs(out, exist_ok=True)
    corpus = os.path.join(out, "corpus.txt")
    with open(corpus, "w") as f:
        f.write("\n".join(CORPUS))
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(out, "tokenizer"), vocab_size=400, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        add_dummy_prefix=True, normalization_rule_name="identity", minloglevel=2,
    )
    os.remove(os.path.join(out, "tokenizer.vocab"))
    os.remove(corpus)
    config = {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
              "add_bos_token": True, "add_eos_token": False, "legacy": legacy, "model_max_length": 512}
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(config, f, indent=1)


def messages_of(conv, parts):
    out = []
    for t in conv:
        content = t["value"]
        if parts:
            pieces = []
            for i, chunk in enumerate(content.split("<image>")):
                if i > 0:
                    pieces.append({"type": "image"})
                if chunk:
                    pieces.append({"type": "text", "text": chunk})
            content = pieces
        out.append({"role": ROLE[t["from"]], "content": content})
    return out


def chat_example(tok, conv, parts, image_token, count):
    expand = lambda s: s.replace("<image>", image_token * count)
    ids = lambda s: tok(expand(s), add_special_tokens=False)["input_ids"]
    msgs = messages_of(conv, parts)
    full = ids(tok.apply_chat_template(msgs, tokenize=False))
    labels = [-100] * len(full)
    for k, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        start = len(ids(tok.apply_chat_template(msgs[:k], tokenize=False, add_generation_prompt=True)))
        end = len(ids(tok.apply_chat_template(msgs[:k + 1], tokenize=False)))
        labels[start:end] = full[start:end]
    return {"input_ids": full, "labels": labels}


# LLaVA-Med's conversation templates (llava/conversation.py), written out from their definition.
VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's questions.")


def render_conv(template, turns):
    """turns: list of (role, message or None), roles alternate USER/ASSISTANT."""
    if template == "vicuna_v1":
        seps = [" ", "</s>"]
        ret = VICUNA_SYSTEM + seps[0]
        for i, (role, msg) in enumerate(turns):
            if msg:
                ret += role + ": " + msg.strip() + (seps[1] if i % 2 else seps[0])
            else:
                ret += role + ":"
        return ret.strip()
    if template == "mistral_instruct":
        ret = ""
        for i, (role, msg) in enumerate(turns):
            if msg:
                if i == 0:
                    msg = msg  # system prompt is empty for mistral_instruct
                ret += f"[INST] {msg} [/INST]" if i % 2 == 0 else " " + msg + " </s>"
        return ret
    raise ValueError(template)


def tokenize_image_placeholder(tok, text):
    ids = []
    for i, chunk in enumerate(text.split("<image>")):
        if i > 0:
            ids.append(-200)
        if chunk:
            ids.extend(tok(chunk, add_special_tokens=False)["input_ids"])
    return ids


def conv_example(tok, conv, template):
    # LLaVA puts the image first: '<image>\n' + the question without the tag.
    turns = []
    for k, t in enumerate(conv):
        v = t["value"]
        if k == 0 and "<image>" in v:
            v = "<image>\n" + v.replace("<image>", "").strip()
        turns.append(("USER" if t["from"] == "human" else "ASSISTANT", v))
    bos = [tok.bos_token_id]
    ids = lambda turns_: bos + tokenize_image_placeholder(tok, render_conv(template, turns_))
    full = ids(turns)
    labels = [-100] * len(full)
    for k in range(1, len(turns), 2):
        start = len(ids(turns[:k] + [("ASSISTANT", None)]))
        end = len(ids(turns[:k + 1]))
        labels[start:end] = full[start:end]
    return {"input_ids": full, "labels": labels, "text": render_conv(template, turns)}


def main(out):
    train_hf("bpe", os.path.join(out, "bpe"), MISTRAL_TEMPLATE, parts=False)
    train_hf("unigram", os.path.join(out, "unigram"), CHATML_PARTS_TEMPLATE, parts=True)
    # The BPE tokenizer again, with the llava-1.5-hf template.
    shutil.copytree(os.path.join(out, "bpe"), os.path.join(out, "bpe-llava15"))
    cfg_file = os.path.join(out, "bpe-llava15", "tokenizer_config.json")
    cfg = json.load(open(cfg_file))
    cfg["chat_template"] = LLAVA15_TEMPLATE
    json.dump(cfg, open(cfg_file, "w"), indent=1)
    train_spm(os.path.join(out, "spm"), legacy=False)
    train_spm(os.path.join(out, "spm-legacy"), legacy=True)
    ref = {"strings": TEST_STRINGS, "conversations": CONVERSATIONS, "tokenizers": {}}
    for name in ("bpe", "unigram", "bpe-llava15", "spm", "spm-legacy"):
        tok = AutoTokenizer.from_pretrained(os.path.join(out, name))
        entry = {
            "class": type(tok).__name__,
            "with_special": [tok(s)["input_ids"] for s in TEST_STRINGS],
            "without_special": [tok(s, add_special_tokens=False)["input_ids"] for s in TEST_STRINGS],
            "decoded": [tok.decode(tok(s, add_special_tokens=False)["input_ids"]) for s in TEST_STRINGS],
            "vocab_size": len(tok),
        }
        if not name.startswith("spm"):
            parts = name != "bpe"
            cfg = json.load(open(os.path.join(out, name, "config.json")))
            image_token = tok.convert_ids_to_tokens(cfg["image_token_index"])
            entry["chat_examples"] = [chat_example(tok, c, parts, image_token, cfg["image_seq_length"]) for c in CONVERSATIONS]
        else:
            entry["conv_examples"] = {t: [conv_example(tok, c, t) for c in CONVERSATIONS] for t in ("vicuna_v1", "mistral_instruct")}
        ref["tokenizers"][name] = entry
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
