"""Tiny ViT checkpoints (HF and timm layouts) and peft-written LoRA / DoRA / rsLoRA adapters.

Usage: make_peft_fixtures.py OUT_DIR   (see peft_reference.py's `fixtures` for what it writes)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peft_reference import fixtures  # noqa: E402

fixtures(sys.argv[1])
