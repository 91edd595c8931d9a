"""Golden models for ViT inference: random-initialized HF and timm ViTs of a small,
unusual shape, saved in their native formats, with logits for fixed input tensors and
for the photos in Images/ through each library's own Pillow-based preprocessing.

Run from the repo root:
    python Tests/Reference/vit_models.py              # small models -> Tests/ViTVisionTests/Golden/
    python Tests/Reference/vit_models.py --full DIR   # google/vit-base-patch16-224's architecture
                                                      # (random weights, about 350 MB) -> DIR
Writes for each of hf-vit/ and timm-vit/: the model folder (config.json,
model.safetensors, preprocessor_config.json for HF) and golden.safetensors with
  inputs, logits              a fixed random batch [3, 3, S, S] and its logits
  PHOTO.pixel_values, PHOTO.logits   each photo through the library's preprocessing
"""
import argparse
import json
import os

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessorPil

PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "camera.png"]
LABELS = ["cat", "coffee", "astronaut", "rocket", "camera", "boot", "other"]


def scramble(model, seed):
    """Weights of order-one effect, so that logits are large enough to test to 1e-4."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float64)
            if p.ndim >= 2 and "embed" not in name and "cls" not in name and "position" not in name:
                fan_in = p[0].numel()
                p.copy_(noise / fan_in**0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * noise)
            else:
                p.copy_(0.3 * noise)


def golden_batch(size, seed=1):
    g = torch.Generator().manual_seed(seed)
    height, width = size if isinstance(size, tuple) else (size, size)
    return torch.randn((3, 3, height, width), generator=g)


# Input sizes other than the trained 64 (grid 8): larger, smaller and not square, so that
# the position embeddings are resampled up, down and by different factors per axis.
OTHER_SIZES = [(96, 96), (40, 40), (48, 80)]


def attention_maps(model, pixels):
    """Attention rollout (Abnar and Zuidema 2020) and the last layer's class-token attention
    per head, in float64 from HF's eager attention probabilities."""
    model.set_attn_implementation("eager")
    attentions = model(pixel_values=pixels, output_attentions=True).attentions  # L x [1, H, N, N]
    n = attentions[0].shape[-1]
    rollout = np.eye(n)
    for a in attentions:
        mixed = 0.5 * a[0].double().mean(0).numpy() + 0.5 * np.eye(n)
        rollout = (mixed / mixed.sum(-1, keepdims=True)) @ rollout
    return torch.from_numpy(rollout[0, 1:]), attentions[-1][0, :, 0, 1:]


def hf_model(out, image_size, patch, width, depth, heads, hidden, labels, eps=1e-12):
    config = ViTConfig(image_size=image_size, patch_size=patch, hidden_size=width, num_hidden_layers=depth,
                       num_attention_heads=heads, intermediate_size=hidden, layer_norm_eps=eps,
                       id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    model = ViTForImageClassification(config).eval()
    scramble(model, 0)
    model.save_pretrained(out)
    processor = ViTImageProcessorPil(size={"height": image_size, "width": image_size})
    processor.save_pretrained(out)
    tensors = {}
    with torch.no_grad():
        x = golden_batch(image_size)
        tensors["inputs"], tensors["logits"] = x, model(pixel_values=x).logits
        for h, w in OTHER_SIZES if image_size == 64 else []:
            x = golden_batch((h, w), seed=h + w)
            tensors[f"inputs_{h}x{w}"] = x
            tensors[f"logits_{h}x{w}"] = model(pixel_values=x, interpolate_pos_encoding=True).logits
        for photo in PHOTOS:
            stem = os.path.splitext(photo)[0]
            pixels = processor(Image.open(f"Images/{photo}").convert("RGB"), return_tensors="pt")["pixel_values"]
            tensors[f"{stem}.pixel_values"] = pixels[0]
            tensors[f"{stem}.logits"] = model(pixel_values=pixels).logits[0]
            if stem == "chelsea":
                tensors["chelsea.rollout"], tensors["chelsea.last_heads"] = attention_maps(model, pixels)
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, f"{out}/golden.safetensors")


def timm_model(out, image_size, patch, width, depth, heads, labels, pool="token"):
    model = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=image_size, patch_size=patch,
                              embed_dim=width, depth=depth, num_heads=heads, num_classes=len(labels),
                              global_pool=pool).eval()
    scramble(model, 1)
    timm.models.save_for_hf(model, out, model_config={"label_names": labels}, safe_serialization=True,
                            model_args={"img_size": image_size, "patch_size": patch, "embed_dim": width,
                                        "depth": depth, "num_heads": heads, "global_pool": pool})
    # The eval transform a user gets from the saved folder's pretrained_cfg.
    saved = json.load(open(f"{out}/config.json"))["pretrained_cfg"]
    cfg = timm.data.resolve_data_config(pretrained_cfg=saved)
    transform = timm.data.create_transform(**cfg)
    tensors = {}
    with torch.no_grad():
        x = golden_batch(image_size)
        tensors["inputs"], tensors["logits"] = x, model(x)
        # timm resamples position embeddings for other sizes with dynamic_img_size.
        dynamic = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=image_size, patch_size=patch,
                                    embed_dim=width, depth=depth, num_heads=heads, num_classes=len(labels),
                                    global_pool=pool, dynamic_img_size=True).eval()
        dynamic.load_state_dict(model.state_dict())
        for h, w in OTHER_SIZES if image_size == 64 else []:
            x = golden_batch((h, w), seed=h + w)
            tensors[f"inputs_{h}x{w}"], tensors[f"logits_{h}x{w}"] = x, dynamic(x)
        if image_size == 64:  # a photo at input size 96: timm's transform for that size
            transform96 = timm.data.create_transform(**{**cfg, "input_size": (3, 96, 96)})
            pixels = transform96(Image.open("Images/chelsea.png").convert("RGB"))
            tensors["chelsea.logits_96"] = dynamic(pixels[None])[0]
        for photo in PHOTOS:
            stem = os.path.splitext(photo)[0]
            pixels = transform(Image.open(f"Images/{photo}").convert("RGB"))
            tensors[f"{stem}.pixel_values"] = pixels
            tensors[f"{stem}.logits"] = model(pixels[None])[0]
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, f"{out}/golden.safetensors")
    print(out, cfg)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", help="write google/vit-base-patch16-224's architecture here instead")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.full:
        hf_model(f"{args.full}/hf-vit-base", 224, 16, 768, 12, 12, 3072, [f"class {i}" for i in range(1000)])
        timm_model(f"{args.full}/timm-vit-base", 224, 16, 768, 12, 12, [f"class {i}" for i in range(1000)])
    else:
        root = "Tests/ViTVisionTests/Golden"
        hf_model(f"{root}/hf-vit", 64, 8, 96, 2, 3, 200, LABELS)
        timm_model(f"{root}/timm-vit", 64, 8, 96, 2, 3, LABELS)
        timm_model(f"{root}/timm-vit-avg", 64, 8, 96, 2, 3, LABELS, pool="avg")
    for folder, _, files in os.walk(args.full or "Tests/ViTVisionTests/Golden"):
        for f in files:
            print(os.path.join(folder, f), os.path.getsize(os.path.join(folder, f)))
