#!/usr/bin/env bash
# The training comparison of docs/BENCHMARKS.md, measured on this machine: ViT-Ti (image
# 32, patch 4, 10 classes, batch 128, random weights, float32) trained with AdamW on 2
# threads, SwiftViT (`vit bench --train`) against PyTorch with timm
# (Examples/bench_train_pytorch.py), alternating in ROUNDS rounds. Each round's figure is
# the median of 5 steps after 2 untimed ones, with the forward and backward (with the
# AdamW update) of the step nearest it; the speed-up of a round is PyTorch's median over
# SwiftViT's. OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for both sides. PYTHON
# needs torch and timm. Prints a Markdown table headed by the CPU.
#
#   swift build -c release && bash Examples/bench_train.sh [PYTHON] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
rounds=${2:-6}
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
options=(--architecture vit-tiny-patch16-224 --image-size 32 --patch-size 4 --classes 10 --batch-sizes 128
    --threads 2 --warmup 2 --iterations 5)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

for round in $(seq "$rounds"); do
    echo "round $round of $rounds" >&2
    .build/release/vit bench --train "${options[@]}" | awk '/^ *128 / { print "SwiftViT", $2, $8, $9 }' >>"$log"
    "$python" Examples/bench_train_pytorch.py "${options[@]}" | awk '/^ *128 / { print "PyTorch", $2, $5, $6 }' >>"$log"
done

"$python" - "$log" "$rounds" <<'PY'
import statistics, sys
times = {"SwiftViT": [], "PyTorch": []}
for line in open(sys.argv[1]):
    name, *fields = line.split()
    times[name].append(tuple(float(f) for f in fields))
ours, theirs = times["SwiftViT"], times["PyTorch"]
if len(ours) != len(theirs) or not ours:
    sys.exit(f"bench_train: {len(ours)} SwiftViT and {len(theirs)} PyTorch rounds were measured")
speedups = [p[0] / s[0] for s, p in zip(ours, theirs)]
field = lambda key: next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith(key))
print(f"ViT-Ti training steps (image 32, patch 4, batch 128), 2 threads, {field('model name')} "
      f"(family {field('cpu family')}, model {field('model')}); {sys.argv[2]} alternating rounds, ms per step "
      "(forward + backward and AdamW, of the median step)")
print()
print("| round | SwiftViT | PyTorch | speed-up |")
print("|---|---|---|---|")
cell = lambda t: f"{t[0]:,.0f} ({t[1]:,.0f} + {t[2]:,.0f})"
for i, (s, p, r) in enumerate(zip(ours, theirs, speedups), 1):
    print(f"| {i} | {cell(s)} | {cell(p)} | {r:.2f}x |")
median = lambda rows: tuple(statistics.median(row[i] for row in rows) for i in range(3))
print(f"| median | {cell(median(ours))} | {cell(median(theirs))} | {statistics.median(speedups):.2f}x |")
PY
