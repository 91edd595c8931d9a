"""The `vit bench --train` measurement in PyTorch: training steps (forward, cross-entropy,
backward, AdamW) of a timm ViT with random weights, float32, on the CPU.

    python Examples/bench_train_pytorch.py --architecture vit-tiny-patch16-224 --image-size 32 --patch-size 4 --batch-sizes 128 --threads 2
    .build/release/vit bench --train --architecture vit-tiny-patch16-224 --image-size 32 --patch-size 4 --classes 10 --batch-sizes 128 --threads 2

Reports the median time per step over --iterations steps after --warmup steps, the
images per second, and the forward and backward times of the median step.
"""
import argparse
import resource
import statistics
import time

import timm
import torch

SIZES = {"vit-tiny-patch16-224": (192, 12, 3), "vit-small-patch16-224": (384, 12, 6),
         "vit-base-patch16-224": (768, 12, 12)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--architecture", default="vit-tiny-patch16-224", choices=SIZES)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--patch-size", type=int, default=4)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch-sizes", default="128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dim, depth, heads = SIZES[args.architecture]
    model = timm.create_model("vit_base_patch16_224", pretrained=False, img_size=args.image_size,
                              patch_size=args.patch_size, embed_dim=dim, depth=depth, num_heads=heads,
                              num_classes=args.classes).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    loss_fn = torch.nn.CrossEntropyLoss()
    print(f"torch {torch.__version__}, timm {timm.__version__}, {args.architecture} at {args.image_size}, "
          f"patch {args.patch_size}, threads: {args.threads}")
    print("batch  median ms  min ms   images/s  forward ms  backward ms")
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        x = torch.randn(batch, 3, args.image_size, args.image_size)
        y = torch.arange(batch) % args.classes
        steps = []
        for i in range(args.warmup + args.iterations):
            start = time.perf_counter()
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            middle = time.perf_counter()
            loss.backward()
            optimizer.step()
            end = time.perf_counter()
            if i >= args.warmup:
                steps.append((end - start, middle - start, end - middle))
        median = statistics.median(s[0] for s in steps)
        step = min(steps, key=lambda s: abs(s[0] - median))
        print(f"{batch:5d}  {median * 1e3:9.1f}  {min(s[0] for s in steps) * 1e3:6.1f}  {batch / median:9.2f}  "
              f"{step[1] * 1e3:10.1f}  {step[2] * 1e3:11.1f}")
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
