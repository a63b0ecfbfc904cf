"""A tiny llava-hf, its transformers 4.x-named copy, a training batch and a peft LoRA adapter.

Usage: make_peft_llava_fixtures.py OUT_DIR   (see peft_reference.py's llava_fixtures)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peft_reference import llava_fixtures  # noqa: E402

llava_fixtures(sys.argv[1])
