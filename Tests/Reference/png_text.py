"""Golden file for PNG text chunks: what Pillow reads from a PNG written by SwiftViT's
encoder (Tests/ViTImageTests/Golden/png-text.png: 5 x 3 RGB, a Caption with non-ASCII
characters, a Seed and a Software value). The Swift test writes the same image again,
checks that the bytes are the committed file's, and reads its chunks back against this.

Run from the repo root:  python Tests/Reference/png_text.py
Writes Tests/ViTImageTests/Golden/png-text.json: {"text": {key: value}, "mode", "size",
"pixels": [...] (row-major, channel-last)}.
"""
import json

from PIL import Image

with Image.open("Tests/ViTImageTests/Golden/png-text.png") as image:
    image.load()
    golden = {
        "text": dict(image.text),
        "mode": image.mode,
        "size": list(image.size),
        "pixels": list(image.tobytes()),
    }
with open("Tests/ViTImageTests/Golden/png-text.json", "w", encoding="utf-8") as out:
    json.dump(golden, out, ensure_ascii=False, sort_keys=True)
    out.write("\n")
print(golden["text"])
