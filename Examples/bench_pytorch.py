"""The `vit bench` measurement in PyTorch, to print side by side with SwiftViT's.

    python Examples/bench_pytorch.py --architecture vit-base-patch16-224 --batch-sizes 1,8 --threads 2
    .build/release/vit bench --architecture vit-base-patch16-224 --batch-sizes 1,8 --threads 2

Runs timm's and transformers' ViT with random weights in float32 under torch.inference_mode
(with --bf16: inside torch.autocast("cpu", dtype=torch.bfloat16), which runs the products in
bfloat16 through oneDNN, on AMX or AVX512-BF16 where the CPU has them), and reports the median
time per batch over --iterations passes after --warmup passes.
"""
import argparse
import resource
import statistics
import time

import timm
import torch
from transformers import ViTConfig, ViTForImageClassification

SIZES = {"vit-tiny-patch16-224": (192, 12, 3), "vit-small-patch16-224": (384, 12, 6),
         "vit-base-patch16-224": (768, 12, 12)}


def gflops(dim, depth):
    n, c, h = 197, dim, 4 * dim
    per_block = n * c * 3 * c + 2 * n * n * c + n * c * c + 2 * n * c * h
    return 2 * (196 * 768 * c + depth * per_block + c * 1000) / 1e9


def arguments():
    """The options shared with `vit bench` and Examples/bench_onnxruntime.py."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--architecture", default="vit-base-patch16-224", choices=SIZES)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--bf16", action="store_true", help="products in bfloat16 (torch.autocast)")
    return parser.parse_args()


def measure(run, warmup, iterations, name, batch, cost):
    """Calls run() warmup times, then times iterations calls and prints one table row."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    median = statistics.median(times)
    rate = batch / (median / 1000)
    print(f"{name:12s}  {batch:5d}  {median:9.1f}  {min(times):6.1f}  {rate:9.2f}  {cost * rate:7.1f}")


def main():
    args = arguments()
    torch.set_num_threads(args.threads)
    dim, depth, heads = SIZES[args.architecture]
    models = {
        "timm": timm.create_model("vit_base_patch16_224", pretrained=False, embed_dim=dim, depth=depth,
                                  num_heads=heads).eval(),
        "transformers": ViTForImageClassification(ViTConfig(hidden_size=dim, num_hidden_layers=depth,
                                                            num_attention_heads=heads, intermediate_size=4 * dim,
                                                            num_labels=1000)).eval(),
    }
    cost = gflops(dim, depth)
    print(f"torch {torch.__version__}, {args.architecture}, {cost:.2f} GFLOPs per image, threads: {args.threads}")
    print("library       batch  median ms  min ms   images/s  GFLOP/s")
    precision = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16)
    for name, model in models.items():
        for batch in [int(b) for b in args.batch_sizes.split(",")]:
            x = torch.randn(batch, 3, 224, 224)
            with torch.inference_mode(), precision:
                measure(lambda: model(x), args.warmup, args.iterations, name + (" bf16" if args.bf16 else ""),
                        batch, cost)
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")


if __name__ == "__main__":
    main()
