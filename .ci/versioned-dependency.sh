#!/usr/bin/env bash
# A package that depends on SwiftViT by version resolves and builds: SwiftPM refuses
# versioned dependencies whose targets use unsafe flags. The committed state is cloned
# into a scratch repository, tagged, and a small program is built against the SwiftViT
# library product and run.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

git clone -q --no-local "$root" "$work/SwiftViT"
git -C "$work/SwiftViT" tag 1.0.0
mkdir -p "$work/consumer/Sources/consumer"
cat >"$work/consumer/Package.swift" <<EOF
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "consumer",
    dependencies: [.package(url: "file://$work/SwiftViT", from: "1.0.0")],
    targets: [
        .executableTarget(name: "consumer", dependencies: [.product(name: "SwiftViT", package: "SwiftViT")])
    ])
EOF
cat >"$work/consumer/Sources/consumer/main.swift" <<'EOF'
import ViTTensor

// [1, 2] x [[3], [4]] = [11]
let product = matmul(Tensor(shape: [1, 2], values: [1, 2]), Tensor(shape: [2, 1], values: [3, 4]))
print(product.shape, product.scalars)
EOF
swift build --package-path "$work/consumer" 2>&1 | tail -3
output="$("$work/consumer/.build/debug/consumer")"
echo "consumer printed: $output"
[ "$output" = "[1, 1] [11.0]" ]
