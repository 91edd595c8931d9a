"""Compare `vit classify --logits` with the logits stored by Tests/Reference/vit_models.py.

    python Tests/Reference/vit_models.py --full /tmp/vit-full
    swift build -c release
    python Examples/check_logits.py /tmp/vit-full/hf-vit-base /tmp/vit-full/timm-vit-base

Prints, for each model folder and photo, the largest absolute logit difference and
whether the top-5 classes agree.
"""
import json
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file

PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "camera.png"]

for folder in sys.argv[1:]:
    golden = load_file(f"{folder}/golden.safetensors")
    paths = [f"Images/{p}" for p in PHOTOS]
    out = subprocess.run([".build/release/vit", "classify", *paths, "--model", folder, "--format", "jsonl",
                          "--logits", "--batch-size", "1"], check=True, capture_output=True, text=True).stdout
    for line, photo in zip(out.splitlines(), PHOTOS):
        ours = np.array(json.loads(line)["logits"], dtype=np.float32)
        ref = golden[f"{photo.split('.')[0]}.logits"]
        same_top5 = list(np.argsort(-ours)[:5]) == list(np.argsort(-ref)[:5])
        print(f"{folder} {photo}: max abs logit difference {np.abs(ours - ref).max():.2e}, same top-5: {same_top5}")
