"""Tiny LLaMA / Mistral checkpoints with transformers reference outputs.

Usage: make_lm_fixtures.py OUT_DIR
For each case, OUT_DIR/<case>/ (written by save_pretrained) and OUT_DIR/<case>.reference.safetensors:
  llama          LlamaForCausalLM, multi-head attention, linear rope scaling, untied head
  llama_tied     llama3 rope scaling, tied embeddings, attention biases
  llama_dynamic  dynamic NTK rope, sequence longer than max_position_embeddings
  llama_yarn     yarn rope scaling
  mistral        MistralForCausalLM, grouped-query attention (4 heads, 2 kv heads), sliding window 4
References: logits and the causal-LM loss for a right-padded batch with -100 labels; for llama
and mistral also bf16 and fp16 logits from transformers in those dtypes, greedy generation (20 new tokens, left-padded batch of two prompts), greedy
generation with an EOS id that occurs early (finished rows continue with the pad id), and
sampled generation (temperature, top-k, top-p) after torch.manual_seed(123).
"""
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

out_dir = sys.argv[1]
VOCAB = 96


def perturb(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def batch(seq=10):
    ids = torch.randint(3, VOCAB, (2, seq))
    mask = torch.ones(2, seq, dtype=torch.long)
    mask[1, -3:] = 0  # right padding, as training batches have
    ids[1, -3:] = 0
    labels = ids.clone()
    labels[:, :3] = -100  # prompt tokens are not supervised
    labels[mask == 0] = -100
    return ids, mask, labels


def generation_refs(model, ref):
    # Two prompts of lengths 7 and 4, left-padded with 0 as batched generation needs.
    p0 = torch.randint(3, VOCAB, (7,))
    p1 = torch.randint(3, VOCAB, (4,))
    ids = torch.zeros(2, 7, dtype=torch.long)
    mask = torch.zeros(2, 7, dtype=torch.long)
    ids[0], mask[0] = p0, 1
    ids[1, 3:], mask[1, 3:] = p1, 1
    ref["gen_input_ids"], ref["gen_attention_mask"] = ids, mask
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    with torch.no_grad():
        greedy = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=20, do_sample=False)
    ref["greedy"] = greedy
    eos = int(greedy[0, 7 + 4])  # the 5th new token of row 0 becomes the EOS id
    with torch.no_grad():
        stopped = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=20, do_sample=False, eos_token_id=eos, pad_token_id=0)
    ref["greedy_eos"], ref["eos_id"] = stopped, torch.tensor([eos])
    torch.manual_seed(123)
    with torch.no_grad():
        sampled = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=20, do_sample=True, temperature=0.8, top_k=10, top_p=0.9)
    ref["sampled"] = sampled


def make(name, model, gen=False, seq=10):
    torch.manual_seed(hash(name) % 1000)
    perturb(model).eval()
    model.save_pretrained(os.path.join(out_dir, name))
    ids, mask, labels = batch(seq)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=True)
    ref = {"input_ids": ids, "attention_mask": mask, "labels": labels, "logits": out.logits, "loss": out.loss.reshape(1)}
    for i, h in enumerate(out.hidden_states):
        ref[f"hidden_states.{i}"] = h.clone()
    if gen:
        generation_refs(model, ref)
        # transformers' own half-precision forwards, for the dtype tests. Loaded with dtype= as users
        # do: model.to(dtype) would also round the rotary inv_freq buffer, from_pretrained does not.
        cls = type(model)
        for dtype, key in ((torch.bfloat16, "logits_bf16"), (torch.float16, "logits_fp16")):
            half = cls.from_pretrained(os.path.join(out_dir, name), dtype=dtype).eval()
            with torch.no_grad():
                ref[key] = half(input_ids=ids, attention_mask=mask).logits.float()
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(out_dir, f"{name}.reference.safetensors"))


torch.manual_seed(0)
small = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64)
make("llama", LlamaForCausalLM(LlamaConfig(**small, num_key_value_heads=4, rope_scaling={"rope_type": "linear", "factor": 2.0})), gen=True)
make("llama_tied", LlamaForCausalLM(LlamaConfig(**small, num_key_value_heads=2, tie_word_embeddings=True, attention_bias=True,
                                                rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                              "high_freq_factor": 4.0, "original_max_position_embeddings": 16})))
make("llama_dynamic", LlamaForCausalLM(LlamaConfig(**{**small, "max_position_embeddings": 8}, num_key_value_heads=4,
                                                   rope_scaling={"rope_type": "dynamic", "factor": 2.0})), seq=12)
make("llama_yarn", LlamaForCausalLM(LlamaConfig(**small, num_key_value_heads=4, rope_theta=500.0,
                                                rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16})))
make("mistral", MistralForCausalLM(MistralConfig(**small, num_key_value_heads=2, sliding_window=4)), gen=True)
print("ok")
