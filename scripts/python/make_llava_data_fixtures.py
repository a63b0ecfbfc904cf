"""A tiny llava-hf LLaVA with everything its processor needs, for training straight from dataset files.

Usage: make_llava_data_fixtures.py OUT_DIR

OUT_DIR/llava/   LlavaForConditionalGeneration (CLIP tower at 16 px, patch 8: 4 image features;
                 LLaMA with GQA) saved by transformers, plus LlavaProcessor.save_pretrained:
                 a BPE tokenizer trained here on medical-VQA sentences (Metaspace, byte fallback,
                 a LLaMA-style post-processor that adds <s>), '<image>' as an added special token,
                 the llava-1.5-hf chat template (no bos_token in it: the processor adds BOS), and a
                 CLIPImageProcessor (shortest edge 16, centre crop 16, bicubic, CLIP mean/std).
The data (a VQA-RAD-style JSON and PNG images) is written by the tests themselves;
llava_batch_reference.py turns it into transformers' batches.
"""
import os
import sys

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration,
                          LlavaProcessor, PreTrainedTokenizerFast)

from make_tokenizers import LLAVA15_TEMPLATE

CORPUS = [
    "Is there a pleural effusion? Yes.",
    "Is the heart enlarged? No, the cardiac silhouette is normal.",
    "Which side is the opacity on? Left.",
    "Which side is the opacity on? Right.",
    "What organ is shown in this image? The liver, with a hypodense lesion.",
    "Is this a chest x-ray? Yes, a frontal radiograph.",
    "Are the lungs clear? No, there is consolidation in the right lower lobe.",
    "USER: ASSISTANT: describe the image",
] * 3

# llava-hf/llava-1.5-7b-hf's chat template (content as typed parts, images first, no bos_token).


def make_tokenizer():
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    trainer = trainers.BpeTrainer(vocab_size=160, special_tokens=["<unk>", "<s>", "</s>", "<pad>"], min_frequency=1)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.train_from_iterator(CORPUS, trainer)
    tok.add_special_tokens([AddedToken("<image>", special=True, normalized=False)])
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                                   padding_side="right", model_max_length=512)


def main(out):
    torch.manual_seed(0)
    tokenizer = make_tokenizer()
    image_token = tokenizer.convert_tokens_to_ids("<image>")
    vision = CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=16, patch_size=8)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, max_position_embeddings=128, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=image_token, image_seq_length=4,
                         vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = LlavaForConditionalGeneration(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(os.path.join(out, "llava"))
    image_processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}, do_center_crop=True, resample=3)
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8, vision_feature_select_strategy="default",
                               chat_template=LLAVA15_TEMPLATE, num_additional_image_tokens=1)
    processor.save_pretrained(os.path.join(out, "llava"))
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1])
