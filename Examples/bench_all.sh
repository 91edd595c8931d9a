#!/usr/bin/env bash
# The speed table of the README and docs/BENCHMARKS.md, measured on this machine: ViT-B/16
# at 224 with random weights, batches of 1 and 8, 2 threads. SwiftViT (vit bench, fp32,
# and bf16 where the CPU has AVX512-BF16), PyTorch with timm and transformers in fp32 and
# in bf16 autocast, and ONNX Runtime (fp32, all graph optimizations), in ROUNDS
# interleaved rounds; each figure is the median of the rounds' medians (each of those over
# 10 passes after 2 untimed ones). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for
# every side. PYTHON needs torch, timm, transformers, onnx, onnxscript and onnxruntime.
# Prints a Markdown table headed by the CPU.
#
#   swift build -c release && bash Examples/bench_all.sh [PYTHON] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:-python3}
rounds=${2:-3}
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
options=(--architecture vit-base-patch16-224 --batch-sizes 1,8 --threads 2 --warmup 2 --iterations 10)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

for round in $(seq "$rounds"); do
    echo "round $round of $rounds" >&2
    .build/release/vit bench "${options[@]}" | awk '/^ *[0-9]+ / { print "SwiftViT fp32", $1, $2 }' >>"$log"
    if grep -qw avx512_bf16 /proc/cpuinfo; then
        .build/release/vit bench "${options[@]}" --precision bf16 \
            | awk '/^ *[0-9]+ / { print "SwiftViT bf16", $1, $2 }' >>"$log"
    fi
    "$python" Examples/bench_pytorch.py "${options[@]}" \
        | awk '/^(timm|transformers) / { print "PyTorch " $1 " fp32", $2, $3 }' >>"$log"
    "$python" Examples/bench_pytorch.py "${options[@]}" --bf16 \
        | awk '/^(timm|transformers) bf16/ { print "PyTorch " $1 " bf16 autocast", $3, $4 }' >>"$log"
    "$python" Examples/bench_onnxruntime.py "${options[@]}" \
        | awk '/^onnxruntime / && $2 ~ /^[0-9]+$/ { print "ONNX Runtime fp32", $2, $3 }' >>"$log"
done

"$python" - "$log" "$rounds" <<'PY'
import collections, statistics, sys
times = collections.defaultdict(list)
for line in open(sys.argv[1]):
    *name, batch, median = line.split()
    times[(" ".join(name), int(batch))].append(float(median))
cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
field = lambda key: next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith(key))
print(f"ViT-B/16 224, 2 threads, {cpu} (family {field('cpu family')}, model {field('model')}); "
      f"median of {sys.argv[2]} interleaved rounds, ms")
print()
print("| | batch 1 | batch 8 |")
print("|---|---|---|")
for name in dict.fromkeys(n for n, _ in times):
    cells = [f"{statistics.median(times[(name, b)]):.0f}" if (name, b) in times else "" for b in (1, 8)]
    print(f"| {name} | {cells[0]} | {cells[1]} |")
PY
