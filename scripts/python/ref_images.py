"""Images and reference pixel values for medtune's image pipeline tests.

Writes into OUT_DIR:
  images/     PNGs (RGB, greyscale, RGBA, odd sizes) and DICOMs: pydicom's own test files that ship
              in its wheel (CT_small.dcm: rescale slope/intercept, no window; MR_small*.dcm: window
              600/1600, explicit/implicit/big endian) plus a MONOCHROME1 file made from MR_small.
  configs/    preprocessor_config.json of CLIP ViT-L/14-336 style, the same with LLaVA's 'pad'
              aspect, and a ViT-B/16 style one (saved by transformers).
  ref/        <image>.<config>.f32: pixel_values from AutoImageProcessor (the PIL backend here:
              CLIPImageProcessorPil / ViTImageProcessorPil), float32 CHW; <dicom>.u8: the 8-bit grey
              image the DICOM pipeline must give (pydicom's apply_modality_lut + apply_voi_lut,
              min-max to 0..255 truncated, MONOCHROME1 inverted).
  manifest.json
usage: ref_images.py OUT_DIR
"""
import json
import os
import shutil
import sys

import numpy as np
import pydicom
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from transformers import AutoImageProcessor
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil


def dicom_to_u8(path):
    ds = pydicom.dcmread(path)
    arr = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        arr = apply_voi_lut(arr, ds)
    lo, hi = arr.min(), arr.max()
    u8 = ((arr - lo) / (hi - lo) * 255).astype(np.uint8) if hi > lo else np.zeros(arr.shape, np.uint8)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        u8 = 255 - u8
    return u8


def expand2square(img, background):
    # LLaVA's pad-to-square: the image centred on a square of the mean colour.
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    out = Image.new(img.mode, (side, side), background)
    out.paste(img, (0, (side - h) // 2) if w > h else ((side - w) // 2, 0))
    return out


def main(out):
    images = os.path.join(out, "images")
    configs = os.path.join(out, "configs")
    refdir = os.path.join(out, "ref")
    for d in (images, configs, refdir):
        os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(7)

    # PNGs: smooth structure plus noise and hard edges, so resampling filters are exercised.
    yy, xx = np.mgrid[0:131, 0:97]
    rgb = np.stack([(xx * 2.6) % 256, (yy * 1.9) % 256, ((xx + yy) * 3) % 256], -1)
    rgb = np.clip(rgb + rng.normal(0, 25, rgb.shape), 0, 255).astype(np.uint8)
    rgb[40:60, 10:80] = [255, 0, 0]
    Image.fromarray(rgb).save(os.path.join(images, "rgb_97x131.png"))
    grey = np.clip(np.add.outer(np.linspace(0, 255, 300), np.zeros(200)) + rng.normal(0, 30, (300, 200)), 0, 255).astype(np.uint8).T
    Image.fromarray(grey, "L").save(os.path.join(images, "grey_300x200.png"))
    rgba = np.concatenate([rng.integers(0, 256, (512, 640, 3)), rng.integers(0, 256, (512, 640, 1))], -1).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(os.path.join(images, "rgba_640x512.png"))

    # DICOM: pydicom's bundled test files (these ship in the pydicom wheel).
    dicoms = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm"]
    for name in dicoms:
        shutil.copy(get_testdata_file(name), os.path.join(images, name))
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.save_as(os.path.join(images, "MR_small_monochrome1.dcm"))
    dicoms.append("MR_small_monochrome1.dcm")

    CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}).save_pretrained(os.path.join(configs, "clip336"))
    ViTImageProcessorPil(size={"height": 224, "width": 224}, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]).save_pretrained(os.path.join(configs, "vit224"))
    processors = {name: AutoImageProcessor.from_pretrained(os.path.join(configs, name)) for name in ("clip336", "vit224")}

    # Files the reader must refuse with a clear error: compressed pixel data, a truncated file.
    bad = os.path.join(out, "bad")
    os.makedirs(bad, exist_ok=True)
    for name in ("JPEG2000.dcm", "MR_truncated.dcm"):
        shutil.copy(get_testdata_file(name), os.path.join(bad, name))

    manifest = {"processor_classes": {k: type(v).__name__ for k, v in processors.items()}, "images": [], "dicoms": dicoms}
    pil_images = {}
    for name in sorted(os.listdir(images)):
        path = os.path.join(images, name)
        if name.endswith(".dcm"):
            u8 = dicom_to_u8(path)
            u8.tofile(os.path.join(refdir, name + ".u8"))
            pil_images[name] = Image.fromarray(u8, "L").convert("RGB")
        else:
            pil_images[name] = Image.open(path).convert("RGB")
    for name, img in pil_images.items():
        entry = {"name": name, "outputs": {}}
        for cname, proc in processors.items():
            pv = proc(images=img, return_tensors="np")["pixel_values"][0].astype(np.float32)
            pv.tofile(os.path.join(refdir, f"{name}.{cname}.f32"))
            entry["outputs"][cname] = list(pv.shape)
        clip = processors["clip336"]
        padded = expand2square(img, tuple(int(x * 255) for x in clip.image_mean))
        pv = clip(images=padded, return_tensors="np")["pixel_values"][0].astype(np.float32)
        pv.tofile(os.path.join(refdir, f"{name}.clip336-pad.f32"))
        entry["outputs"]["clip336-pad"] = list(pv.shape)
        manifest["images"].append(entry)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
