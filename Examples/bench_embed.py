"""Sentence-embedding throughput: sentence-transformers against `vit embed`, same model
(Weights/all-MiniLM-L6-v2), same sentences, same threads, batch 32.

    python Examples/bench_embed.py --threads 2 --repeat 8

The sentences are the committed corpus (Tests/ViTTextTests/Golden/corpus.txt) repeated
--repeat times. `vit embed` is timed as a process on all of them minus a process on one
sentence, so that loading the model is not counted; sentence-transformers after loading.
"""
import argparse
import os
import subprocess
import tempfile
import time

import torch
from sentence_transformers import SentenceTransformer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=8)
    parser.add_argument("--vit", default=".build/release/vit")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = open("Tests/ViTTextTests/Golden/corpus.txt", encoding="utf-8").read().split("\n")[:-1] * args.repeat
    model = SentenceTransformer("Weights/all-MiniLM-L6-v2", device="cpu")
    model.encode(lines[:64], batch_size=32)
    start = time.perf_counter()
    model.encode(lines, batch_size=32)
    torch_seconds = time.perf_counter() - start

    def run_vit(texts):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
            f.write("\n".join(texts) + "\n")
        start = time.perf_counter()
        subprocess.run([args.vit, "embed", "--file", f.name, "--batch-size", "32", "--threads", str(args.threads)],
                       check=True, stdout=subprocess.DEVNULL)
        os.unlink(f.name)
        return time.perf_counter() - start

    vit_seconds = run_vit(lines) - run_vit(lines[:1])
    print(f"{len(lines)} sentences, threads {args.threads}")
    print(f"sentence-transformers {torch.__version__}: {torch_seconds:.2f} s, {len(lines) / torch_seconds:.1f} sentences/s")
    print(f"vit embed: {vit_seconds:.2f} s, {len(lines) / vit_seconds:.1f} sentences/s")
    print(f"ratio (vit / sentence-transformers throughput): {torch_seconds / vit_seconds:.2f}")


if __name__ == "__main__":
    main()
