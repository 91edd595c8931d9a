"""The `vit bench` measurement in ONNX Runtime, to print side by side with SwiftViT's.

    pip install onnxruntime onnx onnxscript
    python Examples/bench_onnxruntime.py --architecture vit-base-patch16-224 --batch-sizes 1,8 --threads 2
    .build/release/vit bench --architecture vit-base-patch16-224 --batch-sizes 1,8 --threads 2

Exports transformers' ViT with random weights (float32) to ONNX with a dynamic batch axis,
runs it on ONNX Runtime's CPU provider with all graph optimizations (attention and GELU
fusion included) and --threads intra-op threads, and reports the median time per batch over
--iterations passes after --warmup passes. Also checks that the logits agree with PyTorch's.
"""
import os
import resource
import tempfile

import numpy as np
import onnxruntime as ort
import torch
from transformers import ViTConfig, ViTForImageClassification

from bench_pytorch import SIZES, arguments, gflops, measure


def main():
    args = arguments()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    dim, depth, heads = SIZES[args.architecture]
    model = ViTForImageClassification(ViTConfig(hidden_size=dim, num_hidden_layers=depth, num_attention_heads=heads,
                                                intermediate_size=4 * dim, num_labels=1000)).eval()
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "vit.onnx")
    example = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, (example,), path, input_names=["pixel_values"], output_names=["logits"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = model(example).logits.numpy()
    got = session.run(None, {"pixel_values": example.numpy()})[0]
    difference = float(np.abs(got - expected).max())

    cost = gflops(dim, depth)
    print(f"onnxruntime {ort.__version__}, {args.architecture}, {cost:.2f} GFLOPs per image, threads: {args.threads}, "
          f"max |logit - PyTorch's| {difference:.1e}")
    print("library       batch  median ms  min ms   images/s  GFLOP/s")
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
        measure(lambda: session.run(None, {"pixel_values": x}), args.warmup, args.iterations, "onnxruntime", batch,
                cost)
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB (PyTorch and the export included)")


if __name__ == "__main__":
    main()
