"""Whole-model debug state for training (llm.c's test_gpt2 idea): a micro timm ViT (image
32, patch 8, width 64, depth 2, 4 heads, 10 classes) with non-trivial weights, a fixed
batch and labels; its logits, loss (label smoothing 0.1), every parameter gradient, and
the losses of 10 torch.optim.AdamW steps.

Run from the repo root: python Tests/Reference/train_debug.py
Writes Tests/ViTVisionTests/Golden/micro-train/ (the timm folder and debug.safetensors).
"""
import os

import timm
import torch
from safetensors.torch import save_file

OUT = "Tests/ViTVisionTests/Golden/micro-train"
LABELS = [f"class {i}" for i in range(10)]


def main():
    torch.manual_seed(0)
    args = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, global_pool="token")
    model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=10, **args)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.ndim >= 2 and "embed" not in name and "cls" not in name:
                p.copy_(noise / p[0].numel() ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * noise)
            else:
                p.copy_(0.3 * noise)
    model.train()  # no dropout in this model: train and eval agree
    os.makedirs(OUT, exist_ok=True)
    timm.models.save_for_hf(model, OUT, model_config={"label_names": LABELS}, safe_serialization=True,
                            model_args=args)
    x = torch.randn((6, 3, 32, 32), generator=g)
    labels = torch.tensor([3, 1, 4, 1, 5, 9])
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    logits = model(x)
    loss = loss_fn(logits, labels)
    loss.backward()
    tensors = {"inputs": x, "labels": labels.float(), "logits": logits.detach(), "loss": loss.detach().reshape(1)}
    for name, p in model.named_parameters():
        tensors[f"grad.{name}"] = p.grad.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    optimizer.zero_grad()
    losses = []
    for _ in range(10):
        loss = loss_fn(model(x), labels)
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    tensors["adamw_losses"] = torch.tensor(losses)
    save_file({k: v.float().contiguous() for k, v in tensors.items()}, f"{OUT}/debug.safetensors")
    print(losses)


if __name__ == "__main__":
    main()
