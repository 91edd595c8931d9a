#!/usr/bin/env bash
# Fuzzes the parsers with libFuzzer and AddressSanitizer. Builds the library modules with
# coverage and ASan (SwiftPM --sanitize=fuzzer --sanitize=address, checked debug build) into
# .build/fuzz, links each target in Fuzz/ against them, and runs it for SECONDS (default
# 60) from a seed corpus made of the test fixtures. Prints the executions per target. A
# crash or time-out (leaks are not checked: Foundation keeps some) fails the run; its reproducer is kept in .build/fuzz/crashes/.
#
#   bash Fuzz/run.sh [SECONDS] [TARGET...]     targets: image safetensors config idx vocab metadata
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(image safetensors config idx vocab metadata)

swift build -c debug --target ViTTraining --sanitize=fuzzer --sanitize=address --build-path .build/fuzz >/dev/null
build=.build/fuzz/debug
objects=()
for module in ViTTensor ViTProductKernels CKernels ViTCore ViTImage ViTCheckpoint ViTVision ViTText ViTData CImageCodecs CZlib; do
    objects+=("$build/$module.build"/*.o)
done
mkdir -p .build/fuzz/bin .build/fuzz/crashes

# Seed corpora from the repository's fixtures.
corpus=.build/fuzz/corpus
rm -rf "$corpus"
mkdir -p "$corpus"/{image,safetensors,config,idx,vocab,metadata}
cp Images/*.png Images/*.jpg Tests/ViTImageTests/Golden/*.png Tests/ViTImageTests/Golden/*.jpg "$corpus/image/" 2>/dev/null || true
find Tests -name '*.safetensors' -size -200k -exec cp {} "$corpus/safetensors/" \;
cp Weights/shapes-judge-color.safetensors "$corpus/safetensors/"
for file in Tests/ViTVisionTests/Golden/*/config.json; do
    printf '\0' | cat - "$file" >"$corpus/config/$(basename "$(dirname "$file")")-config"
done
printf '\1' | cat - Tests/ViTVisionTests/Golden/hf-vit/preprocessor_config.json >"$corpus/config/hf-preprocessor"
printf '\0\0\0\10\3\0\0\0\2\0\0\0\2\0\0\0\2\1\2\3\4\5\6\7\10' >"$corpus/idx/images"
printf '\1\0\0\10\1\0\0\0\1\3' >"$corpus/idx/labels"
printf '\0\0\0\10\3\0\0\0\1\0\0\0\2\0\0\0\2\1\2\3\4' | gzip -c | { printf '\0'; cat; } >"$corpus/idx/images-gzip"
if [ -f Weights/all-MiniLM-L6-v2/vocab.txt ]; then head -c 8000 Weights/all-MiniLM-L6-v2/vocab.txt >"$corpus/vocab/minilm"; fi
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n##lo\nwor\n##ld\r\n' >"$corpus/vocab/small"
printf '{"file_name": "a.png", "text": "a red circle", "shape": "circle"}\n' >"$corpus/metadata/one"

status=0
for target in "${targets[@]}"; do
    binary=.build/fuzz/bin/fuzz-$target
    rm -f "$binary"
    if ! swiftc -sanitize=fuzzer,address -parse-as-library -g "Fuzz/$target.swift" Fuzz/Scratch.swift \
        -I "$build/Modules" -Xcc "-fmodule-map-file=$build/CImageCodecs.build/module.modulemap" \
        -Xcc "-fmodule-map-file=$build/CZlib.build/module.modulemap" \
        -Xcc "-fmodule-map-file=$build/CKernels.build/module.modulemap" \
        -Xcc "-fmodule-map-file=Sources/CBLAS/module.modulemap" "${objects[@]}" \
        -lpng16 -ljpeg -lz -lopenblas -o "$binary" >".build/fuzz/$target.build.log" 2>&1; then
        status=1
        echo "$target: FAILED to build"
        grep -v 'Cannot export local symbol' ".build/fuzz/$target.build.log" | head -12
        continue
    fi
    mkdir -p ".build/fuzz/crashes/$target"
    log=.build/fuzz/$target.log
    if ASAN_OPTIONS=detect_leaks=0 SWIFT_BACKTRACE=enable=no SWIFTVIT_FUZZ_WEIGHTS="$PWD/Tests/ViTVisionTests/Golden/hf-vit/model.safetensors" \
        "$binary" -max_total_time="$seconds" -detect_leaks=0 -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
        -artifact_prefix=".build/fuzz/crashes/$target/" "$corpus/$target" >"$log" 2>&1; then
        echo "$target: $(grep -o 'Done [0-9]* runs' "$log" | tail -1 | cut -d' ' -f2) executions in ${seconds} s, no crash"
    else
        status=1
        echo "$target: FAILED after $(grep -o '#[0-9]*' "$log" | tail -1 | tr -d '#') executions; reproducer in .build/fuzz/crashes/$target/"
        grep -E 'ERROR|runtime failure|#[0-9]+ 0x.* in \$s' "$log" | head -12
    fi
done
rm -rf /dev/shm/swiftvit-fuzz-* 2>/dev/null || true
exit $status
