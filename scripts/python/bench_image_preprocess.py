"""Times transformers' CLIP preprocessing (AutoImageProcessor: PIL backend here) on image files.

usage: bench_image_preprocess.py PREPROCESSOR_DIR REPEATS FILE...
Prints JSON: {"images_per_s": ..., "seconds": ..., "images": n, "processor": class name}.
"""
import json
import sys
import time

from PIL import Image
from transformers import AutoImageProcessor


def main():
    proc = AutoImageProcessor.from_pretrained(sys.argv[1])
    repeats = int(sys.argv[2])
    files = sys.argv[3:]
    # Warm-up: imports and first-call costs are not part of the throughput.
    proc(images=Image.open(files[0]).convert("RGB"), return_tensors="np")
    t0 = time.perf_counter()
    for _ in range(repeats):
        for f in files:
            proc(images=Image.open(f).convert("RGB"), return_tensors="np")
    dt = time.perf_counter() - t0
    n = repeats * len(files)
    print(json.dumps({"images_per_s": n / dt, "seconds": dt, "images": n, "processor": type(proc).__name__}))


if __name__ == "__main__":
    main()
