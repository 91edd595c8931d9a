"""Compare `vit preprocess` with Hugging Face and timm on any image, value for value.

    swift build -c release
    python Examples/compare_preprocess.py Images/rocket.jpg

Needs Pillow, transformers and timm. Runs the built `vit` for the three profiles and
prints, for each, how many 8-bit values and normalized floats differ from the reference.
"""
import subprocess
import sys
import tempfile

import numpy as np
import timm
import torchvision.transforms as T
from PIL import Image
from safetensors.numpy import load_file
from transformers import ViTImageProcessorPil

TIMM_MODELS = {"timm-vit": "vit_base_patch16_224.augreg2_in21k_ft_in1k", "timm-deit": "deit_base_patch16_224.fb_in1k"}


def reference(profile, image):
    """The reference's 8-bit input (H, W, 3) and its normalized tensor (3, H, W)."""
    if profile == "hf-vit":
        raw = ViTImageProcessorPil(do_rescale=False, do_normalize=False)(image, return_tensors="np")
        normalized = ViTImageProcessorPil()(image, return_tensors="np")["pixel_values"][0]
        return raw["pixel_values"][0].transpose(1, 2, 0).astype(np.uint8), normalized
    cfg = timm.data.resolve_data_config({}, model=timm.create_model(TIMM_MODELS[profile], pretrained=False))
    transform = timm.data.create_transform(**cfg)
    steps = [t for t in transform.transforms if not isinstance(t, (T.ToTensor, T.Normalize))]
    return np.asarray(T.Compose(steps)(image)), transform(image).numpy()


def main(path, vit=".build/release/vit"):
    image = Image.open(path).convert("RGB")
    with tempfile.TemporaryDirectory() as tmp:
        for profile in ["hf-vit", "timm-vit", "timm-deit"]:
            png, tensor = f"{tmp}/{profile}.png", f"{tmp}/{profile}.safetensors"
            subprocess.run([vit, "preprocess", path, "--profile", profile, "-o", png, "--tensor", tensor], check=True)
            ours8 = np.asarray(Image.open(png).convert("RGB"))
            ours = load_file(tensor)["pixel_values"]
            ref8, ref = reference(profile, image)
            diff8 = np.abs(ours8.astype(int) - ref8.astype(int))
            print(f"{profile:10s} 8-bit: {np.count_nonzero(diff8)} of {diff8.size} differ (max {diff8.max()}); "
                  f"normalized: max abs difference {np.abs(ours - ref).max():.2e}")


if __name__ == "__main__":
    main(*sys.argv[1:])
