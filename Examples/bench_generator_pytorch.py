"""`vit bench --generator` on PyTorch: the flow transformer's PyTorch twin
(Tests/Reference/flow_transformer.py) with the weights of a SwiftViT generator file, the
captions encoded by the same MiniLM through transformers' BertModel, and the same sampling
loop: 30 Euler steps with classifier-free guidance (scale 3), conditional and unconditional
passes in one batch. Prints the median time per batch of images, as `vit bench --generator`.

    python Examples/bench_generator_pytorch.py [--model Weights/shapes-generator.safetensors]
        [--text-model Weights/all-MiniLM-L6-v2] [--batch-sizes 1,16] [--steps 30] [--threads 2]
"""
import argparse
import json
import os
import sys
import time

import torch
from safetensors import safe_open
from transformers import AutoModel, AutoTokenizer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "Reference"))
from flow_transformer import Config, FlowTransformer, swiftvit_keys  # noqa: E402

CAPTIONS = [
    "a large red circle in the top left", "a small blue square in the center", "a big green triangle at the bottom",
    "a large purple diamond on the right", "a small white cross in the top right",
    "a large yellow circle in the middle on a navy background", "a large cyan circle in the center",
    "a big orange square on the left", "a large blue triangle in the top right", "a large white diamond at the bottom",
    "a big yellow cross in the center",
]


def load(path):
    with safe_open(path, "pt") as f:
        c = json.loads(f.metadata()["config"])
        cfg = Config(image=c["imageSize"], patch=c["patchSize"], channels=c["channels"], dim=c["dim"],
                     depth=c["depth"], heads=c["numHeads"], hidden=c["hiddenDim"], context=c["contextDim"],
                     frequencies=c["frequencyDim"])
        model = FlowTransformer(cfg)
        with torch.no_grad():
            for name, parameter in swiftvit_keys(model).items():
                parameter.copy_(f.get_tensor(name).reshape(parameter.shape))
    return model.eval()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="Weights/shapes-generator.safetensors")
    parser.add_argument("--text-model", default="Weights/all-MiniLM-L6-v2")
    parser.add_argument("--batch-sizes", default="1,16")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load(args.model)
    tokenizer = AutoTokenizer.from_pretrained(args.text_model)
    encoder = AutoModel.from_pretrained(args.text_model).eval()
    cfg = model.cfg

    @torch.inference_mode()
    def generate(batch):
        captions = [CAPTIONS[i % len(CAPTIONS)] for i in range(batch)] + [""] * batch
        tokens = tokenizer(captions, padding=True, return_tensors="pt")
        states = encoder(**tokens).last_hidden_state  # [2B, M, D]
        mask = (1 - tokens["attention_mask"][:, None, :].float()) * -1e30  # [2B, 1, M]
        x = torch.randn(batch, cfg.channels, cfg.image, cfg.image)
        for step in range(args.steps):
            t, h = 1 - step / args.steps, -1 / args.steps
            both = model(torch.cat([x, x]), torch.full((2 * batch,), t), states, mask)
            conditional, unconditional = both[:batch], both[batch:]
            x = x + (unconditional + 3 * (conditional - unconditional)) * h
        return x

    print(f"PyTorch {torch.__version__}, threads: {args.threads}, {args.steps} Euler steps, guidance 3")
    print("images  median ms  min ms   images/s")
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        for _ in range(args.warmup):
            generate(batch)
        times = []
        for _ in range(args.iterations):
            start = time.perf_counter()
            generate(batch)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        median = times[len(times) // 2] if len(times) % 2 else (times[len(times) // 2 - 1] + times[len(times) // 2]) / 2
        print(f"{batch:6d}  {median:9.1f}  {times[0]:6.1f}  {batch / (median / 1000):9.2f}")


if __name__ == "__main__":
    main()
